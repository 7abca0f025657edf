"""Robustness of the defaults (issue 30): simulate from known populations over model families,
designs and population shapes, fit each data set with ``cogfit.fit(model, data)`` and report
divergences, max R-hat, min bulk ESS, leapfrog steps per draw, wall time and whether the true
group means fall in their 90% intervals.

    python benchmarks/robustness.py                       # the fractional design (CELLS), defaults
    python benchmarks/robustness.py --draws 300           # 4 x (300 + 300): a quick pass
    python benchmarks/robustness.py --family bandit_rw --cells 0,3
    python benchmarks/robustness.py --quick               # QUICK: one small cell per family
    python benchmarks/robustness.py --full                # every family x design x shape
    python benchmarks/robustness.py --nuts centered=auto  # a NUTS option on every cell
    python benchmarks/robustness.py --sd-prior 0.5        # HalfNormal(0.5) on every population sd
    python benchmarks/robustness.py --remedy              # refit failing cells with the warning's remedy
    python benchmarks/robustness.py --resume --out r.csv  # go on where an interrupted run stopped
    python benchmarks/robustness.py --resume --remedy --out r.csv   # add the remedies of r.csv's failures

A cell is ``(model, subjects, trials, ragged, shape)``. Truth: every parameter's population
mean ``mu`` is its prior mean on the unconstrained scale (``DETERMINISTIC`` shifts the choice
temperatures up for ``near_det``), subjects ``u = mu + sigma * z`` with the shape's ``sigma``;
``outliers`` moves a tenth of the subjects (at least one) ``OUTLIER`` unconstrained units away
on every parameter. Ragged: subject ``s`` keeps the first ``n_s ~ U[T/3, T]`` trials.
Writes ``--out`` (CSV, one row per cell) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd

import cogfit

__all__ = ["CELLS", "Cell", "QUICK", "SHAPES", "converged", "make_data", "run_cell"]

# sigma of the subjects around mu (unconstrained scale) per population shape
SHAPES = {"typical": 0.5, "narrow": 0.05, "wide": 1.5, "outliers": 0.5, "near_det": 0.3}
OUTLIER = 2.5
# near-deterministic choices: unconstrained shift of each choice-temperature parameter's mu
DETERMINISTIC = {"beta": 2.0, "beta1": 2.0, "beta2": 2.0, "tau": 2.0, "v_scale": 1.5, "v": 2.5, "a": 0.5}
FAMILIES = ("prospect_ra", "cpt_linear_bias", "bandit_rw", "bandit_dual", "twostep_hybrid", "ddm", "rlddm")
RHAT_OK, ESS_OK = 1.01, 400.0


class Cell(NamedTuple):
    model: str
    subjects: int
    trials: int
    ragged: bool
    shape: str

    def label(self) -> str:
        return f"{self.model} {self.subjects}x{self.trials}{' ragged' if self.ragged else ''} {self.shape}"


# The fractional design: every family, shape and design level at least once, the known failures
# (bandit_rw 20 x 100 typical, prospect_ra 5 x 140) and LLM-like narrow populations in each family.
CELLS = [
    Cell("bandit_rw", 20, 100, False, "typical"),
    Cell("prospect_ra", 5, 140, False, "typical"),
    Cell("ddm", 20, 100, False, "typical"),
    Cell("twostep_hybrid", 20, 100, False, "narrow"),
    Cell("rlddm", 20, 100, False, "narrow"),
    Cell("cpt_linear_bias", 20, 100, False, "narrow"),
    Cell("bandit_dual", 20, 100, False, "typical"),
    Cell("bandit_rw", 20, 100, False, "narrow"),
    Cell("prospect_ra", 20, 20, True, "wide"),
    Cell("ddm", 5, 20, True, "narrow"),
    Cell("bandit_rw", 5, 300, False, "near_det"),
    Cell("cpt_linear_bias", 5, 300, False, "outliers"),
    Cell("rlddm", 5, 100, False, "typical"),
    Cell("bandit_dual", 5, 300, True, "wide"),
    Cell("prospect_ra", 20, 100, False, "narrow"),
    Cell("twostep_hybrid", 5, 300, False, "typical"),
    Cell("bandit_rw", 100, 20, True, "wide"),
    Cell("prospect_ra", 5, 300, False, "near_det"),
    Cell("cpt_linear_bias", 20, 100, True, "typical"),
    Cell("bandit_dual", 20, 100, False, "narrow"),
    Cell("bandit_rw", 20, 300, True, "outliers"),
    Cell("prospect_ra", 100, 20, False, "outliers"),
    Cell("ddm", 20, 300, False, "near_det"),
    Cell("bandit_rw", 100, 100, False, "narrow"),
]
QUICK = [Cell(f, 5, 20, False, "typical") for f in FAMILIES]


def full_grid() -> list[Cell]:
    return [Cell(*c) for c in itertools.product(FAMILIES, (5, 20, 100), (20, 100, 300), (False, True), SHAPES)]


def truth(model: cogfit.Model, cell: Cell, rng: np.random.Generator) -> tuple[dict, dict]:
    """``(mu, u)``: the population mean per parameter (unconstrained) and each subject's value ``(S,)``."""
    S, sigma = cell.subjects, SHAPES[cell.shape]
    out = rng.choice(S, max(1, S // 10), replace=False) if cell.shape == "outliers" else []
    mu, u = {}, {}
    for p in model.params:
        m = float(p.prior.mean) + (DETERMINISTIC.get(p.name, 0.0) if cell.shape == "near_det" else 0.0)
        v = m + sigma * rng.standard_normal(S)
        v[out] += OUTLIER * rng.choice([-1.0, 1.0], len(out))
        mu[p.name], u[p.name] = m, v
    return mu, u


def make_data(cell: Cell, seed: int = 0) -> tuple[cogfit.TrialData, dict]:
    """The cell's simulated data and its true ``mu`` per parameter (unconstrained scale)."""
    model = cogfit.models.get(cell.model)
    rng = np.random.default_rng([seed, cell.subjects, cell.trials])
    mu, u = truth(model, cell, rng)
    design = cogfit.random_design(model, n_subjects=cell.subjects, n_trials=cell.trials, seed=seed)
    if cell.ragged:
        keep = rng.integers(max(2, cell.trials // 3), cell.trials + 1, cell.subjects)
        design = design[design["trial"].to_numpy() < keep[design["subject"].to_numpy()]]
    values = {p.name: np.asarray(p.transform.forward(u[p.name])) for p in model.params}
    table = cogfit.simulate(model, design, values, seed=seed + 1)
    return cogfit.TrialData.from_table(table, model), mu


def converged(row: dict) -> bool:
    """0 divergences, R-hat <= 1.01 and bulk ESS >= 400 per 4 x 1000 draws (scaled with the draws)."""
    need = ESS_OK * row["draws"] * row["chains"] / 4000
    return row["divergences"] == 0 and row["max_rhat"] <= RHAT_OK and row["min_ess_bulk"] >= need


def run_cell(cell: Cell, *, method: cogfit.NUTS, seed: int = 0, sd_prior: float | None = None) -> dict:
    """Fit one cell; its row of the table. ``sd_prior``: fit with ``HalfNormal(sd_prior)`` on every
    parameter's population sd instead of the model's own (the data are the same)."""
    model = cogfit.models.get(cell.model)
    data, mu = make_data(cell, seed)
    if sd_prior is not None:
        model = model.with_sd_prior(sd_prior)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = cogfit.fit(model, data, method=method, seed=seed, progress=False, warn=True)
    wall = time.perf_counter() - t0
    c = fit.check()
    post = fit.posterior
    inside = 0
    for p in model.params:
        lo, hi = np.quantile(post[f"{p.name}_mu"].values, [0.05, 0.95])
        inside += int(lo <= mu[p.name] <= hi)
    steps = fit.tree["sample_stats"]["n_steps"].values
    hints = sorted({str(w.message).split(":")[0] for w in caught if "Convergence" in type(w.message).__name__})
    row = dict(cell=cell.label(), model=cell.model, subjects=cell.subjects, trials=cell.trials, ragged=cell.ragged,
               shape=cell.shape, n_trials=int(data.n_trials.sum()), divergences=int(c["divergences"]),
               max_rhat=round(float(c["max_rhat"]), 4), min_ess_bulk=round(float(c["min_ess_bulk"]), 1),
               steps_per_draw=round(float(np.mean(steps)), 1), wall_s=round(wall, 1),
               mu_in_90=f"{inside}/{len(model.params)}", warnings="; ".join(hints),
               centred=fit.meta.get("centered", ""), target_accept=fit.meta.get("target_accept"),
               draws=method.draws, chains=method.chains)
    row["ok"] = converged(row)
    return row


def markdown(table: pd.DataFrame) -> str:
    """A Markdown table of ``table``'s rows."""
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def parse_nuts(items: list[str], draws: int | None) -> cogfit.NUTS:
    """``cogfit.NUTS()`` with ``key=value`` options (numbers, bools, strings)."""
    opts: dict = {} if draws is None else dict(draws=draws, tune=draws)
    for item in items:
        k, v = item.split("=", 1)
        for conv in (int, float, {"True": True, "False": False, "None": None}.__getitem__):
            try:
                v = conv(v)
                break
            except (ValueError, KeyError):
                continue
        opts[k] = v
    return cogfit.NUTS(**opts)


def remedy(row: dict) -> dict:
    """What the fit's warnings suggest: after divergences a higher target acceptance (0.95, or
    0.99 where the fit already used 0.95); after R-hat or ESS misses, twice the warm-up and draws."""
    fix = {}
    if row["divergences"]:
        fix["target_accept"] = 0.99 if float(row["target_accept"]) >= 0.95 else 0.95
    if row["max_rhat"] > RHAT_OK or row["min_ess_bulk"] < ESS_OK * row["draws"] * row["chains"] / 4000:
        fix.update(draws=2 * row["draws"], tune=2 * row["draws"])
    return fix


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", help="comma-separated indices into the chosen cell list")
    ap.add_argument("--family", help="only cells of this model")
    ap.add_argument("--quick", action="store_true", help="one small cell per family")
    ap.add_argument("--full", action="store_true", help="the whole grid (%d cells)" % len(full_grid()))
    ap.add_argument("--draws", type=int, help="warm-up and kept draws per chain (default: NUTS's 1000 + 1000)")
    ap.add_argument("--nuts", nargs="*", default=[], help="NUTS options key=value on every cell")
    ap.add_argument("--remedy", action="store_true", help="refit failing cells with the warning's remedy (remedy())")
    ap.add_argument("--resume", action="store_true", help="keep --out's rows and run only the cells it lacks")
    ap.add_argument("--centre-below", type=float, help="centered='auto' threshold (cogfit._hierarchy.CENTRE_BELOW)")
    ap.add_argument("--sd-prior", type=float, help="HalfNormal scale of every population sd (default: the model's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="robustness.csv")
    args = ap.parse_args(argv)
    if args.centre_below is not None:
        from cogfit import _hierarchy
        _hierarchy.CENTRE_BELOW = args.centre_below
    cells = QUICK if args.quick else full_grid() if args.full else CELLS
    if args.family:
        cells = [c for c in cells if c.model == args.family]
    if args.cells:
        cells = [cells[int(i)] for i in args.cells.split(",")]
    method = parse_nuts(args.nuts, args.draws)
    rows = pd.read_csv(args.out).to_dict("records") if args.resume and os.path.exists(args.out) else []
    settings = " ".join(args.nuts + ([f"sd_prior=HalfNormal({args.sd_prior})"] if args.sd_prior else [])) or "defaults"
    first = {r["cell"]: r for r in rows if r["settings"] == settings}
    remedied = {r["cell"] for r in rows if r["settings"] != settings}
    for cell in cells:
        row = first.get(cell.label())
        if row is None:
            row = dict(run_cell(cell, method=method, seed=args.seed, sd_prior=args.sd_prior), settings=settings)
            rows.append(row)
            print(row, flush=True)
        if args.remedy and not row["ok"] and cell.label() not in remedied:
            fix = remedy(row)
            fixed = run_cell(cell, method=parse_nuts(args.nuts + [f"{k}={v}" for k, v in fix.items()], args.draws),
                             seed=args.seed)
            fixed["ok"] = converged(dict(fixed, draws=row["draws"]))  # judged per the row's 4 x draws
            fixed["settings"] = " ".join(f"{k}={v}" for k, v in fix.items())
            rows.append(fixed)
            print(fixed, flush=True)
        pd.DataFrame(rows).to_csv(args.out, index=False)
    table = pd.DataFrame(rows)
    cols = ["cell", "settings", "divergences", "max_rhat", "min_ess_bulk", "steps_per_draw", "wall_s", "mu_in_90", "ok"]
    print(markdown(table[cols]))
    n = int((table["settings"] == table["settings"].iloc[0]).sum())
    ok = int(table.loc[table["settings"] == table["settings"].iloc[0], "ok"].sum())
    print(f"\n{ok}/{n} cells converge with {table['settings'].iloc[0]}")
    return table


if __name__ == "__main__":
    main()
