"""Many data sets fitted by one batched SVI call (``cogfit.fit_batch``) against a Python loop of
``cogfit.fit`` calls with the same settings and seeds, measured in one process.

    python benchmarks/bench_batch.py --datasets 32 --subjects 20 --trials 100 --steps 1000

Prints one JSON line: seconds of the batched call (first call, compile included, and a second
call of the same shape), seconds of the loop over the first ``--loop`` data sets scaled to all,
their ratio, and the largest difference between the batched and the single fits' posterior means.
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np

import cogfit


def simulated(model, n_datasets: int, n_subjects: int, n_trials: int, seed: int) -> list:
    """``n_datasets`` data sets of one design shape, each with its own truth drawn around a
    typical member (unconstrained sd 0.3)."""
    rng = np.random.default_rng(seed)
    typical = {p.name: float(p.transform.inverse(v)) for p, v in zip(model.params, TYPICAL[model.name])}
    out = []
    for i in range(n_datasets):
        design = cogfit.random_design(model, n_subjects=n_subjects, n_trials=n_trials, seed=seed + i)
        truth = {p.name: np.asarray(p.transform.forward(typical[p.name] + 0.3 * rng.normal(size=n_subjects)))
                 for p in model.params}
        table = cogfit.simulate(model, design, truth, seed=seed + 10_000 + i)
        out.append(cogfit.TrialData.from_table(table, model))
    return out


TYPICAL = {"prospect_ra": (0.9, 1.5, 1.0), "cpt_linear_bias": (0.9, 1.5, 0.5, 0.0)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="prospect_ra", choices=sorted(TYPICAL))
    ap.add_argument("--datasets", type=int, default=32)
    ap.add_argument("--subjects", type=int, default=20)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--loop", type=int, default=8, help="data sets fitted one by one (the loop's time is scaled)")
    args = ap.parse_args(argv)
    model = cogfit.models.get(args.model)
    data = simulated(model, args.datasets, args.subjects, args.trials, seed=0)
    method = cogfit.SVI(steps=args.steps, draws=args.draws)

    t0 = time.perf_counter()
    batch = cogfit.fit_batch(model, data, method=method, seed=0, progress=False)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    cogfit.fit_batch(model, data, method=method, seed=0, progress=False)
    again = time.perf_counter() - t0

    n = min(args.loop, args.datasets)
    diff = 0.0
    t0 = time.perf_counter()
    for i in range(n):
        one = cogfit.fit(model, data[i], method=method, seed=i, progress=False)
        for p in model.param_names:
            a = batch.samples[p][i].mean(axis=(0, 1))
            b = one.posterior[p].values.mean(axis=(0, 1))
            diff = max(diff, float(np.max(np.abs(np.asarray(p_inv(model, p, a)) - np.asarray(p_inv(model, p, b))))))
    loop = (time.perf_counter() - t0) * args.datasets / n
    out = dict(model=args.model, datasets=args.datasets, subjects=args.subjects, trials=args.trials,
               steps=args.steps, draws=args.draws, batched_first_s=round(first, 2), batched_again_s=round(again, 2),
               loop_s=round(loop, 2), loop_measured=n, ratio_first=round(loop / first, 2),
               ratio_again=round(loop / again, 2), max_mean_diff_unconstrained=diff,
               device=str(jax.devices()[0]), precision="float64" if jax.config.jax_enable_x64 else "float32")
    print(json.dumps(out))
    return out


def p_inv(model, name, value):
    return model.param(name).transform.inverse(value)


if __name__ == "__main__":
    main()
