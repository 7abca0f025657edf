"""One diagnosis of the dezfouli2019 fit alone, exactly as ``rl_nuts.py`` (``blocks="population"``)
fits it (a script, not a test).

``cogfit.NUTS(blocks="population")`` samples each population as its own NUTS run with the seed
``cogfit.inference.blocks.block_seed(seed, g)``, so one diagnosis fitted here with the same
settings gives the same draws as that diagnosis' part of the whole fit: a setting can be tried on
the population that needs it instead of rerunning all three. Settings are ``DEFAULT_FIT``
(:mod:`_dezfouli`, those of ``rl_nuts.py``: the Student-t population with nu fixed at 4, mode
jumps, SVI start, centring per participant and parameter), and the learner is ``REAL_MODEL``
unless ``--model`` names another. Prints one JSON result: R-hat, bulk ESS, divergences and, per
chain, acceptance, step size and leapfrog steps, and the flagged values
(:meth:`cogfit.Fit.flags`). Measured runs: ``benchmarks/RESULTS.md``, dezfouli.

Usage::

    COGFIT_DATA_MIRROR=../shared/data python benchmarks/rl_block.py Healthy --cores 2
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _dezfouli as dez  # noqa: E402  (imports JAX but starts no backend, so --cores still applies)


def main(argv=None) -> None:
    method, hierarchy = dez.DEFAULT_FIT
    ap = dez.parser(__doc__)
    ap.add_argument("diagnosis", choices=dez.DIAGNOSES)
    ap.add_argument("--model", default=None, help="a bandit model name (default: REAL_MODEL)")
    ap.add_argument("--draws", type=int, default=method.draws, help="draws per chain (NUTS_DRAWS)")
    ap.add_argument("--tune", type=int, default=method.tune)
    ap.add_argument("--chains", type=int, default=method.chains)
    ap.add_argument("--target-accept", type=float, default=method.target_accept)
    ap.add_argument("--save", default=None, help="save the block's fit here (netCDF)")
    args = dez.start(ap, argv)

    import cogfit
    from cogfit.inference import blocks

    model = cogfit.models.get(args.model or dez.REAL_MODEL)
    data = cogfit.TrialData.from_table(dez.dezfouli_table(), model, populations=dez.DIAGNOSES)
    g = dez.DIAGNOSES.index(args.diagnosis)
    part = blocks.subset(data, blocks.members(data)[g], g)
    # The block's own run: what NUTS(blocks="population") runs for population g.
    method = dataclasses.replace(method, blocks="joint", draws=args.draws, tune=args.tune, chains=args.chains,
                                 target_accept=args.target_accept)
    t0 = time.perf_counter()
    fit = cogfit.fit(model, part, method=method, hierarchy=hierarchy, seed=blocks.block_seed(args.seed, g),
                     progress=args.progress, warn=False)
    wall = time.perf_counter() - t0
    if args.save:
        fit.save(args.save)
    check, flags, stats = fit.check(), fit.flags(), fit.tree["sample_stats"]
    result = dict(
        diagnosis=args.diagnosis, model=model.name, subjects=part.n_subjects, draws=args.draws, tune=args.tune,
        chains=args.chains, target_accept=args.target_accept, seed=args.seed, wall_s=round(wall, 1),
        max_rhat=round(check["max_rhat"], 4), min_ess_bulk=round(check["min_ess_bulk"], 1),
        divergences=check["divergences"],
        divergent_draws=[[int(c), int(d)] for c, d in np.argwhere(stats["diverging"].values)],
        **dez.chain_stats(stats), jumps=sorted(fit.meta.get("jumps", ())),
        flagged=flags.drop(columns="condition").round(4).astype({"chain_medians": str}).to_dict("records"),
        device=str(jax.devices()[0]), precision=fit.meta["precision"],
    )
    dez.emit(result, args.out)


if __name__ == "__main__":
    main()
