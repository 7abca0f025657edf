"""Drift-diffusion benchmarks (a script, not a test).

1. Wiener log-likelihood + gradient throughput (trials per second) at 1e5, 1e6 and 1e7 trials
   over 1000 subjects, laid out subjects x trials, in float32 and float64, on the default JAX
   backend (CPU here; the same script runs on a GPU).
2. Hierarchical DDM (drift by word/nonword; a, z, t and, with the default ``ddm_lapse``, the
   contaminant share per participant) with NUTS on the guenther2020LDT lexical decisions: wall
   time, min bulk ESS, ESS per second, divergences.
3. When ``hssm`` is importable (optional, never a dependency), the same model through HSSM and
   the ESS-per-second ratio.

Usage::

    COGFIT_DATA_MIRROR=../shared/data python benchmarks/bench_ddm.py              # all parts
    python benchmarks/bench_ddm.py --part throughput --sizes 1e5 1e6 1e7
    python benchmarks/bench_ddm.py --part nuts --subjects 20 --draws 500 --tune 500 --chains 2
    # HSSM in its own environment (it pins PyMC/PyTensor/JAX versions):
    python benchmarks/bench_ddm.py --part nuts --subjects 5 --model ddm --hssm-python /path/to/hssm-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# cogfit and JAX are imported inside the functions that use them, so that ``--hssm-worker`` runs
# in an interpreter that has HSSM but not cogfit (HSSM pins its own PyMC/JAX stack).


def throughput(n_trials: int, n_subjects: int, dtype, repeats: int = 3) -> tuple[float, float]:
    """Trials per second of ``value_and_grad`` of the summed log density; and compile seconds."""
    import jax
    import jax.numpy as jnp

    from cogfit.wiener import wiener_logpdf

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _timing import compile_seconds
    t_per = n_trials // n_subjects
    rng = np.random.default_rng(0)
    rt = jnp.asarray(0.3 + rng.gamma(2.0, 0.25, (n_subjects, t_per)), dtype)
    choice = jnp.asarray(rng.integers(0, 2, (n_subjects, t_per)), jnp.int32)
    params = tuple(jnp.asarray(rng.uniform(lo, hi, n_subjects), dtype)
                   for lo, hi in ((-2, 2), (0.8, 2.5), (0.3, 0.7), (0.1, 0.28)))

    def total(p):
        v, a, z, t = (x[:, None] for x in p)
        return jnp.sum(wiener_logpdf(rt, choice, v, a, z, t))

    f = jax.jit(jax.value_and_grad(total))
    c0 = compile_seconds()
    value, grads = f(params)
    jax.block_until_ready(grads)
    compiled = compile_seconds() - c0
    if not (np.isfinite(float(value)) and all(np.all(np.isfinite(np.asarray(g))) for g in grads)):
        raise FloatingPointError("non-finite log-likelihood or gradient")
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(f(params))
        best = min(best, time.perf_counter() - t0)
    return n_subjects * t_per / best, compiled


def run_throughput(sizes: list[float], n_subjects: int) -> None:
    import jax
    import jax.numpy as jnp

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _timing import peak_rss_gib

    print(f"backend: {jax.default_backend()} ({jax.devices()[0].device_kind}), {os.cpu_count()} CPU cores")
    print(f"{'trials':>10} {'dtype':>8} {'trials/s':>12} {'compile s':>10}")
    for x64 in (False, True):
        with jax.enable_x64(x64):
            dtype = jnp.float64 if x64 else jnp.float32
            for n in sizes:
                rate, comp = throughput(int(n), n_subjects, dtype)
                print(f"{int(n):>10.0e} {jnp.dtype(dtype).name:>8} {rate:>12.3e} {comp:>10.1f}", flush=True)
    print(f"peak RSS {peak_rss_gib():.2f} GiB")


def ldt_table(n_subjects: int | None):
    """guenther2020LDT with the notebook's explicit cleaning (rt <= 0, ties, rt > RT_MAX)."""
    import cogfit.datasets
    from cogfit.models.ddm import RT_MAX

    table = cogfit.datasets.load("psych201/guenther2020LDT")
    drop = table["exclude"].to_numpy() | (table["condition"] == "tie").to_numpy() | (table["rt"] > RT_MAX).to_numpy()
    print(f"cleaning removes {int(drop.sum())} of {len(table)} trials (rt <= 0, tie items, rt > {RT_MAX:g} s)")
    table = table.assign(exclude=drop)
    if n_subjects:
        table = table[table["subject"].isin(table["subject"].unique()[:n_subjects])]
    return table


