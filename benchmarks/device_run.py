"""One prepared accelerator run: every GPU figure cogfit claims, in under eight minutes.

Five parts (:mod:`device_parts`), each printing one line of progress, each with its own time
budget; the JSON file is rewritten after every measured size, so a run stopped by its budget,
a timeout or SIGTERM still leaves every figure it reached.

``wiener``
    Wiener log-likelihood + gradient throughput (trials/s), float32 and float64, at 1e6, 1e7
    and 1e8 trials laid out subjects x trials, and the same kernel on the machine's own CPU.
``nuts``
    Hierarchical ``ddm`` NUTS on simulated data with known group means, 1,000 and 10,000
    subjects x 500 trials, 4 vectorised chains, short warm-up after a short SVI pilot: seconds
    per 100 iterations, leapfrog steps per draw, min ESS per second of the group parameters
    (NumPyro's ESS, no ArviZ call), recovery of the group means.
``svi``
    SVI over dezfouli2019-shaped learners (``bandit_dual_rep_h_blocks``; 101 simulated
    participants in three populations, 12 blocks each) tiled to 5 million choices: ms per step.
``batch``
    :func:`cogfit.fit_batch`: 1,000 simulated data sets x 30 subjects x 200 trials
    (``bandit_rw``), total seconds.
``llm``
    Scoring throughput (tokens/s) of the gemma-3-270m and SmolLM2-135M architectures built from
    their published configs with random weights (bfloat16 on a GPU), batch sizes 1, 8 and 32,
    and a 100-trial bandit played with the KV cache against re-reading the session.

A part whose dependency is missing is skipped with a line saying which. ``--smoke`` runs every
part at tiny sizes on the CPU (the CI check, ``tests/test_device_run.py``).

Usage::

    python benchmarks/device_run.py --out device.json           # the device run (H100/H200)
    python benchmarks/device_run.py --smoke --out smoke.json    # every part, tiny, CPU
    python benchmarks/device_run.py --parts wiener nuts --budget-s 200 --part-budget nuts=150
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import time
import traceback
from datetime import datetime, timezone
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import device_parts  # noqa: E402

PARTS = ("wiener", "nuts", "svi", "batch", "llm")
#: Modules each part needs (a part is skipped with a line naming the missing one).
NEEDS = {"wiener": ("jax", "numpyro"), "nuts": ("jax", "numpyro"), "svi": ("jax", "numpyro"),
         "batch": ("jax", "numpyro"), "llm": ("torch", "transformers", "tokenizers")}
#: Seconds per part on the device; they sum to 430 of the default 450 s budget. A part may also
#: use what the parts before it left unused (all the run's time not kept for the parts after it).
BUDGETS = {"wiener": 70.0, "nuts": 170.0, "svi": 80.0, "batch": 65.0, "llm": 45.0}
TOTAL_BUDGET = 450.0
#: --smoke's default total: generous, so a loaded CI machine still measures every part.
SMOKE_BUDGET = 1800.0


class OutOfTime(BaseException):
    """A part's (or the run's) time budget ran out (a BaseException, as KeyboardInterrupt, so that
    no ``except Exception`` on the way swallows it)."""


class Stopped(BaseException):
    """The process was asked to stop (SIGTERM)."""


class Part:
    """One part's record in the JSON and its clock: ``rows`` are measured sizes, ``skipped``
    sizes left out (missing dependency, budget)."""

    def __init__(self, name: str, budget: float, record: dict, save):
        self.name, self.budget, self.record, self._save = name, budget, record, save
        self.t0 = time.perf_counter()
        record.update(status="running", budget_s=budget, seconds=0.0, rows=[], skipped=[])

    def left(self) -> float:
        return self.budget - (time.perf_counter() - self.t0)

    def fits(self, what: str, predicted: float | None) -> bool:
        """Whether a size predicted to take ``predicted`` seconds fits the time left; if not,
        it is recorded as skipped."""
        if predicted is None or predicted < self.left():
            return True
        self.skip(what, f"predicted {predicted:.0f} s, {self.left():.0f} s of the part's budget left")
        return False

    def add(self, row: dict) -> None:
        self.record["rows"].append(row)
        self.save()

    def skip(self, what: str, why: str) -> None:
        self.record["skipped"].append({"what": what, "why": why})
        self.save()

    def save(self) -> None:
        self.record["seconds"] = round(time.perf_counter() - self.t0, 2)
        self._save()


def versions() -> dict:
    """Versions of the packages the figures depend on (None where not installed)."""
    out = {"python": platform.python_version()}
    for name in ("cogfit", "jax", "jaxlib", "numpyro", "optax", "torch", "transformers", "arviz"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _raise(exc):
    def handler(signum, frame):
        raise exc(signal.Signals(signum).name)
    return handler


def run(parts: list[str], *, preset: str, total: float, budgets: dict, out: str | None) -> dict:
    """Run ``parts`` at the sizes of ``preset``; write the JSON after every size; return it."""
    result = {"meta": {"preset": preset, "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       "host": platform.node(), "cpu_cores": os.cpu_count(), "budget_s": total,
                       "argv": sys.argv[1:], "versions": versions()},
              "parts": {}, "stopped": None}
    t_start = time.perf_counter()

    def save():
        result["seconds"] = round(time.perf_counter() - t_start, 2)
        if out:
            tmp = f"{out}.tmp"
            with open(tmp, "w") as f:
                json.dump(result, f, indent=1, default=float)
            os.replace(tmp, out)

    handlers = {s: signal.signal(s, _raise(e)) for s, e in ((signal.SIGTERM, Stopped), (signal.SIGALRM, OutOfTime))}
    sizes = device_parts.PRESETS[preset]
    try:
        for i, name in enumerate(parts):
            left = total - (time.perf_counter() - t_start)
            record = result["parts"].setdefault(name, {})
            spare = left - sum(budgets[p] for p in parts[i + 1:])
            part = Part(name, max(0.0, min(left, max(budgets[name], spare))), record, save)
            missing = [m for m in NEEDS[name] if find_spec(m) is None]
            if missing or part.budget <= 0:
                why = f"needs {', '.join(missing)} (not installed)" if missing else "the run's budget is spent"
                record["status"] = "skipped"
                part.skip(name, why)
                print(f"[{name}] skipped: {why}", flush=True)
                continue
            signal.setitimer(signal.ITIMER_REAL, part.budget)
            try:
                line = getattr(device_parts, name)(sizes[name], part)
                record["status"] = "done"
            except OutOfTime:
                record["status"] = "stopped"
                line = f"stopped at its budget of {part.budget:.0f} s"
            except device_parts.Unavailable as err:      # a dependency fails to import (e.g. ArviZ for cogfit)
                record["status"] = "skipped"
                line = str(err)
                part.skip(name, str(err))
            except Exception as err:                      # one broken part must not cost the others' figures
                traceback.print_exc()
                record.update(status="failed", error=f"{type(err).__name__}: {err}")
                line = record["error"]
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            part.save()
            print(f"[{name}] {record['status']}: {line} ({record['seconds']:.0f} s)", flush=True)
    except Stopped as err:
        result["stopped"] = str(err)
        for record in result["parts"].values():
            if record.get("status") == "running":
                record["status"] = "stopped"
        print(f"stopped by {err}; the JSON holds the figures measured so far", flush=True)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for s, h in handlers.items():
            signal.signal(s, h)
    save()
    return result


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    ap.add_argument("--smoke", action="store_true", help="every part at tiny sizes on the CPU (the CI check)")
    ap.add_argument("--budget-s", type=float, default=None,
                    help=f"seconds for the whole run (default {TOTAL_BUDGET:g}); each part's budget scales with it")
    ap.add_argument("--part-budget", nargs="+", default=[], metavar="PART=S",
                    help=f"seconds for single parts (defaults {BUDGETS} at the default total)")
    ap.add_argument("--out", default=None, help="write the JSON here (rewritten after every measured size)")
    args = ap.parse_args(argv)
    total = args.budget_s if args.budget_s is not None else SMOKE_BUDGET if args.smoke else TOTAL_BUDGET
    budgets = {k: v * total / TOTAL_BUDGET for k, v in BUDGETS.items()}
    for item in args.part_budget:
        name, _, value = item.partition("=")
        if name not in PARTS or not value:
            ap.error(f"--part-budget takes PART=SECONDS with PART one of {PARTS}, not {item!r}")
        budgets[name] = float(value)
    if args.smoke:
        os.environ["JAX_PLATFORMS"] = "cpu"
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    # JAX would hold 75% of the GPU's memory from its first use on; the LLM part's torch runs after it
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    result = run(args.parts, preset="smoke" if args.smoke else "device", total=total, budgets=budgets, out=args.out)
    if not args.out:
        print(json.dumps(result, indent=1, default=float))
    return result


if __name__ == "__main__":
    main()
