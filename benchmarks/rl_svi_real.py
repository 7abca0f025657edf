"""The dezfouli2019 fit by SVI with a low-rank multivariate-normal guide (a script, not a test):
minutes on a CPU, intervals approximate and often too narrow. Prints the same comparison of
diagnoses as ``rl_nuts.py`` (:func:`rl_report.report`).

Usage::

    COGFIT_DATA_MIRROR=../shared/data python benchmarks/rl_svi_real.py [--subjects 5 --steps 500]
"""

from __future__ import annotations

import time
from typing import get_args

import jax
from _dezfouli import DIAGNOSES, REAL_MODEL, dezfouli_table, emit, parser, start
from rl_report import report

import cogfit
from cogfit._hierarchy import Pooling


def main(argv=None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--subjects", type=int, default=None, help="participants per diagnosis (default all)")
    ap.add_argument("--model", default=REAL_MODEL, help="the learner")
    ap.add_argument("--steps", type=int, default=4000, help="Adam steps")
    ap.add_argument("--draws", type=int, default=2000, help="draws from the guide")
    ap.add_argument("--pooling", choices=get_args(Pooling), default="partial")
    args = start(ap, argv)
    table = dezfouli_table(args.subjects)
    model = cogfit.models.get(args.model)
    data = cogfit.TrialData.from_table(table, model, populations=DIAGNOSES)
    t0 = time.perf_counter()
    fit = cogfit.fit(model, data, method=cogfit.SVI(steps=args.steps, learning_rate=0.01, guide="lowrank",
                                                    draws=args.draws),
                     hierarchy=cogfit.Hierarchy(pooling=args.pooling), seed=args.seed, progress=args.progress)
    wall = time.perf_counter() - t0
    emit(dict(part="svi-real", model=model.name, pooling=args.pooling, subjects=data.n_subjects,
              choices=int(data.mask.sum()), steps=args.steps, wall_s=round(wall, 1),
              final_loss=fit.meta["final_loss"], **report(fit, fit.flags()), device=str(jax.devices()[0])),
         args.out)


if __name__ == "__main__":
    main()
