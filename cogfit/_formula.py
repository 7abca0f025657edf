"""Regressions: a parameter's unconstrained value as a linear predictor of covariates.

``Hierarchy(formulas={"v": "1 + theta + (1|subject)", "a": "1 + theta"})`` gives parameter
``p`` with transform ``f``, population ``g`` and formula design ``X`` (one row per trial,
built by `formulaic <https://matthewwardrop.github.io/formulaic/>`_, intercept left out)::

    p[s, t] = f(u[s] + X[s, t] @ beta[g(s)]),   beta ~ SLOPE_PRIOR   (unconstrained scale)

where ``u[s]`` is the hierarchy's subject value with the intercept as its population mean
``mu``: partial pooling with the random intercept ``(1|subject)`` (``u = mu + sigma * z``),
complete pooling without it (``u = mu``). So ``1 + (1|subject)`` is exactly today's partial
pooling and ``1`` complete pooling; ``<p>`` in the posterior is a subject's value with every
covariate at 0 and ``<p>_group`` a typical member's. The slopes ``<p>_beta`` have dims
(population, ``<p>_coef``) with formulaic's column names (``theta``, ``C(condition)[T.b]``).

Covariates are numeric columns kept by ``TrialData.from_table(..., covariates=(...))``; the
``condition`` labels are a categorical variable too, so ``1 + C(condition)`` is ``by_condition``
written as a regression (treatment contrasts: the first condition's value and each other
condition's shift, on the unconstrained scale). Random slopes are not supported.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pandas as pd

from cogfit._data import CONDITION, TrialData, design_field
from cogfit._model import Model
from cogfit._record import Record

__all__ = ["SLOPE_PRIOR", "Term", "design", "linear_from_draw", "parse", "prepare", "regress"]

# Prior of every slope (unconstrained scale, per unit of its covariate): standardise covariates
# whose unit makes a slope of 1 implausibly large.
SLOPE_PRIOR = dist.Normal(0.0, 1.0)

_GROUPED = re.compile(r"\(([^()|]*)\|([^()]*)\)")          # (lhs | group)


@dataclasses.dataclass(frozen=True)
class Term:
    """One parameter's formula: its fixed part (a formulaic formula) and whether subjects get
    random intercepts ``(1|subject)``."""

    param: str
    formula: str
    fixed: str
    random: bool


def parse(param: str, formula: str) -> Term:
    """Split ``formula`` (``"1 + theta + (1|subject)"``, optionally ``"v ~ ..."``) into its parts."""
    if not isinstance(formula, str):
        raise TypeError(f"formula of {param!r} must be a string such as '1 + theta + (1|subject)', not {formula!r}")
    rhs = formula
    if "~" in formula:
        lhs, rhs = formula.split("~", 1)
        if lhs.strip() not in ("", param):
            raise ValueError(f"formula {formula!r} is given for parameter {param!r} but names {lhs.strip()!r} "
                             "on its left")
    random = False
    for inner, group in _GROUPED.findall(rhs):
        if group.strip() != "subject":
            raise ValueError(f"formula of {param!r}: ({inner}|{group}) groups by {group.strip()!r}; "
                             "only (1|subject) is supported")
        if inner.strip() != "1":
            raise NotImplementedError(f"formula of {param!r}: ({inner}|{group}) asks for random slopes; only "
                                      "random intercepts (1|subject) are supported")
        random = True
    fixed = _GROUPED.sub("", rhs)
    while re.search(r"\+\s*\+", fixed):
        fixed = re.sub(r"\+\s*\+", "+", fixed)
    fixed = fixed.strip().strip("+").strip() or "1"
    if "|" in fixed:
        raise ValueError(f"formula of {param!r}: cannot read {formula!r} (random effects are written "
                         "(1|subject))")
    import formulaic

    try:
        formulaic.Formula(fixed)
    except Exception as err:                           # formulaic's parser errors have no common base
        raise ValueError(f"formula of {param!r}: cannot read {fixed!r}: {str(err).splitlines()[0]}") from None
    return Term(param, formula, fixed, random)


def _frame(data: TrialData) -> pd.DataFrame:
    """Real trials (subjects, then trials) with the covariates and the condition labels."""
    mask = np.asarray(data.mask)
    cols = {c: np.asarray(data.fields[c])[mask] for c in data.covariates}
    cols[CONDITION] = np.asarray(data.conditions)[np.asarray(data.condition)][mask]
    return pd.DataFrame(cols)


def _pad(flat: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(n_real, K)`` rows in subject-then-trial order -> ``(S, T, K)``, padded slots repeating
    each subject's last real trial (the layout of :class:`~cogfit.TrialData`)."""
    counts = mask.sum(1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.minimum(np.arange(mask.shape[1])[None, :], counts[:, None] - 1)
    return flat[starts[:, None] + slot]


def design(term: Term, data: TrialData) -> tuple[tuple[str, ...], np.ndarray]:
    """The coefficient names and design ``(S, T, K)`` of ``term`` on ``data`` (intercept left out)."""
    import formulaic
    from formulaic.errors import FormulaicError

    frame = _frame(data)
    known = tuple(frame.columns)
    unknown = sorted(v for v in formulaic.Formula(term.fixed).required_variables if v not in known)
    if unknown:
        raise KeyError(f"formula of {term.param!r} ({term.formula!r}) uses {unknown}, which "
                       f"{'is not a covariate' if len(unknown) == 1 else 'are not covariates'} of the data "
                       f"(covariates: {list(data.covariates)}, and 'condition'); keep columns with "
                       f"TrialData.from_table(table, model, covariates=({unknown[0]!r},))")
    try:
        matrix = formulaic.model_matrix(term.fixed, frame)
    except FormulaicError as err:
        raise ValueError(f"formula of {term.param!r} ({term.formula!r}): {str(err).splitlines()[0]} "
                         f"(covariates: {list(data.covariates)}, and 'condition')") from None
    names = [str(c) for c in matrix.columns]
    if "Intercept" not in names:
        raise ValueError(f"formula of {term.param!r} ({term.formula!r}) has no intercept; cogfit's formulas keep "
                         f"it (it is the population mean {term.param}_mu): write '1 + ...'")
    keep = [i for i, n in enumerate(names) if n != "Intercept"]
    values = np.asarray(matrix, dtype=np.float64)[:, keep]
    return tuple(names[i] for i in keep), _pad(values, np.asarray(data.mask))


def prepare(model: Model, formulas: Mapping[str, str], data: TrialData) -> TrialData:
    """``data`` with each formula's design as field ``design_<p>`` and its coefficient names in
    ``data.designs`` (a formula without covariates, ``1 + (1|subject)``, adds none)."""
    if not formulas:
        return data
    fields, designs = {}, {}
    for param, formula in formulas.items():
        model.param(param)
        names, values = design(parse(param, formula), data)
        designs[param] = names
        if names:
            fields[design_field(param)] = values
    return dataclasses.replace(data, fields=data.fields.replace(**fields), designs=designs)


def regress(model: Model, theta: Record, fields: Record, linear: Mapping[str, tuple]) -> Record:
    """``theta`` with each regressed parameter per trial ``(S, T)``: ``f(u[s] + X[s, t] @ beta[s])``.

    ``linear`` maps a parameter to ``(u (S,), beta (S, K))``: its unconstrained subject values
    and each subject's population's slopes; ``fields`` hold its design ``design_<p>`` ``(S, T, K)``.
    """
    new = {}
    for name, (u, beta) in linear.items():
        eta = u[:, None] + jnp.einsum("stk,sk->st", fields[design_field(name)], beta)
        new[name] = model.param(name).transform.forward(eta)
    return theta.replace(**new)


def linear_from_draw(model: Model, designs: Mapping[str, tuple], values: Mapping[str, jax.Array],
                     population: jax.Array) -> dict[str, tuple]:
    """``linear`` for :func:`regress` from one posterior draw: ``values`` holds each regressed
    parameter ``p`` (natural scale, ``(S,)``) and its slopes ``p_beta`` ``(G, K)``."""
    return {p: (model.param(p).transform.inverse(values[p]), values[f"{p}_beta"][population])
            for p, names in designs.items() if names}
