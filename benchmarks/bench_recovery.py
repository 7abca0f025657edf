"""A whole recovery study (``cogfit.recover``: truths, simulation, batched SVI fits, metrics)
against a Python loop of single ``cogfit.fit`` calls on the same datasets and settings, measured
in one process; optionally SBC with NUTS (every chain of a chunk's datasets vectorised in one program).

    python benchmarks/bench_recovery.py svi --model cpt_linear_bias --datasets 1000 --subjects 30 --trials 200
    python benchmarks/bench_recovery.py svi --model bandit_dual --datasets 1000 --subjects 30 --trials 200
    python benchmarks/bench_recovery.py nuts --model bandit_dual --datasets 200 --subjects 10 --trials 100

Prints one JSON line. ``svi``: seconds of the study (first run, compile included), the loop's
seconds over ``--loop`` datasets scaled to all, their ratio, compile seconds and peak memory.
``nuts``: seconds of the NUTS study (``--chains`` x ``--draws``, batched) and its SBC table,
against ``--loop`` single ``cogfit.fit`` calls (``--loop 0``: none). ``--device`` names the JAX
platform to run on (``gpu``); default: JAX's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("part", choices=["svi", "nuts"])
    ap.add_argument("--model", default="cpt_linear_bias")
    ap.add_argument("--datasets", type=int, default=1000)
    ap.add_argument("--subjects", type=int, default=30)
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--steps", type=int, default=2000, help="SVI steps")
    ap.add_argument("--draws", type=int, default=500, help="SVI draws / NUTS draws per chain")
    ap.add_argument("--tune", type=int, default=500, help="NUTS warm-up")
    ap.add_argument("--chains", type=int, default=2, help="NUTS chains")
    ap.add_argument("--chunk", type=int, default=250, help="datasets per compiled call")
    ap.add_argument("--loop", type=int, default=4, help="datasets fitted one by one (time scaled to all)")
    ap.add_argument("--device", default=None, help="JAX platform (cpu, gpu)")
    args = ap.parse_args(argv)
    if args.device:
        os.environ["JAX_PLATFORMS"] = args.device
    import jax
    from _timing import compile_seconds, peak_rss_gib

    import cogfit
    from cogfit.recovery import run as runner
    from cogfit.recovery.study import study

    out = dict(part=args.part, model=args.model, datasets=args.datasets, subjects=args.subjects, trials=args.trials,
               device=str(jax.devices()[0]), precision="float64" if jax.config.jax_enable_x64 else "float32",
               load_start=round(os.getloadavg()[0], 1))
    if args.part == "svi":
        method = cogfit.SVI(steps=args.steps, draws=args.draws)
        t0 = time.perf_counter()
        res = cogfit.recover(args.model, n_datasets=args.datasets, n_subjects=args.subjects, n_trials=args.trials,
                             method=method, chunk=args.chunk, progress=False)
        batched = time.perf_counter() - t0
        compiled = compile_seconds()
        st = study(args.model, n_datasets=args.datasets, n_subjects=args.subjects, n_trials=args.trials,
                   method=method, chunk=args.chunk)
        n = min(args.loop, args.datasets)
        idx = st.datasets(0)[:n]
        model, _, data = runner.simulate_chunk(st, idx)
        seeds = runner.fit_seeds(st.seed, idx)
        t0 = time.perf_counter()
        for one, s in zip(data, seeds):
            cogfit.fit(model, one, method=method, seed=s, progress=False, warn=False)
        loop = (time.perf_counter() - t0) * args.datasets / n
        summary = res.summary()
        sub = summary[summary["level"] == "subject"].set_index("param")
        out.update(steps=args.steps, draws=args.draws, chunk=args.chunk, study_s=round(batched, 1),
                   compile_s=round(compiled, 1), loop_s=round(loop, 1), loop_measured=n,
                   ratio=round(loop / batched, 1), subject_correlation=sub["correlation"].round(3).to_dict(),
                   subject_coverage90=sub["coverage90"].round(3).to_dict())
    else:
        method = cogfit.NUTS(draws=args.draws, tune=args.tune, chains=args.chains)
        t0 = time.perf_counter()
        res = cogfit.recover(args.model, n_datasets=args.datasets, n_subjects=args.subjects, n_trials=args.trials,
                             method=method, chunk=args.chunk, progress=False)
        study_s = time.perf_counter() - t0
        out.update(draws=args.draws, tune=args.tune, chains=args.chains, study_s=round(study_s, 1),
                   warnings=float(res.summary()["warnings"].max()),
                   sbc=res.sbc().set_index("param")[["p_value", "inside_band"]].round(3).to_dict("index"))
        if args.loop:      # the same fits one by one, sequential chains (cogfit.fit's CPU default)
            st = study(args.model, n_datasets=args.datasets, n_subjects=args.subjects, n_trials=args.trials,
                       method=method, chunk=args.chunk)
            idx = st.datasets(0)[:min(args.loop, args.datasets)]
            model, _, data = runner.simulate_chunk(st, idx)
            t0 = time.perf_counter()
            for one, s in zip(data, runner.fit_seeds(st.seed, idx)):
                cogfit.fit(model, one, method=method, seed=s, progress=False, warn=False)
            loop = (time.perf_counter() - t0) * args.datasets / len(idx)
            out.update(loop_s=round(loop, 1), loop_measured=len(idx), ratio=round(loop / study_s, 2))
    out["peak_rss_gib"] = round(peak_rss_gib(), 2)
    out["load_end"] = round(os.getloadavg()[0], 1)     # 1-minute load average (the machine is shared)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
