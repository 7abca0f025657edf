"""Simulate responses from a model: one data set from known parameters, or posterior predictions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from cogfit import _formula
from cogfit._data import CONDITION, SUBJECT, TrialData
from cogfit._hierarchy import per_trial_theta
from cogfit._model import Model
from cogfit.models import get


def simulate_arrays(model: Model, key: jax.Array, values: Mapping[str, jax.Array],
                    data: TrialData, by_condition: Sequence[str] = (),
                    linear: Mapping[str, tuple] | None = None) -> dict[str, jax.Array]:
    """Responses ``(S, T)`` for subject parameters ``values[name]`` of shape ``(S,)`` or ``(S, C)``;
    ``linear`` the regressed parameters' ``(u (S,), beta (S, K))`` (:func:`cogfit._formula.regress`)."""
    theta = per_trial_theta(model, dict(values), jnp.asarray(data.condition), by_condition)
    fields = jax.tree.map(jnp.asarray, data.fields)
    if linear:
        theta = _formula.regress(model, theta, fields, linear)
    keys = jax.random.split(key, data.n_subjects)
    return jax.vmap(model.simulate)(keys, theta, fields)


def simulate(
    model: Model | str,
    design: pd.DataFrame,
    params: pd.DataFrame | Mapping[str, Sequence[float]],
    *,
    seed: int = 0,
    by_condition: Sequence[str] = (),
    formulas: Mapping[str, str] | None = None,
    coefficients: Mapping[str, Mapping[str, float]] | None = None,
) -> pd.DataFrame:
    """Simulate responses on a design table.

    Parameters
    ----------
    design
        Tidy table without responses: ``subject``, ``trial``, the model's stimulus columns,
        optional ``population``/``condition``.
    params
        Natural-scale parameters per subject: a table with a ``subject`` column and one column
        per parameter (for a parameter in ``by_condition``: columns ``<name>[<condition>]``),
        or a mapping ``name -> values`` in the design's subject order (a scalar: the same
        value for every subject).
    seed
        Random seed; the same seed gives the same responses.
    formulas, coefficients
        Regressions (as :class:`cogfit.Hierarchy`'s ``formulas``; ``(1|subject)`` is ignored, the
        subjects' values come from ``params``): per parameter the slopes on the unconstrained
        scale by coefficient name, e.g. ``formulas={"v": "1 + theta"}, coefficients={"v":
        {"theta": 0.5}}`` gives ``v[s, t] = v[s] + 0.5 * theta[s, t]`` (``v`` is real); ``params``
        then hold each subject's value with the covariates at 0. The covariates are read from
        the design's columns.

    Returns
    -------
    The design table (real trials, sorted by subject and trial) with ``choice`` (and ``rt``).
    """
    model = get(model)
    formulas, coefficients = dict(formulas or {}), dict(coefficients or {})
    data = TrialData.from_table(design, model, responses=False, covariates=_covariates(model, formulas))
    data = _formula.prepare(model, formulas, data)
    if isinstance(params, pd.DataFrame):
        if SUBJECT not in params:
            raise ValueError("params table needs a 'subject' column")
        missing = set(data.subjects) - set(params[SUBJECT])
        if missing:
            raise ValueError(f"params table has no row for subjects {sorted(missing, key=str)[:5]}")
        p = params.set_index(SUBJECT).loc[list(data.subjects)]
        values = {}
        for prm in model.params:
            if prm.name in by_condition:
                values[prm.name] = np.stack([p[f"{prm.name}[{c}]"].to_numpy(float) for c in data.conditions], -1)
            else:
                values[prm.name] = p[prm.name].to_numpy(float)
    else:
        values = {k: np.asarray(v, float) for k, v in params.items()}
    missing = set(model.param_names) - set(values)
    if missing:
        raise ValueError(f"no values for parameters {sorted(missing)} of model {model.name!r}")
    for k, v in values.items():
        if v.ndim == 0:                                # one value for every subject
            values[k] = v = np.full(data.n_subjects, float(v))
        if v.shape[0] != data.n_subjects:
            raise ValueError(f"parameter {k!r}: {v.shape[0]} values for {data.n_subjects} subjects")
    linear = _slopes(model, data, values, coefficients)
    out = simulate_arrays(model, jax.random.PRNGKey(seed), values, data, by_condition, linear)
    table = data.to_table()
    m = data.mask
    for k, v in out.items():
        table[k] = np.asarray(v)[m]
    return table


def _covariates(model: Model, formulas: Mapping[str, str]) -> tuple[str, ...]:
    """The design columns the formulas read (``condition`` is read anyway)."""
    import formulaic

    names = set()
    for param, formula in formulas.items():
        model.param(param)
        names |= set(formulaic.Formula(_formula.parse(param, formula).fixed).required_variables)
    return tuple(sorted(names - {CONDITION}))


def _slopes(model: Model, data: TrialData, values: Mapping[str, np.ndarray],
            coefficients: Mapping[str, Mapping[str, float]]) -> dict[str, tuple]:
    """``linear`` of :func:`simulate_arrays` from natural-scale subject values and named slopes."""
    unknown = sorted(set(coefficients) - set(data.designs))
    if unknown:
        raise ValueError(f"coefficients given for {unknown}, which have no formula (formulas: {sorted(data.designs)})")
    linear = {}
    for param, names in data.designs.items():
        given = dict(coefficients.get(param, {}))
        if set(given) != set(names):
            raise ValueError(f"coefficients of {param!r} must name its formula's coefficients {list(names)}; "
                             f"got {sorted(given)}")
        if names:
            beta = np.broadcast_to(np.asarray([given[n] for n in names], float), (data.n_subjects, len(names)))
            u = model.param(param).transform.inverse(jnp.asarray(values[param]))
            linear[param] = (u, jnp.asarray(beta))
    return linear


def random_design(model: Model | str, *, n_subjects: int, n_trials: int, seed: int = 0,
                  populations: Sequence[str] | None = None) -> pd.DataFrame:
    """A design table from the model's ``design`` function (one independent design per subject)."""
    model = get(model)
    if model.design is None:
        raise ValueError(f"model {model.name!r} has no random design; pass your own design table")
    keys = jax.random.split(jax.random.PRNGKey(seed), n_subjects)
    frames = []
    for s, k in enumerate(keys):
        d = model.design(k, n_trials)
        cols = {SUBJECT: s, "trial": np.arange(n_trials)}
        for name, v in d.items():
            v = np.asarray(v)
            if v.ndim == 2:
                cols.update({f"{name}_{j + 1}": v[:, j] for j in range(v.shape[1])})
            else:
                cols[name] = v
        if populations is not None:
            cols["population"] = populations[s % len(populations)]
        frames.append(pd.DataFrame(cols))
    return pd.concat(frames, ignore_index=True)
