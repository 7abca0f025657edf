"""Differences between populations: what a group comparison (patients vs controls, an LLM vs
people) reports.

Two summaries of a population's parameter, both on the natural scale, per posterior draw:

``"group"``
    ``<p>_group`` = transform(mu): the parameter of a typical member of the population (its
    median member when the transform is monotone). Needs partial or complete pooling.
``"members"``
    The mean of the population's members' subject values: a summary of *these* participants
    (a finite-population mean), defined under every pooling and for population distributions of
    any shape (a U-shaped spread of learning rates has a poor median). It can leave participants
    out (``exclude``), e.g. those whose chains sit in separate modes (``Fit.flags()``), to see
    how much the comparison depends on them.

They answer different questions and can disagree, even in sign. "group" asks whether the typical
member of ``b`` differs from the typical member of ``a``; "members" whether these participants
of ``b`` have a larger parameter on average. With a skewed spread (loss aversion, on a log scale:
a few members at 10 or more) the members' mean follows those few: a population whose spread is
wider, or that has a few very loss-averse members, has the larger members' mean although its
typical member may be no more loss-averse, so "members" can show a clear difference where
"group" shows a small one, or one of the other sign. Report "group" for a statement about the
populations, "members" for one about the people tested, and both when they disagree.
"""

from __future__ import annotations

from collections.abc import Sequence

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from cogfit._interval import ci_prob, stamp

SUMMARIES = ("group", "members")


def population_values(post: xr.Dataset, param: str, subject_population: np.ndarray, order: Sequence[str], *,
                      summary: str = "group", keep: np.ndarray | None = None) -> xr.DataArray:
    """Per-draw natural-scale value of ``param`` for each population: ``(chain, draw, population[,
    condition])``, populations in ``order``.

    ``subject_population`` ``(S,)`` labels each subject (``"members"``); ``keep`` ``(S,)`` bool
    selects the subjects averaged (default all).
    """
    if summary == "group":
        name = f"{param}_group"
        if name not in post:
            raise ValueError(f"{name!r} is not in the posterior (pooling='none' has no population "
                             "parameters); use summary='members' (the mean of each population's members)")
        return post[name].sel(population=list(order))
    if summary != "members":
        raise ValueError(f"summary must be one of {SUMMARIES}, not {summary!r}")
    keep = np.ones(len(subject_population), bool) if keep is None else keep
    da = post[param].assign_coords(population=("subject", np.asarray(subject_population)))
    da = da.isel(subject=np.flatnonzero(keep))
    empty = [p for p in order if p not in set(da["population"].values)]
    if empty:
        raise ValueError(f"population(s) {empty} have no members left to average")
    return da.groupby("population").mean("subject").sel(population=list(order))


def differences(post: xr.Dataset, params: Sequence[str], subjects: np.ndarray, subject_population: np.ndarray,
                order: Sequence[str], *, summary: str = "group", reference: str | None = None,
                exclude: Sequence = (), prob: float | None = None) -> pd.DataFrame:
    """Posterior of ``b - a`` for every pair of populations (``a`` before ``b`` in ``order``), or of
    every population minus ``reference``; one row per parameter, pair (and condition).

    Columns: ``param``, ``condition`` (only when some parameter varies by condition), ``contrast``
    (``"b - a"``), ``a``, ``b``, ``mean``, ``sd``, ``lo`` and ``hi`` (equal-tailed ``prob``
    interval; default ArviZ's ``stats.ci_prob``, see :mod:`cogfit._interval`), ``p_positive``
    (share of draws with ``b > a``), ``r_hat`` and ``ess_bulk`` of the difference itself (its
    chains can agree although single subjects' do not).
    """
    prob = ci_prob(prob)
    order = list(order)
    if len(order) < 2:
        raise ValueError(f"differences need at least two populations; the data have {order}")
    ids = np.asarray(subjects).astype(str)
    exclude = [str(s) for s in exclude]
    unknown = sorted(set(exclude) - set(ids))
    if unknown:
        raise ValueError(f"exclude names subjects not in the fit: {unknown}")
    if exclude and summary == "group":
        raise ValueError("exclude needs summary='members': the group-level parameters were fitted with "
                         "every subject; leaving some out of them needs a refit without them")
    if reference is None:
        pairs = [(a, b) for i, a in enumerate(order) for b in order[i + 1:]]
    elif reference in order:
        pairs = [(reference, b) for b in order if b != reference]
    else:
        raise ValueError(f"reference {reference!r} is not a population; populations are {order}")
    keep = ~np.isin(ids, exclude)
    q = [(1 - prob) / 2, (1 + prob) / 2]
    rows = []
    for param in params:
        values = population_values(post, param, subject_population, order, summary=summary, keep=keep)
        conds = list(values["condition"].values) if "condition" in values.dims else [None]
        for a, b in pairs:
            diff = values.sel(population=b) - values.sel(population=a)
            multi = diff.sizes["chain"] > 1
            rhat = az.rhat(diff) if multi else None
            ess = az.ess(diff, method="bulk")
            for c in conds:
                at = {} if c is None else {"condition": c}
                d = diff.sel(at).values
                lo, hi = np.quantile(d, q)
                rows.append(dict(param=param, condition=c, contrast=f"{b} - {a}", a=a, b=b,
                                 mean=float(d.mean()), sd=float(d.std()), lo=float(lo), hi=float(hi),
                                 p_positive=float((d > 0).mean()),
                                 r_hat=float(rhat.sel(at)) if multi else float("nan"),
                                 ess_bulk=float(ess.sel(at))))
    df = pd.DataFrame(rows)
    return stamp(df.drop(columns="condition") if df["condition"].isna().all() else df, prob)
