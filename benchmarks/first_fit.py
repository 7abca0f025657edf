"""Time to a new data shape's first fit in a fresh process: cold (empty compilation cache) and
warm (the same shape again, persistent cache filled by the cold run).

    python benchmarks/first_fit.py --model bandit_rw --subjects 20 --trials 100 --draws 25

Each run is a new Python process: ``import_s`` (``import cogfit`` plus the first model), ``data_s``
(simulate and pack the data set), ``fit_s`` (``cogfit.fit`` with NUTS, one chain, ``--draws``
warm-up and kept iterations; tracing and XLA compilation included) and ``total_s``. ``--compare``
also runs, in the same call, the 0.1 road (``old``: NumPyro's own start, ``initialize_model``, an
eager model run and a compiled search per chain, and the 100-trial centring rule, no pilot) and
today's start without the centring pilot (``no_pilot``: ``centered=False``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = """
import time, json, sys
t0 = time.perf_counter()
import cogfit
if {variant!r} == "old":
    from cogfit.inference import start
    start.sites = lambda *args: None          # chains.sample falls back to initialize_model
centring = dict(defaults={{}}, old=dict(centered=None), no_pilot=dict(centered=False))[{variant!r}]
model = cogfit.models.get({model!r})
t1 = time.perf_counter()
design = cogfit.random_design(model, n_subjects={subjects}, n_trials={trials}, seed=0)
truth = {{p.name: float(p.transform.forward(0.0)) for p in model.params}}
data = cogfit.TrialData.from_table(cogfit.simulate(model, design, truth, seed=1), model)
t2 = time.perf_counter()
method = cogfit.NUTS(draws={draws}, tune={draws}, chains=1, **centring)
cogfit.fit(model, data, method=method, progress=False, warn=False)
t3 = time.perf_counter()
print(json.dumps(dict(import_s=round(t1 - t0, 2), data_s=round(t2 - t1, 2), fit_s=round(t3 - t2, 2),
                      total_s=round(t3 - t0, 2))))
"""


OPTIONS = dict(model="bandit_rw", subjects=20, trials=100, draws=25)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag, default in OPTIONS.items():
        ap.add_argument(f"--{flag}", type=type(default), default=default)
    ap.add_argument("--compare", action="store_true", help="also the 0.1 road and today's without the pilot")
    args = ap.parse_args(argv)
    out = dict(vars(args), load_start=round(os.getloadavg()[0], 1))
    for variant in ("defaults", "old", "no_pilot") if args.compare else ("defaults",):
        code = CHILD.format(variant=variant, **{k: v for k, v in vars(args).items() if k != "compare"})
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=cache, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
            for label in ("cold", "warm"):
                run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                     check=True)
                out[f"{variant}_{label}"] = json.loads(run.stdout.strip().splitlines()[-1])
    out["load_end"] = round(os.getloadavg()[0], 1)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
