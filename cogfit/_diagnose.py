"""Which values failed the convergence checks, and whether their chains sit in separate modes.

R-hat above 1.01 has two causes that call for different remedies: chains that explore the same
region slowly (run longer, reparameterise) and chains that settled in *different modes*: the
data fit two explanations (e.g. a fast learner with a low inverse temperature and a slow one
with a high inverse temperature) separated by a region of low density, which a chain crosses
rarely if ever. Then R-hat tells where the chains started more than what the posterior is; only
runs long enough to cross many times, or a model that tells the explanations apart, fix it.

:func:`flags` tells the two apart per value with a rule that needs no scale: two chains are in
separate modes when each one's median lies outside the other's interquartile range, and the two
medians differ by more than ``SPLIT_Z`` Monte-Carlo standard errors (each chain's own, from its
own effective sample size, which must reach ``SPLIT_MIN_ESS``). The second condition keeps
short or slowly mixing chains in one region from counting: unimodal AR(1) chains, 4 x 500 draws,
lag-1 autocorrelation 0.97, read as split for 50% of the values on the interquartile rule alone,
for under 1% with it (``tests/test_fit.py``). Quantiles commute with monotone transforms, so the rule
reads nearly the same on the natural and on the unconstrained scale.
"""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from arviz_stats.base import array_stats

SPLIT_Z = 4.0
SPLIT_MIN_ESS = 20.0


def split_chains(values: np.ndarray) -> np.ndarray:
    """``values`` ``(chain, draw, ...)`` -> bool ``(...)``: for some two chains, each one's median
    lies outside the other's interquartile range, and the medians differ by more than ``SPLIT_Z``
    times the Monte-Carlo standard error of their difference (each chain's median MCSE from its
    own bulk ESS, which must be at least ``SPLIT_MIN_ESS``): the chains disagree about which mode
    holds most of the mass. A chain that visits a second mode now and then, or drifts slowly
    within one region, does not count."""
    lo, med, hi = np.quantile(values, [0.25, 0.5, 0.75], axis=1)    # (chain, ...)
    outside = (med[:, None] < lo[None]) | (med[:, None] > hi[None])  # [i, j]: median i outside IQR j
    one = values[:, None]                                           # each chain on its own
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                              # constant chains: NaN, ruled out below
        se = array_stats.mcse(one, chain_axis=1, draw_axis=2, method="median")
        ess = array_stats.ess(one, chain_axis=1, draw_axis=2, method="bulk")
    se = np.where((ess >= SPLIT_MIN_ESS) & np.isfinite(se), se, np.inf)
    far = np.abs(med[:, None] - med[None]) > SPLIT_Z * np.hypot(se[:, None], se[None])
    return np.any(outside & np.swapaxes(outside, 0, 1) & far, axis=(0, 1))


def flags(post: xr.Dataset, names: list[str], populations: np.ndarray, *,
          rhat_max: float, ess_min: float) -> pd.DataFrame:
    """One row per scalar value of ``names`` (variables of the draws ``post``, dims (chain, draw,
    ...)) whose R-hat exceeds ``rhat_max`` or whose bulk ESS is
    below ``ess_min``: ``variable``, ``subject`` (None for group-level values), ``population``
    (None for values shared by all populations),
    ``condition`` (None without conditions), ``r_hat``, ``ess_bulk``, ``split`` (chains in separate
    modes, :func:`split_chains`) and ``chain_medians`` (natural scale for subject values, the
    variable's own scale for group values). Split rows first, then by R-hat, worst first.

    ``populations`` gives each subject's population label ``(S,)``.
    """
    multi = post.sizes["chain"] > 1
    rhat = az.rhat(post, var_names=names) if multi else None
    ess = az.ess(post, var_names=names, method="bulk")
    rows = []
    for name in names:
        da = post[name]
        values = da.values                                           # (chain, draw, *dims)
        r = rhat[name].values if multi else np.full(da.shape[2:], np.nan)
        e = ess[name].values
        bad = (r > rhat_max) | (e < ess_min)                         # NaN R-hat (one chain) is not > max
        split = np.zeros(da.shape[2:], bool)
        if multi and bad.any():
            split[bad] = split_chains(values[:, :, bad])             # only the failing values
        med = np.median(values, axis=1)                              # (chain, *dims)
        dims = da.dims[2:]
        for idx in map(tuple, np.argwhere(bad)):                      # argwhere: 0-d too
            at = {d: da[d].values[i] for d, i in zip(dims, idx)}
            subject = at.get("subject")
            if "population" in at:
                population = str(at["population"])
            elif "subject" in at:
                population = str(populations[idx[dims.index("subject")]])
            else:                                                    # shared by all: <name>_nu
                population = None
            rows.append(dict(variable=name, subject=subject, population=population,
                             condition=at.get("condition"), r_hat=float(r[idx]), ess_bulk=float(e[idx]),
                             split=bool(split[idx]), chain_medians=[float(m) for m in med[(slice(None), *idx)]]))
    columns = ["variable", "subject", "population", "condition", "r_hat", "ess_bulk", "split", "chain_medians"]
    df = pd.DataFrame(rows, columns=columns)
    return df.sort_values(["split", "r_hat"], ascending=False, kind="stable").reset_index(drop=True)
