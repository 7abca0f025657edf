"""Per-draw population distributions of a new member, read from a :class:`~cogfit.Fit`'s posterior.

For parameter ``p`` with transform ``f``, population ``g`` and posterior draw ``d`` the fit's
hierarchy (:mod:`cogfit._hierarchy`) says a new member has unconstrained value
``mu[d, g] + sigma[d, g] * t`` with ``t ~ N(0, 1)`` or, with ``population="student_t"``,
``t ~ StudentT(nu[d])`` (``<p>_nu``, or the fixed ``meta["nu"]``), and natural value ``f`` of it.
A parameter that varies by condition gives one :class:`ParamDraws` per condition, labelled
``"<p>[<condition>]"``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cogfit._transforms import Interval, Positive, Transform


class ParamDraws(NamedTuple):
    """One parameter's population distributions, draws flattened over chains.

    Attributes
    ----------
    label
        ``"<p>"`` or ``"<p>[<condition>]"``.
    param
        The model parameter's name.
    transform
        Its transform (unconstrained -> natural).
    mu, sigma
        ``(draws, populations)``: location and scale on the unconstrained scale.
    nu
        ``(draws,)`` Student-t degrees of freedom, or None for a normal population.
    members
        ``(draws, subjects)``: every fitted member's unconstrained value.
    """

    label: str
    param: str
    transform: Transform
    mu: np.ndarray
    sigma: np.ndarray
    nu: np.ndarray | None
    members: np.ndarray


def _flat(values: np.ndarray) -> np.ndarray:
    """``(chain, draw, ...) -> (chain * draw, ...)``."""
    return values.reshape(-1, *values.shape[2:])


def unconstrained(transform: Transform, natural: np.ndarray) -> np.ndarray:
    """``transform.inverse`` of stored natural values; values an Interval's float rounding put on
    its bound (a member far in the tail, stored in float32) are moved one ulp inside it."""
    x = np.asarray(natural)
    if isinstance(transform, Interval):
        x = np.clip(x, np.nextafter(x.dtype.type(transform.low), x.dtype.type(np.inf)),
                    np.nextafter(x.dtype.type(transform.high), x.dtype.type(-np.inf)))
    elif isinstance(transform, Positive):
        x = np.maximum(x, np.finfo(x.dtype).tiny)
    return np.asarray(transform.inverse(x))


def _family(fit) -> tuple[str, float | None]:
    meta = fit.meta
    hier = meta.get("hierarchy") or {}
    family = meta.get("population", hier.get("population", "normal")) or "normal"
    return family, meta.get("nu", hier.get("nu"))


def population_draws(fit, params: list[str] | None = None) -> list[ParamDraws]:
    """One :class:`ParamDraws` per parameter (and condition) of ``fit``; needs partial pooling.
    ``params`` default: every parameter with partial pooling (a spread ``<p>_sigma``)."""
    post = fit.posterior
    names = list(params) if params else [p for p in fit.model.param_names if f"{p}_sigma" in post]
    if not names:
        raise ValueError(f"alignment compares population distributions, which need partial pooling: no parameter "
                         f"of the fit (pooling={fit.meta.get('pooling')!r}) has a population spread <p>_sigma")
    family, fixed_nu = _family(fit)
    out = []
    for name in names:
        p = fit.model.param(name)
        missing = [k for k in (f"{name}_mu", f"{name}_sigma") if k not in post]
        if missing:
            raise ValueError(f"alignment compares population distributions, which need partial pooling: the fit "
                             f"(pooling={fit.meta.get('pooling')!r}) has no {missing}")
        mu, sigma, subj = post[f"{name}_mu"], post[f"{name}_sigma"], post[name]
        if f"{name}_nu" in post:
            nu = _flat(post[f"{name}_nu"].values)
        elif family == "student_t":
            if fixed_nu is None:
                raise ValueError(f"the fit has Student-t populations but neither {name}_nu nor meta['nu']")
            nu = np.full(mu.sizes["chain"] * mu.sizes["draw"], float(fixed_nu), mu.dtype)
        else:
            nu = None
        conds = list(mu["condition"].values) if "condition" in mu.dims else [None]
        for c in conds:
            at = {} if c is None else {"condition": c}
            out.append(ParamDraws(
                label=name if c is None else f"{name}[{c}]", param=name, transform=p.transform,
                mu=_flat(mu.sel(at).transpose("chain", "draw", "population").values),
                sigma=_flat(sigma.sel(at).transpose("chain", "draw", "population").values),
                nu=nu,
                members=_flat(unconstrained(p.transform, subj.sel(at).transpose("chain", "draw", "subject").values)),
            ))
    return out