def run_nuts(n_subjects: int | None, draws: int, tune: int, chains: int, model: str = "ddm_lapse",
             save: str = "") -> float:
    import cogfit

    model = cogfit.models.get(model)
    table = ldt_table(n_subjects)
    data = cogfit.TrialData.from_table(table, model)
    print(data)
    t0 = time.perf_counter()
    fit = cogfit.fit(model, data, method=cogfit.NUTS(draws=draws, tune=tune, chains=chains),
                     hierarchy=cogfit.Hierarchy(by_condition=("v",)), seed=0, progress=False, warn=False)
    wall = time.perf_counter() - t0
    chk = fit.check()
    if save:
        fit.save(save)
    print(fit.summary())
    print(f"cogfit NUTS: wall {wall:.1f} s, max R-hat {chk['max_rhat']:.4f}, min bulk ESS "
          f"{chk['min_ess_bulk']:.0f}, ESS/s {chk['min_ess_bulk'] / wall:.3f}, divergences {chk['divergences']}")
    return chk["min_ess_bulk"] / wall


def hssm_fit(csv: str, draws: int, tune: int, chains: int) -> dict:
    """The same hierarchical model through HSSM on a cleaned table (``rt``, ``response`` +-1,
    ``participant_id``, ``condition``): drift by condition, a, z, t per participant (random
    intercepts), 2% uniform contaminants on (0, 10) s, HSSM's analytical likelihood and default
    PyMC NUTS. HSSM's ``a`` is half the separation; only ESS per second is compared."""
    import arviz as az
    import hssm
    import pandas as pd

    df = pd.read_csv(csv)
    model = hssm.HSSM(
        data=df, model="ddm", loglik_kind="analytical",
        include=[
            {"name": "v", "formula": "v ~ 0 + condition + (0 + condition | participant_id)"},
            {"name": "a", "formula": "a ~ 1 + (1 | participant_id)"},
            {"name": "z", "formula": "z ~ 1 + (1 | participant_id)"},
            {"name": "t", "formula": "t ~ 1 + (1 | participant_id)"},
        ],
        p_outlier=0.02, lapse=hssm.Prior("Uniform", lower=0.0, upper=10.0),
    )
    t0 = time.perf_counter()
    idata = model.sample(draws=draws, tune=tune, chains=chains, cores=1, progressbar=False)
    wall = time.perf_counter() - t0
    ess = az.ess(idata, method="bulk")
    min_ess = min(float(np.nanmin(ess[v].values)) for v in ess.data_vars)
    return dict(wall=wall, min_ess=min_ess, divergences=int(idata.sample_stats["diverging"].values.sum()),
                hssm=hssm.__version__)


def run_hssm(n_subjects: int | None, draws: int, tune: int, chains: int, python: str | None) -> float | None:
    """HSSM's min bulk ESS per second, in this interpreter or in ``python`` (one with HSSM)."""
    try:
        import hssm  # noqa: F401
        python = None
    except ImportError:
        if python is None:
            print("hssm is not importable (pass --hssm-python to use another environment): skipped")
            return None
    table = ldt_table(n_subjects)
    table = table[~table["exclude"]]
    df = table.assign(response=np.where(table["choice"] == 1, 1, -1), participant_id=table["subject"].astype(str))
    with tempfile.TemporaryDirectory() as tmp:
        csv = str(Path(tmp) / "ldt.csv")
        df[["rt", "response", "participant_id", "condition"]].to_csv(csv, index=False)
        if python is None:
            out = hssm_fit(csv, draws, tune, chains)
        else:
            cmd = [python, __file__, "--hssm-worker", csv, "--draws", str(draws), "--tune", str(tune),
                   "--chains", str(chains)]
            res = subprocess.run(cmd, capture_output=True, text=True, check=True)
            out = json.loads(res.stdout.strip().splitlines()[-1])
    print(f"HSSM {out['hssm']}: wall {out['wall']:.1f} s, min bulk ESS {out['min_ess']:.0f}, "
          f"ESS/s {out['min_ess'] / out['wall']:.3f}, divergences {out['divergences']}")
    return out["min_ess"] / out["wall"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("all", "throughput", "nuts"), default="all")
    ap.add_argument("--sizes", type=float, nargs="+", default=[1e5, 1e6, 1e7])
    ap.add_argument("--bench-subjects", type=int, default=1000, help="subjects in the throughput test")
    ap.add_argument("--subjects", type=int, default=None, help="first N LDT participants (default all 146)")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--model", default="ddm_lapse", help="ddm_lapse (estimated contaminant share) or ddm (fixed 2%%)")
    ap.add_argument("--save", default="", help="write the NUTS fit here (netCDF)")
    ap.add_argument("--hssm-python", default=None, help="a Python interpreter that has hssm installed")
    ap.add_argument("--hssm-worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.hssm_worker:
        print(json.dumps(hssm_fit(args.hssm_worker, args.draws, args.tune, args.chains)))
        return
    if args.hssm_python and args.model != "ddm":
        ap.error("the HSSM model has a fixed 2% contaminant share: compare with --model ddm")
    if args.part in ("all", "throughput"):
        run_throughput(args.sizes, args.bench_subjects)
    if args.part in ("all", "nuts"):
        ours = run_nuts(args.subjects, args.draws, args.tune, args.chains, args.model, args.save)
        theirs = run_hssm(args.subjects, args.draws, args.tune, args.chains, args.hssm_python)
        if theirs:
            print(f"ESS/s ratio cogfit / HSSM: {ours / theirs:.1f}x")


if __name__ == "__main__":
    main()
