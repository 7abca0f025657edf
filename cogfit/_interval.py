"""One interval probability for every table: ArviZ's ``stats.ci_prob`` (0.89 unless changed).

:meth:`cogfit.Fit.summary` (ArviZ's own columns ``eti89_lb``/``eti89_ub``),
:meth:`cogfit.Fit.differences`, :meth:`cogfit.Fit.subject_params` and ``cogfit demo`` all default
to it, so one line changes them all::

    import arviz as az
    az.rcParams["stats.ci_prob"] = 0.9

Every table states the probability it used: ``df.attrs["ci_prob"]`` and the columns' name
(the header's top-left cell in a notebook), e.g. ``"89% equal-tailed interval: lo, hi"``.
"""

from __future__ import annotations

import arviz as az
import pandas as pd

KEY = "stats.ci_prob"


def ci_prob(prob: float | None = None) -> float:
    """``prob``, or ArviZ's ``stats.ci_prob`` when None; a probability strictly between 0 and 1."""
    prob = float(az.rcParams[KEY] if prob is None else prob)
    if not 0.0 < prob < 1.0:
        raise ValueError(f"interval probability must lie strictly between 0 and 1, got {prob}")
    return prob


def describe(prob: float) -> str:
    """``0.89 -> "89% equal-tailed interval"``."""
    return f"{100 * prob:g}% equal-tailed interval"


def stamp(df: pd.DataFrame, prob: float) -> pd.DataFrame:
    """``df`` labelled with the probability of its ``lo``/``hi`` columns (see the module docstring)."""
    df.attrs["ci_prob"] = prob
    df.columns.name = f"{describe(prob)}: lo, hi"
    return df
