"""The dezfouli2019 report of a saved fit (``rl_nuts.py --save``), without refitting.

Convergence (max R-hat, min bulk ESS, divergences, :meth:`cogfit.Fit.flags`) and the
comparison of diagnoses (:func:`report`), which ``rl_nuts.py`` and ``rl_svi_real.py`` print too.

Usage::

    COGFIT_DATA_MIRROR=../shared/data python benchmarks/rl_report.py --fit dez.nc
"""

from __future__ import annotations

import pandas as pd
from _dezfouli import DIAGNOSES, emit, parser, start

import cogfit


def report(fit: cogfit.Fit, flags: pd.DataFrame) -> dict:
    """Group means and differences between diagnoses (94% equal-tailed intervals, natural scale),
    of the parameters and of the model's derived quantities (``beta`` of a ``beta_h`` learner).

    ``differences``: of the typical member (``<p>_group``; with ``pooling="none"``, of the
    members' mean); ``differences_members``: of the mean of each diagnosis' participants;
    ``differences_members_without_split``: the same without the participants whose chains sit in
    separate modes (``flags``: :meth:`cogfit.Fit.flags`, already computed by the caller), which
    shows how much the comparison rests on them.
    """
    summary = "group" if fit.meta["pooling"] != "none" else "members"
    post = fit.quantities()                                  # parameters and derived (beta of beta_h)
    pops = fit.data.subject_populations
    means = {p: {d: round(float(post[f"{p}_group"].sel(population=d).mean() if summary == "group"
                                else post[p].values[..., pops == d].mean()), 4) for d in DIAGNOSES}
             for p in fit.model.param_names + fit.model.derived_names}
    split = sorted(set(flags[flags.split & flags.subject.notna()].subject))

    def rows(**kw):
        return fit.differences(prob=0.94, **kw).round(4).to_dict("records")

    out = dict(group_means=means, summary=summary, differences=rows(summary=summary),
               differences_members=rows(summary="members"), split_participants=split)
    if split:
        out["differences_members_without_split"] = rows(summary="members", exclude=split)
    return out


def main(argv=None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--fit", required=True, help="a hierarchical fit saved by rl_nuts.py --save")
    args = start(ap, argv)
    fit = cogfit.load(args.fit)
    check = fit.check()
    flags = fit.flags()
    emit(dict(part="report", fit=args.fit, model=fit.model.name, subjects=fit.data.n_subjects,
              draws=fit.meta["draws"], chains=fit.meta["chains"], max_rhat=round(check["max_rhat"], 4),
              min_ess_bulk=round(check["min_ess_bulk"], 1), divergences=check["divergences"],
              flagged_values=len(flags), split_values=int(flags.split.sum()), **report(fit, flags)), args.out)


if __name__ == "__main__":
    main()
