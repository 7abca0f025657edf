"""Hierarchical CPT on spektor2024lossaversion with NUTS: compile time, sampling time, ESS/s, memory.

Run (it starts a second process itself to measure the persistent compilation cache)::

    COGFIT_DATA_MIRROR=../shared/data python benchmarks/bench_prospect.py [--model cpt_linear_bias] [--draws 1000]

Prints one JSON line per process: compile_s (tracing + compiling, or loading from the persistent
cache), sampling_s (wall minus compile), min bulk ESS over all group and subject parameters,
ESS per second of sampling, divergences, max R-hat and peak memory.

``--cores 2`` runs the 4 chains two at a time on two CPU devices. ``--ref`` (default 16,
spektor's median |outcome|) is the CPT models' reference stake, which rescales utility so that
``tau`` stops trading off against ``alpha`` and ``lam``; ``--ref 0`` keeps utility in task units.
Measured runs, and the bound on ESS per second on two cores: ``benchmarks/RESULTS.md``, spektor.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def run(args) -> dict:
    import jax

    if args.cores > 1:
        jax.config.update("jax_num_cpu_devices", args.cores)   # before any JAX work

    import _timing  # noqa: F401  (registers the JAX event listener before anything compiles)

    import cogfit
    import cogfit.datasets

    table = cogfit.datasets.load("psych201/spektor2024lossaversion")
    if args.experiment:
        table = table[table["experiment"] == args.experiment]
    if args.subjects:
        keep = table["subject"].drop_duplicates().iloc[: args.subjects]
        table = table[table["subject"].isin(keep)]
    if args.one_population:
        table = table.drop(columns="population")
    model = cogfit.models.get(args.model)
    if args.ref:
        model = model.variant(model.name, fix={"ref": args.ref})
    data = cogfit.TrialData.from_table(table, model)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        method = cogfit.NUTS(draws=args.draws, tune=args.tune, chains=args.chains,
                             centered=None if args.centered == "trials" else "auto")
        fit = cogfit.fit(model, data, method=method, seed=0, progress=args.progress)
    wall = time.perf_counter() - t0
    compile_s = _timing.compile_seconds()
    diag = fit.check()
    if args.save:
        fit.save(args.save)
    sampling = wall - compile_s
    return dict(
        model=args.model, ref=args.ref, experiment=args.experiment or "all", subjects=data.n_subjects,
        trials=int(data.mask.sum()),
        chains=args.chains, draws=args.draws, tune=args.tune, precision=fit.meta["precision"],
        chain_method=fit.meta["chain_method"], wall_s=round(wall, 2), compile_s=round(compile_s, 2),
        cache_load_s=round(_timing.cache_hits(), 2), sampling_s=round(sampling, 2),
        min_ess_bulk=round(diag["min_ess_bulk"], 1),
        ess_per_s=round(diag["min_ess_bulk"] / sampling, 2), divergences=diag["divergences"],
        max_rhat=round(diag["max_rhat"], 4), centring=args.centered, centered=fit.meta["centered"],
        mean_leapfrog_steps=round(float(fit.tree["sample_stats"]["n_steps"].mean()), 1),
        load_avg_1min=round(__import__("os").getloadavg()[0], 2), peak_rss_gib=round(_timing.peak_rss_gib(), 2),
        populations=list(data.populations),
        lam_group=fit.summary(var_names=["lam_group"])["mean"].round(3).tolist(),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="cpt_linear_bias")
    ap.add_argument("--ref", type=float, default=16.0,
                    help="the CPT models' reference stake (spektor's median |outcome|; 0: utility in task "
                         "units, the protocol of the numbers before 2026-12-01)")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--centered", choices=("trials", "auto"), default="auto",
                    help="centring of subject effects: auto (NUTS's default: per subject and parameter, SVI "
                         "pilot) or by trials per subject (the 0.1 default; exp2's 98 trials fall under its 100: "
                         "non-centred)")
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--subjects", type=int, default=0, help="first N subjects only (0 = all)")
    ap.add_argument("--experiment", default="", help="one sub-experiment only: exp1 (40 x 352 trials), "
                    "exp2 (185 x 98) or exp3 (57 x 720); default all 282 subjects (padded to 720 trials)")
    ap.add_argument("--one-population", action="store_true",
                    help="one group distribution for all sub-experiments (the data set's default has one "
                         "per sub-experiment)")
    ap.add_argument("--cores", type=int, default=1,
                    help="CPU devices, one chain each at a time (1: chains one after another)")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--single", action="store_true", help="one run in this process (no warm-cache rerun)")
    ap.add_argument("--save", default="", help="write the fit here (netCDF)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child or args.single:
        print(json.dumps(run(args)), flush=True)
        return
    cache = tempfile.mkdtemp(prefix="cogfit-bench-cache-")
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=cache,
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1")
    cmd = [sys.executable, __file__, "--child", *sys.argv[1:]]
    for label in ("cold cache (new process)", "warm persistent cache (second process)"):
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if out.returncode:
            sys.exit(out.stderr)
        print(label, out.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
