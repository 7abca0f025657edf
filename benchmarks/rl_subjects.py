"""Each dezfouli2019 participant alone (``pooling="none"``): which posteriors are multimodal or
slow to mix (a script, not a test).

NUTS, ``--chains`` chains of ``--tune`` + ``--draws``, per participant; prints R-hat and chain
means of every parameter, worst participants first. A participant whose chains settle in
different modes (a slow learner with a high inverse temperature against a fast one with a low)
keeps the hierarchical fit from R-hat <= 1.01.

Usage::

    COGFIT_DATA_MIRROR=../shared/data python benchmarks/rl_subjects.py --tune 300 --draws 300 [--subjects 2]
"""

from __future__ import annotations

import time

import arviz as az
from _dezfouli import REAL_MODEL, dezfouli_table, emit, parser, start

import cogfit


def main(argv=None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--subjects", type=int, default=None, help="participants per diagnosis (default all)")
    ap.add_argument("--model", default=REAL_MODEL, help="the learner")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    args = start(ap, argv)
    table = dezfouli_table(args.subjects)
    model = cogfit.models.get(args.model)
    method = cogfit.NUTS(draws=args.draws, tune=args.tune, chains=args.chains)
    rows = []
    t0 = time.perf_counter()
    for s, one in table.groupby("subject", sort=False):
        data = cogfit.TrialData.from_table(one, model)
        fit = cogfit.fit(model, data, method=method, hierarchy=cogfit.Hierarchy(pooling="none"), seed=args.seed,
                         progress=False, warn=False)
        row = dict(subject=s, population=one["population"].iloc[0], choices=int(data.mask.sum()),
                   divergences=int(fit.tree["sample_stats"]["diverging"].sum()))
        for p in model.param_names:
            row[f"{p}_rhat"] = round(float(az.rhat(fit.posterior[p]).max()), 3)
            row[f"{p}_chain_means"] = [round(float(m), 4) for m in fit.posterior[p].values[..., 0].mean(1)]
        row["max_rhat"] = max(row[f"{p}_rhat"] for p in model.param_names)
        rows.append(row)
        if args.progress:
            print(row, flush=True)
    rows.sort(key=lambda r: -r["max_rhat"])
    emit(dict(part="subjects", model=model.name, participants=len(rows), draws=args.draws, tune=args.tune,
              chains=args.chains, wall_s=round(time.perf_counter() - t0, 1),
              rhat_above_1_01=sum(r["max_rhat"] > 1.01 for r in rows),
              rhat_above_1_1=sum(r["max_rhat"] > 1.1 for r in rows), worst=rows[:10]), args.out)


if __name__ == "__main__":
    main()
