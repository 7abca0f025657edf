"""Coverage of the interval of a group-mean difference (issue 31): simulate data sets of two
populations, ``human`` and ``llm``, whose group means of loss aversion ``lam`` differ by a known
amount on the unconstrained scale, fit each with NUTS (:func:`cogfit.fit_batch`: a chunk of data
sets in one vectorised program) and count how often the interval ``Fit.differences(reference=
"human")`` reports (natural scale: ``lam_group[llm] - lam_group[human]``) covers the true
difference, at 50, 90 and 95%.

    python benchmarks/bench_alignment_coverage.py                      # 200 data sets, truth=fixed
    python benchmarks/bench_alignment_coverage.py --truth prior            # truth from the priors

The model is ``prospect_ra`` with ``rho = 1`` and ``tau = 0.5`` held fixed (:func:`model`): with
``tau`` free, ``lam`` and ``tau`` trade off per subject and NUTS trajectories grow several times
longer (``benchmarks/RESULTS.md``), and a vectorised batch runs at the pace of its longest one.

Two ways to draw the truth (``--truth``):

``fixed``
    ``mu`` at its prior mean (lam 1.34), ``sigma = SIGMA`` in both populations, the LLM's mean
    shifted by ``SHIFT`` (lam 1.34 -> 1.89, x1.4). Coverage at one truth: near nominal when
    the data outweigh the prior, not exact by construction.
``prior``
    ``mu[g] ~ param.prior`` and ``sigma[g] ~ param.sd_prior`` (HalfNormal(1)) independently per
    population, the model's own prior: the shift ``mu[llm] - mu[human]`` is known per data set
    and varies between them (N(0, sqrt 2)). Coverage over the prior is exact for a correct
    posterior, so a departure beyond binomial error is the sampler's or the report's fault.

Subjects ``u = mu[g] + sigma[g] * z`` (unconstrained, :mod:`cogfit._hierarchy`'s ``mu``), natural
values ``transform(u)``; ``SUBJECTS`` per population x ``TRIALS`` trials of the model's random
design (one design for every data set), choices from :func:`cogfit.simulate`.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
import pandas as pd
import scipy.stats as st

import cogfit

BASE, FIX = "prospect_ra", {"rho": 1.0, "tau": 0.5}
PARAM = "lam"                    # the shifted parameter (loss aversion), the one left free
SHIFT = 0.5                      # unconstrained shift of the LLM's lam mean with truth="fixed"
SIGMA = 0.5                      # subjects' sd around mu (unconstrained) with truth="fixed"
SUBJECTS, TRIALS = 8, 40         # per population
POPULATIONS = ("human", "llm")
PROBS = (0.5, 0.9, 0.95)

__all__ = ["PROBS", "binomial_range", "coverage", "make_datasets", "model", "run"]


def model() -> cogfit.Model:
    """``prospect_ra`` with ``FIX`` held: loss aversion ``lam`` in (0, 5) is its one parameter."""
    return cogfit.models.get(BASE).variant(f"{BASE}_lam", fix=FIX)


def _truth(m: cogfit.Model, truth: str, rng: np.random.Generator) -> tuple[dict, dict]:
    """``(mu, u)`` per parameter: population means ``(G,)`` and subjects' values ``(G * SUBJECTS,)``,
    unconstrained, populations in ``POPULATIONS`` order."""
    G = len(POPULATIONS)
    mu, u = {}, {}
    for p in m.params:
        if truth == "prior":
            k1, k2 = jax.random.split(jax.random.PRNGKey(int(rng.integers(2**31))))
            mean = np.asarray(p.prior.sample(k1, (G,)), np.float64)
            sd = np.asarray(p.sd_prior.sample(k2, (G,)), np.float64)
        elif truth == "fixed":
            mean = np.full(G, float(p.prior.mean)) + (SHIFT * (np.arange(G) == 1) if p.name == PARAM else 0.0)
            sd = np.full(G, SIGMA)
        else:
            raise ValueError(f"truth must be 'prior' or 'fixed', not {truth!r}")
        mu[p.name] = mean
        u[p.name] = np.repeat(mean, SUBJECTS) + np.repeat(sd, SUBJECTS) * rng.standard_normal(G * SUBJECTS)
    return mu, u


def make_datasets(reps: int, *, truth: str = "fixed", seed: int = 0) -> tuple[list[cogfit.TrialData], np.ndarray]:
    """``reps`` simulated data sets and the true ``mu`` of ``PARAM`` per data set and population
    ``(reps, 2)`` (unconstrained scale)."""
    m = model()
    design = cogfit.random_design(m, n_subjects=len(POPULATIONS) * SUBJECTS, n_trials=TRIALS, seed=seed)
    design["population"] = np.repeat(POPULATIONS, SUBJECTS)[design["subject"].to_numpy()]
    rng = np.random.default_rng([seed, reps])
    datasets, mus = [], []
    for r in range(reps):
        mu, u = _truth(m, truth, rng)
        values = {p.name: np.asarray(p.transform.forward(u[p.name])) for p in m.params}
        table = cogfit.simulate(m, design, values, seed=seed + 1000 * (r + 1))
        datasets.append(cogfit.TrialData.from_table(table, m, populations=list(POPULATIONS)))
        mus.append(mu[PARAM])
    return datasets, np.asarray(mus)


def coverage(batch, true_mu: np.ndarray, *, probs=PROBS, offset: float = 0.0) -> pd.DataFrame:
    """One row per data set of ``batch`` (:func:`cogfit.fit_batch`'s result): the true
    natural-scale difference ``f(mu_llm + offset) - f(mu_human)`` of ``PARAM`` (``offset`` != 0: a
    deliberately wrong truth), the ``Fit.differences()`` interval at each of ``probs`` (``lo_<pct>``,
    ``hi_<pct>``) and whether it covers the truth (``in_<pct>``); ``pit``, the share of the
    difference's draws below the truth (uniform over data sets for a calibrated posterior);
    ``divergences`` and the difference's ``r_hat``."""
    f = next(p for p in batch.model.params if p.name == PARAM).transform.forward
    rows = []
    for i in range(len(batch)):
        fit = batch.fit(i)
        true = float(f(true_mu[i, 1] + offset) - f(true_mu[i, 0]))
        g = fit.posterior[f"{PARAM}_group"]
        draws = (g.sel(population="llm") - g.sel(population="human")).values
        row = dict(rep=i, true_shift_u=float(true_mu[i, 1] + offset - true_mu[i, 0]), true_diff=true,
                   pit=float(np.mean(draws < true)), divergences=int(np.sum(batch.stats["diverging"][i])))
        for prob in probs:
            d = fit.differences([PARAM], reference="human", prob=prob).iloc[0]
            pct = round(100 * prob)
            row.update({f"lo_{pct}": d["lo"], f"hi_{pct}": d["hi"], f"in_{pct}": bool(d["lo"] <= true <= d["hi"])})
            row.update(mean=d["mean"], r_hat=d["r_hat"])
        rows.append(row)
    return pd.DataFrame(rows)


def binomial_range(n: int, prob: float, level: float = 0.99) -> tuple[int, int]:
    """Counts ``[lo, hi]`` a two-sided binomial test at ``1 - level`` accepts for ``n`` data sets
    at nominal coverage ``prob``: ``k`` with P(X <= k) and P(X >= k) both above ``(1 - level) / 2``
    under X ~ Binomial(n, prob)."""
    k = np.arange(n + 1)
    ok = (st.binom.cdf(k, n, prob) > (1 - level) / 2) & (st.binom.sf(k - 1, n, prob) > (1 - level) / 2)
    return int(k[ok].min()), int(k[ok].max())


def fit(datasets, *, draws: int, tune: int, seed: int, progress: bool = False):
    """Every data set fitted with 2 non-centred NUTS chains in one vectorised program."""
    method = cogfit.NUTS(draws=draws, tune=tune, chains=2, centered=False)
    return cogfit.fit_batch(model(), datasets, method=method, seed=seed, progress=progress)


def run(reps: int, *, truth: str = "fixed", draws: int = 300, tune: int = 300, chunk: int = 40, seed: int = 0,
        offset: float = 0.0) -> tuple[pd.DataFrame, float]:
    """Simulate, fit (chunks of ``chunk`` data sets: one compiled program, reused) and score;
    ``(table, seconds of fitting)``."""
    datasets, mus = make_datasets(reps, truth=truth, seed=seed)
    tables, seconds = [], 0.0
    for start in range(0, reps, chunk):
        part = datasets[start:start + chunk]
        if len(part) < chunk:                          # pad the last chunk: the same shapes, one program
            part = part + datasets[:chunk - len(part)]
        t0 = time.perf_counter()
        batch = fit(part, draws=draws, tune=tune, seed=seed + start)
        seconds += time.perf_counter() - t0
        t = coverage(batch, mus[start:start + chunk], offset=offset).iloc[:min(chunk, reps - start)]
        tables.append(t.assign(rep=t["rep"] + start))
        print(f"  {truth}: {start + len(t)}/{reps} data sets, {seconds:.0f} s", flush=True)
    return pd.concat(tables, ignore_index=True), seconds


def report(table: pd.DataFrame, truth: str, seconds: float) -> str:
    """Coverage per probability with its exact (Clopper-Pearson) 95% interval and the counts a
    two-sided 1% binomial test accepts; the PIT's Kolmogorov-Smirnov p-value against uniform."""
    n = len(table)
    ks = st.kstest(table["pit"], "uniform").pvalue
    lines = [f"truth={truth}: {n} data sets, fitting {seconds:.0f} s; fits with divergences "
             f"{int((table['divergences'] > 0).sum())}, max R-hat of the difference {table['r_hat'].max():.3f}; "
             f"PIT uniform KS p = {ks:.2f}"]
    for prob in PROBS:
        k = int(table[f"in_{round(100 * prob)}"].sum())
        ci = st.binomtest(k, n).proportion_ci(0.95, method="exact")
        lo, hi = binomial_range(n, prob)
        lines.append(f"  {prob:.0%} interval: covered {k}/{n} = {k / n:.3f} (95% CI {ci.low:.3f}-{ci.high:.3f}); "
                     f"nominal accepts {lo}-{hi} at 1%")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--truth", choices=["prior", "fixed"], default="fixed")
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--tune", type=int, default=200)
    ap.add_argument("--chunk", type=int, default=40, help="data sets per vectorised program")
    ap.add_argument("--offset", type=float, default=0.0, help="add this to the true shift (a wrong truth)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", help="CSV with every data set's row")
    args = ap.parse_args(argv)
    table, seconds = run(args.reps, truth=args.truth, draws=args.draws, tune=args.tune, chunk=args.chunk,
                         seed=args.seed, offset=args.offset)
    if args.out:
        table.to_csv(args.out, index=False)
    print(report(table, args.truth, seconds), flush=True)


if __name__ == "__main__":
    main()
