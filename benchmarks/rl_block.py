"""One diagnosis of the dezfouli2019 fit alone, exactly as ``bench_rl.py nuts --blocks population``
fits it (a script, not a test).

``cogfit.fit(..., blocks="population")`` samples each population as its own NUTS run with the
seed ``cogfit._blocks.block_seed(seed, g)``, so one diagnosis fitted here with the same settings
gives the same draws as that diagnosis' part of the whole fit: a setting can be tried on the
population that needs it in 10-60 minutes instead of rerunning all three (67 min and more).
Settings are ``bench_rl.DEFAULT_FIT``, those of ``bench_rl.py nuts`` (the Student-t population with
nu fixed at 4, mode jumps, SVI start, centring per participant and parameter), and the learner is
``bench_rl.REAL_MODEL`` unless ``--model`` names another. Prints one JSON result:
R-hat, bulk ESS, divergences and, per chain, acceptance, step size and leapfrog steps, and the
flagged values (:meth:`cogfit.Fit.flags`).

Measured (float32 unless said, ``--cores 2``, 4 chains, tune 1000). With ``--model
bandit_dual_rep_blocks`` (``beta``; the default before these measurements):

- ``Bipolar`` (33 participants), 1000 draws: max R-hat 1.015, 0 divergences, min ESS 261, 26 min
  (as in the three-block run: s_088_ and s_042_ ``alpha_pos``); **2000 draws: 1.007, 0
  divergences, min ESS 913, nothing flagged** (66 min, beside other runs).
- ``Depression`` (34), 1000 draws: 1.008, 1 divergence, min ESS 384.
- ``Healthy`` (34), 1000 draws: as in the three-block run, 1 divergence; 2000 draws with
  ``--target-accept 0.95``: max R-hat 1.003, min ESS 1449, nothing flagged, but **2
  divergences** (chain 1, draws 50 and 577; step 0.078-0.090, acceptance 0.945-0.963): not at
  small population sds, no one participant at an extreme; 406 draws have ``alpha_neg``
  exactly 1.0 in float32 (37 min, beside other runs). In float64 (``JAX_ENABLE_X64=1``, 1000
  draws): still 1 divergence (chain 2, draw 950), at s_4_da's ``alpha_pos`` 0.0045 with ``beta``
  4.8: the ``alpha * beta = const`` ridge of slow learners (16 min).

With the default ``bandit_dual_rep_h_blocks`` (``beta_h``, which flattens that ridge), 1000 draws:

- ``Healthy``: **max R-hat 1.0065, 0 divergences, min ESS 949**, nothing flagged (14 min).
- ``Depression``: 1.016, **0 divergences**, min ESS 391 (39 min; s_118_ ``alpha_pos`` 1.016 and
  s_146_ ``alpha_neg`` 1.013 flagged, not split).

With 2000 draws, now the default here and in ``bench_rl.py nuts`` (R-hat and ESS over the
parameters and the derived ``beta``; nothing flagged in any):

- ``Healthy``: **max R-hat 1.0022, 0 divergences, min ESS 2216** (15 min; step 0.064-0.095,
  44-63 leapfrog steps per draw, acceptance 0.92-0.95; moves for s_082_). Session 18's full
  three-block run with the same settings showed 2 Healthy divergences (chains 3-4, after draw
  1000) on its progress bar, before the derived-quantity commits; session 21's full run
  (``bench_rl.py nuts``, defaults) has this run's per-chain statistics exactly and 0
  divergences.
- ``Depression``: **1.0049, 0 divergences, min ESS 849** (44 min; step 0.023-0.026, 130-180
  leapfrog steps per draw, acceptance 0.88-0.96; moves for 12 participants).
- ``Bipolar``: **1.004, 0 divergences, min ESS 1036** (61 min beside a CI run; step
  0.018-0.021, ~250 leapfrog steps per draw; measured before ``check()`` read ``beta``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_rl  # noqa: E402  (imports JAX but starts no backend, so --cores still applies)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("diagnosis", choices=bench_rl.DIAGNOSES)
    ap.add_argument("--model", default=None, help="a bandit model name (default: bench_rl.REAL_MODEL)")
    ap.add_argument("--draws", type=int, default=bench_rl.NUTS_DRAWS, help="draws per chain (bench_rl.NUTS_DRAWS)")
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--target-accept", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=0, help="the whole fit's seed (the block's is derived from it)")
    ap.add_argument("--cores", type=int, default=1, help="CPU devices for parallel chains (pmap)")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--save", default=None, help="save the block's fit here (netCDF)")
    ap.add_argument("--out", default=None, help="also write the JSON result to this file")
    args = ap.parse_args(argv)
    if args.cores > 1:
        jax.config.update("jax_num_cpu_devices", args.cores)   # before any JAX work

    import cogfit
    from cogfit import _blocks

    model = cogfit.models.get(args.model or bench_rl.REAL_MODEL)
    data = cogfit.TrialData.from_table(bench_rl.dezfouli_table(None), model, populations=bench_rl.DIAGNOSES)
    g = bench_rl.DIAGNOSES.index(args.diagnosis)
    part = _blocks.subset(data, _blocks.members(data)[g], g)
    t0 = time.perf_counter()
    fit = cogfit.fit(model, part, method="nuts", draws=args.draws, tune=args.tune, chains=args.chains,
                     target_accept=args.target_accept, seed=_blocks.block_seed(args.seed, g),
                     progress=args.progress, warn=False, **bench_rl.DEFAULT_FIT)
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
        **bench_rl.chain_stats(stats), jumps=sorted(fit.meta.get("jumps", ())),
        flagged=flags.drop(columns="condition").round(4).astype({"chain_medians": str}).to_dict("records"),
        device=str(jax.devices()[0]), precision=fit.meta["precision"],
    )
    bench_rl.emit(result, args.out)


if __name__ == "__main__":
    main()
