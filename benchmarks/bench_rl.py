"""Benchmarks for the reinforcement-learning family (a script, not a test).

Eight parts, each printing a JSON result (and writing it with ``--out``):

``nuts``
    The real-data fit: Dezfouli et al. (2019) two-armed bandit (101 participants, 132,251
    choices, 12 blocks), dual-learning-rate learner with one-back perseveration that restarts at
    each block, diagnosis (Healthy / Depression / Bipolar) as population, NUTS. The default
    learner is ``bandit_dual_rep_h_blocks`` (``beta_h`` for the inverse temperature; ``--model
    bandit_dual_rep_blocks`` for ``beta`` itself, as in the measurements before the last ones
    below). Reports wall time, max R-hat, min bulk ESS, ESS per second, divergences,
    ``flagged_values`` and ``split_subjects`` (:meth:`cogfit.Fit.flags`) and the differences
    between diagnoses (:meth:`cogfit.Fit.differences`: posterior mean, 94% equal-tailed
    interval, P(difference > 0) and the difference's R-hat, natural scale) of the typical member
    (``<param>_group``) and of the participants' mean, the latter also without split
    participants. ``--exclude`` leaves participants out of the fit. Defaults (``DEFAULT_FIT``):
    ``--init svi --centered auto`` (centring per participant and parameter from the SVI pilot),
    ``--population student_t --nu 4``, ``--jumps auto``, ``--blocks population``; before the
    last measurements below they were a normal population, no jumps, the joint posterior.

    Measured, all 4 x 1000 + 1000, float32, ``--cores 2`` (max R-hat / values above 1.01 /
    divergences, wall):

    - normal population: 1.116 / 42 / 0, 63 min (chains one after another). Two runs of 2 x
      2500 pooled fall into a funnel: the Healthy ``alpha_neg`` sd (logit) drops from ~2.2 to
      0.07 in one chain, 390 divergences. 31 of 34 Healthy participants have ``alpha_neg``
      0.95-0.995; s_31_d (0.13) is an outlier only a wide sd holds, so the sd has two modes.
    - ``--population student_t`` (fitted ``nu``): 611 leapfrog steps per draw, stopped.
    - ``--population student_t --nu 4``: 1.25 / 45 / 0, 48 min: the funnel is gone, but
      participants with two regimes keep their chains apart (a fast learner with a low inverse
      temperature and a slow one, alpha -> 0 with alpha * beta nearly constant, a dip of 5-11
      nats between; ``profile``, ``modes``).
    - ``--nu 4 --jumps FILE`` (``jumps``, BFGS from six starts, 15 participants): 1.103 / 31 / 0.
    - ``--nu 4 --jumps auto``, search under the SVI pilot's populations (7 participants):
      1.072 / 16 / 0, 59 min.
    - ``--nu 4 --jumps auto`` (search after warm-up, 25 participants): 1.214 / 5 / 0, all on
      s_088_, one of whose chains spent ~400 draws on the alpha -> 1 plateau (``alpha_neg``
      logit out to 16 under the t tail; alone under its population it mixes, ``modes``).
    - normal population ``--jumps auto`` (26 participants): 1.029 / 11 / 6, 38 min: the
      Healthy ``alpha_neg`` funnel again (s_31_d, sd down to 0.1).
    - ``--nu 4 --jumps auto`` with the moved coordinates' mass widened after warm-up
      (:func:`cogfit._nuts.widen_mass`): **1.025 / 5 / 0**, 67 min, 142 steps per draw, min bulk
      ESS 160; s_088_ now mixes. What is left is one chain (step size 0.015 against 0.041-0.048,
      255 steps per draw) dipping into small Healthy ``alpha_neg`` sds (its 5% quantile 0.17,
      others 0.72-0.87) with s_31_d pulled up: s_31_d ``alpha_neg`` 1.025, ``beta`` 1.017, the
      sd 1.016; also s_120_ ``alpha_pos`` 1.015 and s_069_ 1.010.
    - ``--nu 4 --jumps auto --blocks population`` (each diagnosis alone, ``cogfit.fit(blocks=
      "population")``): 1.032 / 29 / 21, 60 min. The Healthy block now mixes (every chain
      1-2% of draws at a small ``alpha_neg`` sd, step size 0.09-0.10 against 0.045 jointly),
      but 28 of the 29 values are Depression's: its chains adapted 0.045-0.08 before the jumps
      and the widened mass, after which one chain's acceptance fell to 0.19 (13 divergences).
    - the same with the step size re-adapted once the jumps start
      (:func:`cogfit._nuts.restart_step_size`), the Depression block alone with its block seed
      (34 participants, 47 min beside a CI run): max R-hat 1.008, 1 divergence (most of the 21
      before), acceptance 0.86-0.94, min bulk ESS 384.
    - the three-block run with it (``--nu 4 --jumps auto --blocks population``, 24 participants
      with moves): **1.015 / 2 / 2**, 67 min, min bulk ESS 261 (also flagged: Depression's
      s_146_ and s_011_ ``alpha_neg``, ESS 384 and 392). Each block is its own seeded
      run, so Depression and Bipolar repeat their runs alone: Healthy mixes (acceptance
      0.90-0.95, step 0.09), one divergence each in Healthy and Depression; the R-hat left is
      Bipolar's, s_088_ ``alpha_pos`` 1.015 (its upper mode holds 6-16% of each chain's draws)
      and s_042_ ``alpha_pos`` 1.014 (ESS 261, no move: chains drift on the alpha -> 1 plateau,
      12-21% of draws above 0.8). ``per_population`` in the report has acceptance, step size and
      leapfrog steps per population and chain. One diagnosis alone with the same block seed
      (``benchmarks/rl_block.py``): Bipolar with 2000 draws reaches **1.007, 0 divergences**,
      min ESS 913; Healthy with 2000 draws and target_accept 0.95 1.003 but 2 divergences.
    - Healthy alone in float64 (``JAX_ENABLE_X64=1``): still 1 divergence (chain 2, draw 950),
      max R-hat 1.014, min ESS 307, 16 min. The divergent draw is at s_4_da's extreme:
      ``alpha_pos`` 0.0045 with ``beta`` 4.8 (its 0.05% upper quantile), a participant whose
      choices are mostly perseveration (``beta`` median 0.07, learning rates barely identified):
      the ``alpha * beta = const`` ridge of slow learners, curved on the unconstrained scale.
    - So the default learner became ``bandit_dual_rep_h_blocks`` (``beta_h``: the same
      likelihood with that ridge flattened into a plateau in ``alpha``), the rest as before
      (now ``nuts``' defaults). Each diagnosis alone (``rl_block.py``, float32, 4 x 1000):
      Healthy **1.0065, 0 divergences, min ESS 949** (14 min; ``beta``: 1.014 / 1 / 307);
      Depression 1.016, **0 divergences**, min ESS 391 (39 min, step 0.023-0.026, 130-180
      leapfrog steps per draw; flagged s_118_ ``alpha_pos`` 1.016 and s_146_ ``alpha_neg``
      1.013, neither split: more draws, as Bipolar needed with ``beta``); Bipolar with 2000
      draws **1.004, 0 divergences, min ESS 1036**, nothing flagged (61 min beside a CI run;
      step 0.018-0.021, ~250 leapfrog steps per draw).
    - The full run with these defaults, ``--draws 2000`` (session 18, read off ``--progress``;
      the run outlasted the session): Healthy 2 divergences in chains 3-4 after draw 1000. That
      was before the derived-quantity commits; each diagnosis alone with 2000 draws since
      (``rl_block.py``, float32): Healthy **1.0022, 0 divergences, min ESS 2216** (15 min),
      Depression **1.0049, 0, 849** (44 min), Bipolar **1.004, 0, 1036** (61 min).
    - **2000 draws are now ``nuts``' default.** The full run with all defaults (session 21,
      ``bench_rl.py nuts --cores 2 --save dez.nc``, float32, alone on 2 cores, 92 min): **max
      R-hat 1.0049, 0 divergences, min bulk ESS 849, 0.154 ESS/s**, nothing flagged, no split
      participants (R-hat and ESS over the parameters and the derived ``beta``). Healthy's and
      Depression's acceptance, step size and leapfrog steps per chain equal their ``rl_block.py``
      runs to the last digit (same block seed, same program): Healthy step 0.064-0.095 / 44-63
      steps, Depression 0.023-0.026 / 131-181, Bipolar 0.018-0.021 / 239-255. Mode jumps for 26
      participants.
      Typical-member differences (``differences``, 94% interval): ``alpha_pos`` Bipolar -
      Healthy -0.77 [-0.95, -0.37], ``alpha_neg`` Bipolar - Healthy -0.61 [-0.91, -0.18],
      ``beta_c`` (perseveration) Depression - Healthy -0.98 [-1.58, -0.37]; participants' mean
      (``differences_members``): ``alpha_pos`` Bipolar - Healthy -0.59 [-0.68, -0.47].

    The differences between diagnoses barely move through all of these (e.g. ``alpha_neg``
    Bipolar - Healthy -0.78 [-0.94, -0.45] normal, -0.73 [-0.95, -0.32] Student-t).
``report``
    The same report for a fit saved by ``nuts --save`` (``--fit``), without refitting.
``subjects``
    Each participant alone (``pooling="none"``, NUTS 4 chains of ``--tune`` + ``--draws``): which
    participants' posteriors are multimodal or slow to mix (R-hat per parameter, chain means).
    A participant whose chains settle in different modes (a slow learner with a high inverse
    temperature against a fast one with a low) keeps the hierarchical fit from R-hat <= 1.01.
``profile``
    Profile log-likelihood of single participants (``--participants``, default s_20_d, s_022_,
    s_133_ and s_146_, who have two regimes) over their mean learning rate, the other
    parameters maximised (float64, BFGS).
``modes``
    Participants alone (``--participants``) under their population (posterior-mean
    mu, sigma of a fit saved by ``nuts --save``, ``--fit``) as the prior, long chains: the
    fraction of draws in the slow mode per chain and how often chains switch mode.
``jumps``
    Mode-jump moves for ``nuts --jumps`` and ``modes --jumps``: every participant alone under
    its population (a fit saved by ``nuts --save``, ``--fit``), maximised from six starts;
    participants whose best slow and fast optima are distinct and within ``--gap`` nats (default
    8) get the displacement between them (``cogfit.fit(..., jumps=...)``, :mod:`cogfit._jump`).
    Also runs ``jumps="auto"``'s search (:mod:`cogfit._modes`) under the same populations and
    reports the agreement. Measured on the Student-t ``nu = 4`` fit: BFGS 15 participants,
    the search 23 (float64), 13 in both, with the same displacement (up to sign) where both
    found the same second mode; the search also finds s_133_ and s_134_.
    ``nuts --jumps auto`` uses ``cogfit.fit(..., jumps="auto")`` (search after warm-up).
``svi-real``
    The same fit by SVI with a low-rank multivariate-normal guide (minutes on a CPU; its
    intervals are approximate and tend to be too narrow).
``svi``
    Scale: synthetic subjects x trials (default 10,000 x 500 = 5 million choices) simulated from
    ``bandit_dual_rep`` on drifting bandits, then SVI (mean-field normal guide, Adam) on the
    hierarchical model. Reports compile time and seconds per SVI step and per 1,000 steps, on
    whatever device JAX uses (``--device`` prints it; the H200 target is < 50 ms per step).

Usage::

    COGFIT_DATA_MIRROR=../shared/data python benchmarks/bench_rl.py nuts [--subjects 12] [--draws 500 --tune 500]
    COGFIT_DATA_MIRROR=../shared/data python benchmarks/bench_rl.py report --fit dez.nc
    COGFIT_DATA_MIRROR=../shared/data python benchmarks/bench_rl.py subjects --tune 300 --draws 300
    COGFIT_DATA_MIRROR=../shared/data python benchmarks/bench_rl.py profile [--participants s_20_d]
    COGFIT_DATA_MIRROR=../shared/data python benchmarks/bench_rl.py modes --fit dez.nc --draws 5000
    python benchmarks/bench_rl.py svi [--subjects 10000 --trials 500 --steps 20 --unroll 1 8]

The prepared device run (one H200; JAX with CUDA installed there)::

    python benchmarks/bench_rl.py svi --steps 100 --unroll 1 4 16 --out $OUT/svi_h200.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import get_args

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

import cogfit
from cogfit._hierarchy import Pooling, Population

DIAGNOSES = ("Healthy", "Depression", "Bipolar")
REAL_MODEL = "bandit_dual_rep_h_blocks"   # the nuts default: beta_h for beta (see the docstring)
BETA_MODEL = "bandit_dual_rep_blocks"     # the same likelihood with beta itself (profile)
# cogfit.fit settings of nuts' defaults (and of rl_block.py): Student-t population with nu fixed
# at 4, centring per participant and parameter and the start from an SVI pilot, mode-jump moves
# found after warm-up; nuts also fits each diagnosis alone (blocks="population").
DEFAULT_FIT = dict(population="student_t", nu=4.0, centered="auto", init="svi", jumps="auto")
# nuts' draws per chain: what every diagnosis needs for R-hat <= 1.01 and no divergences (docstring).
NUTS_DRAWS = 2000


def leapfrog_steps(fit: cogfit.Fit) -> np.ndarray:
    """Leapfrog steps (gradients) per draw ``(chain, draw)``, summed over populations run alone."""
    n = fit.tree["sample_stats"]["n_steps"]
    return (n.sum("population") if "population" in n.dims else n).values


def per_population(fit: cogfit.Fit) -> dict | None:
    """With ``blocks="population"``: each population's divergences and, per chain, mean
    acceptance, step size and leapfrog steps per draw (None for a joint fit)."""
    stats = fit.tree["sample_stats"]
    if "population" not in stats["n_steps"].dims:
        return None
    return {str(label): dict(divergences=int(stats["diverging_population"].isel(population=g).sum()),
                             **chain_stats(stats.isel(population=g)))
            for g, label in enumerate(fit.data.populations)}


def chain_stats(stats) -> dict:
    """Per chain of one NUTS run's ``sample_stats``: mean acceptance, step size and leapfrog
    steps per draw."""
    def by_chain(name):
        return [round(float(v), 3) for v in stats[name].mean("draw").values]

    return dict(acceptance=by_chain("acceptance_rate"), step_size=by_chain("step_size"),
                leapfrog_steps=by_chain("n_steps"))


def dezfouli_table(n_per_group: int | None) -> pd.DataFrame:
    """The tidy dezfouli2019 table, optionally the first ``n_per_group`` participants per diagnosis."""
    import cogfit.datasets

    table = cogfit.datasets.load("psych201/dezfouli2019")
    if n_per_group is not None:
        keep = table.groupby("population")["subject"].unique().apply(lambda s: list(s[:n_per_group])).sum()
        table = table[table["subject"].isin(keep)]
    return table


def report(fit: cogfit.Fit, flags: pd.DataFrame) -> dict:
    """Group means and differences between diagnoses (94% equal-tailed intervals, natural scale),
    of the parameters and of the model's derived quantities (``beta`` of a ``beta_h`` learner).

    ``differences``: of the typical member (``<p>_group``; with ``pooling="none"``, of the
    members' mean); ``differences_members``: of the mean of each diagnosis' participants;
    ``differences_members_without_split``: the same without the participants whose chains sit in
    separate modes (``flags``: :meth:`cogfit.Fit.flags`, already computed by the caller), which
    shows how much the comparison rests on them.
    """
    summary = "group" if fit.meta["pooling"] != "none" else "members"
    post = fit.quantities()                                  # parameters and derived (beta of beta_h)
    pops = fit.data.subject_populations
    means = {p: {d: round(float(post[f"{p}_group"].sel(population=d).mean() if summary == "group"
                                else post[p].values[..., pops == d].mean()), 4) for d in DIAGNOSES}
             for p in fit.model.param_names + fit.model.derived_names}
    split = sorted(set(flags[flags.split & flags.subject.notna()].subject))

    def rows(**kw):
        return fit.differences(prob=0.94, **kw).round(4).to_dict("records")

    out = dict(group_means=means, summary=summary, differences=rows(summary=summary),
               differences_members=rows(summary="members"), split_participants=split)
    if split:
        out["differences_members_without_split"] = rows(summary="members", exclude=split)
    return out


def bench_nuts(args) -> dict:
    table = dezfouli_table(args.subjects)
    if args.exclude:
        missing = sorted(set(args.exclude) - set(table.subject))
        if missing:
            raise SystemExit(f"nuts: --exclude names participants not in the data: {missing}")
        table = table[~table.subject.isin(args.exclude)]
    model = cogfit.models.get(args.model)
    data = cogfit.TrialData.from_table(table, model, populations=DIAGNOSES)
    jumps = args.jumps or DEFAULT_FIT["jumps"]              # "auto", "none" or a file from ``jumps``
    if jumps == "none":
        jumps = None
    elif jumps != "auto":
        with open(jumps) as f:
            fitted = set(table.subject)
            jumps = {s: d for s, d in json.load(f)["jumps"].items() if s in fitted}
    nu = args.nu if args.population == "student_t" else None
    t0 = time.perf_counter()
    fit = cogfit.fit(model, data, method="nuts", draws=args.draws, tune=args.tune, chains=args.chains,
                     seed=args.seed, progress=args.progress, warn=False, pooling=args.pooling,
                     population=args.population, nu=nu,
                     centered={"trials": None, "auto": "auto", "yes": True, "no": False}[args.centered],
                     dense_mass=args.dense_mass, target_accept=args.target_accept, init=args.init,
                     steps=args.steps, jumps=jumps, blocks=args.blocks)
    wall = time.perf_counter() - t0
    check = fit.check()
    flags = fit.flags()
    if args.save:
        fit.save(args.save)
    split = flags[flags.split & flags.subject.notna()]
    return dict(
        part="nuts", model=model.name, pooling=args.pooling, population=args.population, nu=nu,
        subjects=data.n_subjects, excluded=args.exclude,
        choices=int(data.mask.sum()), jumps=sorted(fit.meta.get("jumps", ())),
        jumps_search_s=fit.meta.get("jumps_search_s"),
        draws=args.draws, tune=args.tune, chains=args.chains, centered=args.centered,
        centered_pairs=fit.meta["centered"],
        centered_by_param=dict(zip(model.param_names, fit.meta["centered_by_param"])),
        dense_mass=args.dense_mass, target_accept=args.target_accept, init=args.init,
        init_loss=fit.meta.get("init_loss"), wall_s=round(wall, 1),
        mean_leapfrog_steps=round(float(leapfrog_steps(fit).mean()), 1), blocks=args.blocks,
        per_population=per_population(fit),
        max_rhat=round(check["max_rhat"], 4), min_ess_bulk=round(check["min_ess_bulk"], 1),
        ess_per_s=round(check["min_ess_bulk"] / wall, 3), divergences=check["divergences"],
        flagged_values=len(flags), split_values=int(flags.split.sum()),
        split_subjects={s: {r.variable: [round(m, 4) for m in r.chain_medians] for r in d.itertuples()}
                        for s, d in split.groupby("subject", sort=False)},
        **report(fit, flags),
        device=str(jax.devices()[0]), chain_method=fit.meta["chain_method"],
    )


def bench_report(args) -> dict:
    """The report of a fit saved by ``nuts --save`` (``--fit``), without refitting."""
    fit = cogfit.load(args.fit)
    check = fit.check()
    flags = fit.flags()
    return dict(part="report", fit=args.fit, model=fit.model.name, subjects=fit.data.n_subjects,
                draws=fit.meta["draws"], chains=fit.meta["chains"], max_rhat=round(check["max_rhat"], 4),
                min_ess_bulk=round(check["min_ess_bulk"], 1), divergences=check["divergences"],
                flagged_values=len(flags), split_values=int(flags.split.sum()), **report(fit, flags))


def bench_subjects(args) -> dict:
    """Per-participant fits: R-hat and chain means of every parameter, worst participants first."""
    import arviz as az

    table = dezfouli_table(args.subjects)
    model = cogfit.models.get(args.model)
    rows = []
    t0 = time.perf_counter()
    for s, one in table.groupby("subject", sort=False):
        data = cogfit.TrialData.from_table(one, model)
        fit = cogfit.fit(model, data, method="nuts", pooling="none", draws=args.draws, tune=args.tune,
                         chains=args.chains, seed=args.seed, progress=False, warn=False)
        row = dict(subject=s, population=one["population"].iloc[0], choices=int(data.mask.sum()),
                   divergences=int(fit.tree["sample_stats"]["diverging"].sum()))
        for p in model.param_names:
            row[f"{p}_rhat"] = round(float(az.rhat(fit.posterior[p]).max()), 3)
            row[f"{p}_chain_means"] = [round(float(m), 4) for m in fit.posterior[p].values[..., 0].mean(1)]
        row["max_rhat"] = max(row[f"{p}_rhat"] for p in model.param_names)
        rows.append(row)
        if args.progress:
            print(row, flush=True)
    rows.sort(key=lambda r: -r["max_rhat"])
    return dict(part="subjects", model=model.name, participants=len(rows), draws=args.draws, tune=args.tune,
                chains=args.chains, wall_s=round(time.perf_counter() - t0, 1),
                rhat_above_1_01=sum(r["max_rhat"] > 1.01 for r in rows),
                rhat_above_1_1=sum(r["max_rhat"] > 1.1 for r in rows), worst=rows[:10])


def bench_profile(args) -> dict:
    """Profile log-likelihood of single participants over their mean learning rate (float64).

    On a grid of ``a`` (logit scale), ``alpha_pos = sigmoid(a + d)`` and ``alpha_neg =
    sigmoid(a - d)``; ``d``, ``log beta`` and ``beta_c`` are maximised (BFGS from three starts).
    Shows where the likelihood of a participant has two regimes: a fast learner (``a`` > 0) and
    a slow one whose likelihood rises as ``a`` -> -inf with ``alpha * beta`` nearly constant
    (values then move as reward counts within a block). BFGS starts from three fixed points and
    from the previous grid point's optimum (a profile, so local optima can leave small dents).
    """
    from scipy.optimize import minimize

    jax.config.update("jax_enable_x64", True)
    model = cogfit.models.get(BETA_MODEL)
    table = dezfouli_table(None)
    out = {}
    for s in args.participants:
        one = table[table.subject == s]
        if one.empty:
            raise SystemExit(f"profile: no participant {s!r} in dezfouli2019")
        data = cogfit.TrialData.from_table(one, model)
        trials = cogfit.Record({k: jnp.asarray(v[0]) for k, v in data.fields.items()})

        def nll(x, a):
            theta = cogfit.Record(dict(alpha_pos=jax.nn.sigmoid(a + x[2]), alpha_neg=jax.nn.sigmoid(a - x[2]),
                                       beta=jnp.exp(x[0]), beta_c=x[1]))
            return -jnp.sum(jnp.where(trials["mask"], model.loglik(theta, trials), 0.0))

        f, g = jax.jit(nll), jax.jit(jax.grad(nll))
        rows, previous = [], []
        for a in np.arange(-7.0, 5.01, 0.5):
            fits = [minimize(f, np.array(x0, float), args=(a,), jac=g, method="BFGS")
                    for x0 in ([0.0, 1.0, 0.0], [2.0, 1.0, 0.0], [-1.0, 1.0, 0.0], *previous)]
            best = min((r for r in fits if np.isfinite(r.fun)), key=lambda r: r.fun)
            previous = [best.x]
            alpha = float(jax.nn.sigmoid(a))
            beta = float(np.exp(best.x[0]))
            rows.append(dict(logit_alpha=float(a), loglik=round(-float(best.fun), 2), beta=round(beta, 4),
                             alpha_times_beta=round(alpha * beta, 4), beta_c=round(float(best.x[1]), 3)))
        out[s] = dict(population=str(one["population"].iloc[0]), choices=int(data.mask.sum()), profile=rows)
    return dict(part="profile", model=model.name, precision="float64", participants=out)


def populations(hier: cogfit.Fit) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Posterior means of the hierarchical fit ``hier``'s populations on the unconstrained scale:
    ``mu`` and ``sigma`` shaped ``(diagnosis, param)`` (rows in ``DIAGNOSES`` order, columns in
    the model's parameter order) and, for a Student-t population, ``nu`` shaped ``(param,)``
    (``None`` for a normal one)."""
    post, names = hier.posterior, hier.model.param_names
    mu, sigma = (np.stack([post[f"{p}_{k}"].mean(("chain", "draw")).sel(population=list(DIAGNOSES)).values
                           for p in names], axis=-1) for k in ("mu", "sigma"))
    nu = None
    if hier.meta.get("population") == "student_t":
        nu = np.array([hier.meta.get("nu") or float(post[f"{p}_nu"].mean()) for p in names])
    return mu, sigma, nu


def under_population(hier: cogfit.Fit, pop: str) -> cogfit.Model:
    """The fitted model with each parameter's prior set to population ``pop``'s distribution of
    subjects in the hierarchical fit ``hier`` (:func:`populations`), on the unconstrained scale:
    one subject alone under it."""
    import dataclasses

    import numpyro.distributions as dist

    mu, sigma, nu = populations(hier)
    g = DIAGNOSES.index(pop)

    def prior(j):
        if nu is not None:
            return dist.StudentT(float(nu[j]), float(mu[g, j]), float(sigma[g, j]))
        return dist.Normal(float(mu[g, j]), float(sigma[g, j]))

    base = hier.model
    return dataclasses.replace(base, name=f"{base.name}_under_{pop}",
                               params=tuple(p._replace(prior=prior(j)) for j, p in enumerate(base.params)))


def bench_modes(args) -> dict:
    """Split participants alone, under their population as the prior, with long chains.

    Reads a hierarchical fit saved by ``nuts --save`` (``--fit``); each participant in
    ``--participants`` is fitted alone (``pooling="none"``) with every parameter's prior set to
    its population's posterior-mean ``N(mu, sigma)`` (Student-t with the posterior-mean ``nu``
    for a ``--population student_t`` fit) on the unconstrained scale, NUTS 4 x
    (1000 + ``--draws``). Reports per chain the fraction of draws in the slow mode (``alpha_pos``
    below 0.05) and how often the chain switches mode: whether the modes hold mass each and how
    many draws a chain needs to visit both. With ``--jumps`` (the file ``jumps --out`` writes)
    participants listed there get their mode-jump move (``cogfit.fit(..., jumps=...)``).
    Measured (``modes --fit`` the Student-t ``nu = 4`` fit, ``--draws 2000``, participants
    s_20_d s_146_ s_134_ s_020_; without / with ``--jumps`` from ``jumps``): max R-hat 1.0046 /
    1.0031, 1.0434 / 1.0066, 1.0162 / 1.0025, 1.0021 / 1.001; min bulk ESS 706 / 1646, 115 / 692,
    385 / 2233, 2769 / 3366; mode switches per chain 0-3 / 36-46, 168-241 / 341-394, 92-105 /
    529-555, 6-18 / 10-34; divergences 0 / 0, 1 / 0, 0 / 5, 0 / 0; the same wall time (45-84 s).
    """
    hier = cogfit.load(args.fit)
    base = hier.model
    moves = {}
    if args.jumps:
        with open(args.jumps) as f:
            moves = json.load(f)["jumps"]
    table = dezfouli_table(None)
    out = {}
    for s in args.participants:
        one = table[table.subject == s]
        pop = str(one["population"].iloc[0])
        model = under_population(hier, pop)
        data = cogfit.TrialData.from_table(one, model)
        t0 = time.perf_counter()
        jump = moves.get(s)
        fit = cogfit.fit(model, data, pooling="none", draws=args.draws, tune=1000, chains=4, seed=args.seed,
                         progress=False, warn=False, jumps=jump and {s: jump})
        check = fit.check()
        slow = fit.posterior["alpha_pos"].values[..., 0] < 0.05              # (chain, draw)
        out[s] = dict(population=pop, jump=jump, wall_s=round(time.perf_counter() - t0, 1),
                      max_rhat=round(check["max_rhat"], 4), min_ess_bulk=round(check["min_ess_bulk"], 1),
                      divergences=check["divergences"],
                      slow_fraction=[round(float(c.mean()), 3) for c in slow],
                      switches=[int(np.sum(c[1:] != c[:-1])) for c in slow])
        if args.progress:
            print(s, out[s], flush=True)
    return dict(part="modes", model=base.name, fit=args.fit, draws=args.draws, participants=out)


def bench_jumps(args) -> dict:
    """Mode-jump displacements for ``nuts --jumps``: each participant alone under its population
    (posterior means of a hierarchical fit saved by ``nuts --save``, ``--fit``, as the prior),
    maximised by BFGS in float64 from the six starts of ``learner_ml.py`` (learning rates' logit
    -5, -1, 2 by log inverse temperature 0, 2). The best slow optimum (mean value learning rate
    below ``learner_ml.SLOW``) and the best fast one, if both exist, distinct (unconstrained values
    more than 1 apart) and within ``--gap`` nats of each other, give ``{param: fast - slow}``.
    Also runs ``cogfit.fit(..., jumps="auto")``'s search under the same populations (float64
    here) and reports which participants both find and how far their displacements differ
    (``auto``; a displacement and its negative are the same move).
    """
    from jax.flatten_util import ravel_pytree
    from learner_ml import SLOW, starts, value_rate
    from numpyro.infer.util import initialize_model
    from scipy.optimize import minimize

    from cogfit._hierarchy import build, model_args

    jax.config.update("jax_enable_x64", True)
    hier = cogfit.load(args.fit)
    base = hier.model
    table = dezfouli_table(None)
    out, gaps = {}, {}
    for s, one in table.groupby("subject", sort=False):
        pop = str(one["population"].iloc[0])
        model = under_population(hier, pop)
        data = cogfit.TrialData.from_table(one, model)
        info = initialize_model(jax.random.key(0), build(model, data, pooling="none"), model_args=model_args(data))
        flat, unravel = ravel_pytree(info.param_info.z)
        f = jax.jit(lambda x: info.potential_fn(unravel(x)))
        g = jax.jit(jax.grad(lambda x: info.potential_fn(unravel(x))))
        best: dict[str, tuple[float, dict]] = {}
        for x0 in starts(model.param_names):
            z0 = {f"{n}_u": np.full(np.shape(info.param_info.z[f"{n}_u"]), x0[i])
                  for i, n in enumerate(model.param_names)}
            r = minimize(f, np.asarray(ravel_pytree(z0)[0]), jac=g, method="BFGS")
            if not np.isfinite(r.fun):
                continue
            x = {k[: -len("_u")]: float(np.ravel(v)[0]) for k, v in unravel(r.x).items()}
            theta = {p.name: float(p.transform.forward(x[p.name])) for p in model.params}
            regime = "slow" if value_rate(theta) < SLOW else "fast"
            if regime not in best or r.fun < best[regime][0]:
                best[regime] = (float(r.fun), x)
        if len(best) < 2:
            continue
        (f_slow, slow), (f_fast, fast) = best["slow"], best["fast"]
        distance = max(abs(fast[p] - slow[p]) for p in fast)
        if distance > 1.0 and abs(f_slow - f_fast) < args.gap:
            out[s] = {p: round(fast[p] - slow[p], 4) for p in fast}
            gaps[s] = round(f_slow - f_fast, 2)
        if args.progress:
            print(s, {k: round(v[0], 2) for k, v in best.items()}, s in out, flush=True)
    auto = auto_jumps(hier, table, args.gap)
    both = sorted(set(out) & set(auto))
    return dict(part="jumps", fit=args.fit, model=base.name, gap=args.gap, participants=len(out),
                nats_slow_minus_fast=gaps, jumps=out,
                auto=dict(participants=len(auto), both=both, only_bfgs=sorted(set(out) - set(auto)),
                          only_auto=sorted(set(auto) - set(out)),
                          max_abs_difference=max((min(abs(out[s][p] - auto[s][p]), abs(out[s][p] + auto[s][p]))
                                                  for s in both for p in out[s]), default=None),
                          jumps=auto))


def auto_jumps(hier: cogfit.Fit, table: pd.DataFrame, gap: float) -> dict:
    """``cogfit.fit(..., jumps="auto")``'s search (:func:`cogfit._modes.find_jumps`) under the
    posterior-mean populations of ``hier``, to compare with the BFGS search of ``jumps``."""
    from cogfit._modes import find_jumps

    data = cogfit.TrialData.from_table(table, hier.model, populations=DIAGNOSES)
    mu, sigma, nu = populations(hier)
    found = find_jumps(hier.model, data, mu, sigma, nu, key=jax.random.key(0), gap=gap)
    return {s: {p: round(v, 4) for p, v in d.items()} for s, d in found.items()}


def bench_svi_real(args) -> dict:
    """The dezfouli fit by SVI (low-rank multivariate-normal guide): fast, approximate intervals."""
    table = dezfouli_table(args.subjects)
    model = cogfit.models.get(args.model)
    data = cogfit.TrialData.from_table(table, model, populations=DIAGNOSES)
    t0 = time.perf_counter()
    fit = cogfit.fit(model, data, method="svi", guide="lowrank", steps=args.steps, learning_rate=0.01,
                     draws=2000, seed=args.seed, pooling=args.pooling, progress=args.progress)
    wall = time.perf_counter() - t0
    return dict(
        part="svi-real", model=model.name, pooling=args.pooling, subjects=data.n_subjects,
        choices=int(data.mask.sum()), steps=args.steps, wall_s=round(wall, 1),
        final_loss=fit.meta["final_loss"],
        **report(fit, fit.flags()), device=str(jax.devices()[0]),
    )


def synthetic_data(model, n_subjects: int, n_trials: int, seed: int) -> cogfit.TrialData:
    """Simulate ``n_subjects`` learners on their own drifting bandits, packed as TrialData."""
    keys = jax.random.split(jax.random.key(seed), 3)
    rng = np.random.default_rng(seed)
    theta = cogfit.Record(alpha_pos=rng.beta(3, 4, n_subjects), alpha_neg=rng.beta(2, 5, n_subjects),
                          beta=rng.lognormal(1.0, 0.4, n_subjects), beta_c=rng.normal(0.3, 0.5, n_subjects))
    design = jax.vmap(lambda k: model.design(k, n_trials))(jax.random.split(keys[0], n_subjects))
    sim = jax.jit(jax.vmap(model.simulate))(jax.random.split(keys[1], n_subjects), theta,
                                            cogfit.Record(design))
    table = pd.DataFrame({
        "subject": np.repeat(np.arange(n_subjects), n_trials),
        "trial": np.tile(np.arange(n_trials), n_subjects),
        "choice": np.asarray(sim["choice"]).ravel(),
        "reward": np.asarray(sim["reward"]).ravel(),
    })
    return cogfit.TrialData.from_table(table, model)


def bench_svi(args) -> dict:
    import numpyro
    import optax
    from numpyro.infer import SVI, Trace_ELBO, autoguide, init_to_median

    from cogfit._hierarchy import build, model_args
    from cogfit.models import bandit

    name = "bandit_dual_rep"
    t0 = time.perf_counter()
    data = synthetic_data(cogfit.models.get(name), args.subjects, args.trials, args.seed)
    t_data = time.perf_counter() - t0
    timings = []
    for unroll in args.unroll:
        model = bandit.bandit(name, bandit.MODELS[name], unroll=unroll)
        numpyro_model = build(model, data)
        guide = autoguide.AutoNormal(numpyro_model, init_loc_fn=init_to_median)
        svi = SVI(numpyro_model, guide, numpyro.optim.optax_to_numpyro(optax.adam(0.01)), Trace_ELBO())
        inputs = model_args(data)
        state = svi.init(jax.random.key(args.seed), *inputs)
        update = jax.jit(svi.update)
        t0 = time.perf_counter()
        state, loss = update(state, *inputs)
        jax.block_until_ready(loss)
        t_compile = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(args.steps):
            state, loss = update(state, *inputs)
        jax.block_until_ready(loss)
        per_step = (time.perf_counter() - t0) / args.steps
        timings.append(dict(unroll=unroll, compile_s=round(t_compile, 1), s_per_step=round(per_step, 5),
                            s_per_1000_steps=round(1000 * per_step, 1), final_loss=float(loss)))
    return dict(
        part="svi", model=name, subjects=args.subjects, trials=args.trials,
        choices=int(data.mask.sum()), steps_timed=args.steps, simulate_and_pack_s=round(t_data, 1),
        timings=timings, device=str(jax.devices()[0]), n_devices=jax.device_count(),
        precision=str(jnp.zeros(()).dtype),
    )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("part", choices=("nuts", "report", "subjects", "profile", "modes", "jumps", "svi-real", "svi"))
    ap.add_argument("--subjects", type=int, default=None,
                    help="nuts, subjects: participants per diagnosis (default all); svi: subjects (10000)")
    ap.add_argument("--model", default=REAL_MODEL,
                    help="nuts, subjects, svi-real: the learner (bandit_dual_rep_h_blocks: beta_h for beta)")
    ap.add_argument("--trials", type=int, default=500)
    ap.add_argument("--participants", nargs="+", default=["s_20_d", "s_022_", "s_133_", "s_146_"],
                    help="profile, modes: dezfouli participant ids")
    ap.add_argument("--exclude", nargs="+", default=[],
                    help="nuts: leave these participants out (e.g. the split ones, to see what they change)")
    ap.add_argument("--draws", type=int, default=None,
                    help=f"draws per chain: nuts {NUTS_DRAWS} (NUTS_DRAWS), the other parts 1000")
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--steps", type=int, default=None,
                    help="svi: timed steps after compilation (20); svi-real: optimisation steps (4000); "
                         "nuts --init svi: SVI steps before NUTS (5000)")
    ap.add_argument("--centered", choices=("trials", "auto", "yes", "no"), default=DEFAULT_FIT["centered"],
                    help="nuts: centred subject effects (trials: by trials per subject, cogfit.fit's "
                         "default; auto: per subject and parameter from an SVI pilot)")
    ap.add_argument("--pooling", choices=get_args(Pooling), default="partial")
    ap.add_argument("--population", choices=get_args(Population), default=DEFAULT_FIT["population"],
                    help="nuts: how participants spread around their diagnosis (unconstrained scale)")
    ap.add_argument("--nu", type=lambda v: None if v == "fit" else float(v), default=DEFAULT_FIT["nu"],
                    help="nuts, with --population student_t: fixed degrees of freedom, or 'fit' (4)")
    ap.add_argument("--blocks", choices=("joint", "population"), default="population",
                    help="nuts: NUTS on the whole posterior or on each diagnosis alone (cogfit.fit(blocks=...))")
    ap.add_argument("--dense-mass", action="store_true", help="nuts: dense mass matrix")
    ap.add_argument("--target-accept", type=float, default=0.9)
    ap.add_argument("--init", choices=("median", "svi"), default=DEFAULT_FIT["init"],
                    help="nuts: start at the prior median, or from an SVI fit of --steps steps")
    ap.add_argument("--unroll", type=int, nargs="+", default=[1],
                    help="svi: scan unroll factors to time (e.g. 1 4 16 on a GPU)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cores", type=int, default=1,
                    help="nuts, subjects, modes: CPU devices, one chain each at a time (1: chains one after "
                         "another, as measured above)")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--save", default=None, help="nuts: save the fit here (netCDF)")
    ap.add_argument("--fit", default=None, help="modes, report, jumps: a hierarchical fit saved by nuts --save")
    ap.add_argument("--jumps", default=None,
                    help="nuts, modes: mode-jump moves, the JSON written by jumps --out (its 'jumps' entry; "
                         "participants not in the fitted table are left out); nuts: 'auto' for cogfit.fit's "
                         "own search (jumps='auto', nuts' default), 'none' for no moves")
    ap.add_argument("--gap", type=float, default=8.0,
                    help="jumps: largest log-density difference (nats) between a participant's two optima")
    ap.add_argument("--out", default=None, help="also write the JSON result to this file")
    args = ap.parse_args(argv)
    if args.cores > 1:
        jax.config.update("jax_num_cpu_devices", args.cores)   # before any JAX work
    if args.part == "svi" and args.subjects is None:
        args.subjects = 10_000
    if args.draws is None:
        args.draws = NUTS_DRAWS if args.part == "nuts" else 1000
    if args.steps is None:
        args.steps = {"svi-real": 4000, "nuts": 5000, "subjects": 0, "profile": 0, "modes": 0, "report": 0,
                      "jumps": 0, "svi": 20}[args.part]
    if args.part in ("modes", "report", "jumps") and args.fit is None:
        ap.error(f"{args.part} needs --fit (a fit saved by: bench_rl.py nuts --save FIT)")
    result = {"nuts": bench_nuts, "report": bench_report, "subjects": bench_subjects, "profile": bench_profile,
              "modes": bench_modes, "jumps": bench_jumps, "svi-real": bench_svi_real, "svi": bench_svi}[args.part](args)
    emit(result, args.out)


def emit(result: dict, out: str | None) -> None:
    """Print the JSON result and, with ``out``, also write it there."""
    text = json.dumps(result, indent=1)
    print(text)
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
