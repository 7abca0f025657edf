"""Designs and simulated responses for many datasets at once.

A recovery study's datasets share one shape ``(S, T)``. The design is either drawn per dataset
and subject from the model's ``design`` function (``cogfit.random_design``'s source, vmapped
here) or one user design table shared by every dataset. Responses come from the model's
simulator, vmapped over datasets and subjects, with one key per dataset
(:func:`cogfit.recovery.truth.dataset_keys`), so they do not depend on the chunking.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from cogfit._data import TrialData
from cogfit._model import Model
from cogfit._record import Record
from cogfit.recovery.truth import dataset_keys


class Design(NamedTuple):
    """The shape of every dataset of a study and, for a user table, its packed design.

    ``table`` holds a design table's packed stimulus fields ``(S, T[, k])`` (a plain dict, so a
    study pickles); None for random designs (drawn per dataset from ``model.design``).
    """

    n_subjects: int
    n_trials: int
    population: np.ndarray              # (S,) population index of each subject
    populations: tuple[str, ...]
    table: dict[str, np.ndarray] | None = None


def design(model: Model, *, n_subjects: int | None, n_trials: int | None,
           table: pd.DataFrame | None = None) -> Design:
    """Validate the study's shape: a random design needs ``n_subjects`` and ``n_trials``; a
    design table sets them (when given as well, they must agree). Tables must give every
    subject the same number of trials."""
    if table is None:
        if model.design is None:
            raise ValueError(f"model {model.name!r} has no random design; pass design=<a design table>")
        for name, v in (("n_subjects", n_subjects), ("n_trials", n_trials)):
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer (got {v!r})")
        return Design(int(n_subjects), int(n_trials), np.zeros(n_subjects, np.int32), ("all",))
    packed = TrialData.from_table(table, model, responses=False)
    if packed.conditions != ("all",):
        raise ValueError("recovery designs with a 'condition' column are not supported yet (parameters by "
                         "condition); drop the column")
    counts = packed.n_trials
    if counts.min() != counts.max():
        s = int(np.argmin(counts))
        raise ValueError(f"design table: subject {packed.subjects[s]!r} has {counts[s]} trials, others up to "
                         f"{counts.max()}; recovery needs the same number of trials for every subject")
    S, T = packed.n_subjects, int(counts[0])
    for name, v, have in (("n_subjects", n_subjects, S), ("n_trials", n_trials, T)):
        if v is not None and v != have:
            raise ValueError(f"{name}={v} but the design table has {have}")
    fields = {k: np.asarray(v) for k, v in packed.fields.items() if k != "mask"}
    return Design(S, T, np.asarray(packed.population), packed.populations, fields)


def stimuli(model: Model, d: Design, seed: int, datasets: np.ndarray) -> dict[str, np.ndarray]:
    """Design fields ``(D, S, T[, k])`` of ``datasets`` (no responses, no mask)."""
    D = len(datasets)
    if d.table is not None:
        return {k: np.broadcast_to(v, (D, *v.shape)) for k, v in d.table.items()}
    keys = jax.vmap(lambda k: jax.random.split(k, d.n_subjects))(dataset_keys(seed, datasets, 1))
    draw = compiled(model, f"design{d.n_trials}", lambda: jax.vmap(jax.vmap(lambda k: model.design(k, d.n_trials))))
    out = draw(keys)
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


_COMPILED: dict[tuple[int, str], tuple[Model, Callable]] = {}


def compiled(model: Model, what: str, make: Callable[[], Callable]) -> Callable:
    """``jax.jit(make())`` once per model and purpose (a new closure would compile again each chunk)."""
    key = (id(model), what)
    if key not in _COMPILED or _COMPILED[key][0] is not model:
        _COMPILED[key] = (model, jax.jit(make()))
    return _COMPILED[key][1]


def responses(model: Model, seed: int, datasets: np.ndarray, subject: dict[str, np.ndarray],
              fields: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Simulated responses (and outcomes such as a bandit's ``reward``) ``(D, S, T)`` for the
    natural-scale subject parameters ``subject[name]`` ``(D, S)`` on the design ``fields``."""
    D, S = next(iter(subject.values())).shape
    theta = Record({**{k: jnp.full((D, S), v) for k, v in model.fixed.items()},
                    **{k: jnp.asarray(v) for k, v in subject.items()}})
    T = next(iter(fields.values())).shape[2]
    trials = Record({**{k: jnp.asarray(v) for k, v in fields.items()}, "mask": jnp.ones((D, S, T), bool)})
    keys = jax.vmap(lambda k: jax.random.split(k, S))(dataset_keys(seed, datasets, 2))
    out = compiled(model, "simulate", lambda: jax.vmap(jax.vmap(model.simulate)))(keys, theta, trials)
    return {k: np.asarray(v) for k, v in out.items()}


def datasets(d: Design, fields: dict[str, np.ndarray],
             simulated: dict[str, np.ndarray]) -> list[TrialData]:
    """One :class:`cogfit.TrialData` per dataset, packed as ``TrialData.from_table`` packs a
    complete table (choices int32, everything else float64). Every design and simulated field
    is kept, so other models that read the same columns can be fitted to it too."""
    D = next(iter(simulated.values())).shape[0]
    S, T = d.n_subjects, d.n_trials
    out = []
    for i in range(D):
        f = {k: np.asarray(v[i], np.float64) for k, v in fields.items()}
        for k, v in simulated.items():
            f[k] = np.asarray(v[i], np.int32 if k == "choice" else np.float64)
        f["mask"] = np.ones((S, T), bool)
        out.append(TrialData(
            fields=Record(f), subjects=tuple(range(S)), population=d.population, populations=d.populations,
            condition=np.zeros((S, T), np.int32), conditions=("all",),
            trial=np.broadcast_to(np.arange(T), (S, T)).copy(),
            row=np.arange(S * T).reshape(S, T)))
    return out
