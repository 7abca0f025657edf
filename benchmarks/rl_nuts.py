"""The real-data NUTS fit: dezfouli2019, dual-learning-rate learners with one-back perseveration
that restart at each block, diagnosis as population (a script, not a test).

The learner is ``REAL_MODEL`` (``bandit_dual_rep_h_blocks``, ``beta_h`` for the inverse
temperature; ``--model bandit_dual_rep_blocks`` for ``beta`` itself). The defaults are
``DEFAULT_FIT`` (:mod:`_dezfouli`): SVI start, centring per participant and parameter from the
SVI pilot, Student-t population with ``nu = 4``, mode jumps found after warm-up, each diagnosis
sampled alone, 4 x ``NUTS_DRAWS`` + 1000. Prints wall time, max R-hat, min bulk ESS, ESS per
second, divergences, ``flagged_values`` and ``split_subjects`` (:meth:`cogfit.Fit.flags`), per
population acceptance, step size and leapfrog steps, and the differences between diagnoses
(:func:`rl_report.report`). ``--exclude`` leaves participants out of the fit. Measured runs and
why these defaults: ``benchmarks/RESULTS.md``, dezfouli.

Usage::

    COGFIT_DATA_MIRROR=../shared/data python benchmarks/rl_nuts.py [--subjects 12] [--draws 500 --tune 500]
    COGFIT_DATA_MIRROR=../shared/data python benchmarks/rl_nuts.py --cores 2 --save dez.nc
"""

from __future__ import annotations

import json
import time
from typing import get_args

import jax
import numpy as np
from _dezfouli import DEFAULT_FIT, DIAGNOSES, REAL_MODEL, chain_stats, dezfouli_table, emit, parser, start
from rl_report import report

import cogfit
from cogfit._hierarchy import Pooling, Population

CENTRED = {"trials": None, "auto": "auto", "yes": True, "no": False}


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


def read_jumps(option: str, subjects) -> dict | str | None:
    """``--jumps``: ``"auto"``, ``"none"`` (None) or a file written by ``rl_jumps.py --out``
    (its ``jumps`` entry, restricted to ``subjects``)."""
    if option in ("auto", "none"):
        return None if option == "none" else option
    with open(option) as f:
        return {s: d for s, d in json.load(f)["jumps"].items() if s in set(subjects)}


def main(argv=None) -> None:
    method, hierarchy = DEFAULT_FIT
    ap = parser(__doc__)
    ap.add_argument("--subjects", type=int, default=None, help="participants per diagnosis (default all)")
    ap.add_argument("--model", default=REAL_MODEL, help="the learner (bandit_dual_rep_h_blocks: beta_h for beta)")
    ap.add_argument("--exclude", nargs="+", default=[],
                    help="leave these participants out (e.g. the split ones, to see what they change)")
    ap.add_argument("--draws", type=int, default=method.draws, help="draws per chain (NUTS_DRAWS)")
    ap.add_argument("--tune", type=int, default=method.tune)
    ap.add_argument("--chains", type=int, default=method.chains)
    ap.add_argument("--steps", type=int, default=method.pilot.steps, help="SVI pilot steps (init svi, centred auto)")
    ap.add_argument("--centered", choices=tuple(CENTRED), default="auto",
                    help="centred subject effects (trials: by trials per subject, cogfit.NUTS' default; "
                         "auto: per subject and parameter from an SVI pilot)")
    ap.add_argument("--pooling", choices=get_args(Pooling), default=hierarchy.pooling)
    ap.add_argument("--population", choices=get_args(Population), default=hierarchy.population,
                    help="how participants spread around their diagnosis (unconstrained scale)")
    ap.add_argument("--nu", type=lambda v: None if v == "fit" else float(v), default=hierarchy.nu,
                    help="with --population student_t: fixed degrees of freedom, or 'fit' (4)")
    ap.add_argument("--blocks", choices=("joint", "population"), default=method.blocks,
                    help="NUTS on the whole posterior or on each diagnosis alone (cogfit.NUTS(blocks=...))")
    ap.add_argument("--dense-mass", action="store_true", help="dense mass matrix")
    ap.add_argument("--target-accept", type=float, default=method.target_accept)
    ap.add_argument("--init", choices=("median", "svi"), default=method.init,
                    help="start at the prior median, or from an SVI fit of --steps steps")
    ap.add_argument("--jumps", default=method.jumps,
                    help="mode-jump moves: 'auto' (cogfit's own search, the default), 'none', or the JSON "
                         "written by rl_jumps.py --out (participants not in the fitted table are left out)")
    ap.add_argument("--save", default=None, help="save the fit here (netCDF)")
    args = start(ap, argv)

    table = dezfouli_table(args.subjects)
    missing = sorted(set(args.exclude) - set(table.subject))
    if missing:
        raise SystemExit(f"--exclude names participants not in the data: {missing}")
    table = table[~table.subject.isin(args.exclude)]
    model = cogfit.models.get(args.model)
    data = cogfit.TrialData.from_table(table, model, populations=DIAGNOSES)
    nu = args.nu if args.population == "student_t" else None
    method = cogfit.NUTS(draws=args.draws, tune=args.tune, chains=args.chains, target_accept=args.target_accept,
                         dense_mass=args.dense_mass, init=args.init, centered=CENTRED[args.centered],
                         jumps=read_jumps(args.jumps, table.subject), blocks=args.blocks,
                         pilot=cogfit.SVI(steps=args.steps, learning_rate=method.pilot.learning_rate))
    hierarchy = cogfit.Hierarchy(pooling=args.pooling, population=args.population, nu=nu)
    t0 = time.perf_counter()
    fit = cogfit.fit(model, data, method=method, hierarchy=hierarchy, seed=args.seed, progress=args.progress,
                     warn=False)
    wall = time.perf_counter() - t0
    check, flags = fit.check(), fit.flags()
    if args.save:
        fit.save(args.save)
    split = flags[flags.split & flags.subject.notna()]
    emit(dict(
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
    ), args.out)


if __name__ == "__main__":
    main()
