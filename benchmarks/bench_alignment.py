"""Time the whole alignment report (``cogfit.align`` + ``Alignment.save``: table, per-draw CSV,
three figures, Markdown) on a spektor-sized synthetic posterior.

Default: ``cpt_shared`` (5 parameters), 282 human members and one LLM population of 50
(spektor2024lossaversion's 282 participants against an LLM participant population), 4 chains x
1000 draws, 50 splits for the ceiling. Prints one JSON line: wall and process CPU seconds for
the first call (compilation included) and for a second call, compile seconds, peak memory.

    python benchmarks/bench_alignment.py [--humans 282] [--llm 50] [--chains 4] [--draws 1000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
from _timing import compile_seconds, peak_rss_gib

import cogfit
from cogfit.alignment.synthetic import synthetic_fit

HUMAN = {"alpha": (0.0, 0.3), "lam": (np.log(1.3), 0.5), "gamma": (0.3, 0.4), "delta": (0.0, 0.4),
         "tau": (np.log(0.3), 0.6)}
LLM = {"alpha": (0.3, 0.05), "lam": (np.log(1.9), 0.1), "gamma": (0.3, 0.4), "delta": (0.5, 0.02),
       "tau": (np.log(0.6), 0.3)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="cpt_shared")
    ap.add_argument("--humans", type=int, default=282)
    ap.add_argument("--llm", type=int, default=50)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--splits", type=int, default=50)
    args = ap.parse_args(argv)
    fit = synthetic_fit(args.model, {"human": (args.humans, HUMAN), "llm:synthetic": (args.llm, LLM)},
                        chains=args.chains, draws=args.draws, seed=0)
    seconds, cpu = [], []
    with tempfile.TemporaryDirectory() as out:
        for _ in range(2):
            t0, c0 = time.perf_counter(), time.process_time()
            al = cogfit.align(fit, "human", n_splits=args.splits)
            al.save(out)
            seconds.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    result = dict(model=args.model, humans=args.humans, llm=args.llm, chains=args.chains, draws=args.draws,
                  params=len(fit.model.params), splits=args.splits, first_s=round(seconds[0], 2),
                  second_s=round(seconds[1], 2), first_cpu_s=round(cpu[0], 2), second_cpu_s=round(cpu[1], 2),
                  compile_s=round(compile_seconds(), 2),
                  peak_rss_gib=round(peak_rss_gib(), 2))
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
