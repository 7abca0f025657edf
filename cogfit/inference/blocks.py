"""NUTS on each population alone, joined into one fit (``NUTS(blocks="population")``).

The partial-pooling posterior factorises over populations when they share no parameter (a
normal population, or a Student-t one with a fixed ``nu``): each population's ``mu``,
``sigma`` and subjects depend on its own subjects' trials only, so sampling each population as
its own NUTS run and joining the draws (chain ``c`` of every population as chain ``c`` of the
whole) gives draws from the same posterior. Each run then has its own warm-up: step size, mass
matrix, trajectory length (the U-turn criterion of the whole vector is otherwise set by the
fastest coordinates of all populations), centring pilot and mode search. Pooling ``"none"`` and
``"complete"`` factorise the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import numpy as np

from cogfit._data import TrialData
from cogfit._record import Record
from cogfit.inference.base import Draws

# Per-draw sampler statistics joined over populations: summed (the joint potential and energy
# are sums over independent blocks), "any" (a divergence anywhere: ArviZ's plots want one flag
# per draw; each population's flags are kept too, as ``diverging_population``) or kept per
# population.
_SUMMED, _ANY = ("lp", "energy"), ("diverging",)

# Settings of the block fits joined as totals; the rest are kept when equal, else per population.
_TOTALS = ("centered", "jumps_search_s")
_POPULATION_SITES = ("_mu", "_sigma", "_group", "_beta")
_PARTIAL_SITES = ("_uc", "_znc")       # centred / non-centred subsets of a parameter's subjects


def members(data: TrialData) -> list[np.ndarray]:
    """Indices of each population's subjects, in data order (one array per population)."""
    out = [np.flatnonzero(np.asarray(data.population) == g) for g in range(len(data.populations))]
    empty = [label for label, idx in zip(data.populations, out) if idx.size == 0]
    if empty:
        raise ValueError(f"blocks='population': populations {empty} have no subjects")
    return out


def subset(data: TrialData, idx: np.ndarray, g: int) -> TrialData:
    """The subjects ``idx`` (all of population ``g``) as data with that one population, trimmed
    to their longest trial count; conditions keep their labels."""
    T = int(np.asarray(data.n_trials)[idx].max())
    return dataclasses.replace(
        data,
        fields=Record({k: np.asarray(v)[idx][:, :T] for k, v in data.fields.items()}),
        subjects=tuple(data.subjects[i] for i in idx),
        population=np.zeros(len(idx), np.asarray(data.population).dtype),
        populations=(data.populations[g],),
        condition=np.asarray(data.condition)[idx][:, :T],
        trial=np.asarray(data.trial)[idx][:, :T],
        row=np.asarray(data.row)[idx][:, :T],
    )


def block_seed(seed: int, g: int) -> int:
    """Independent seed of population ``g``'s run."""
    return int(np.random.SeedSequence([seed, g]).generate_state(1)[0] >> 1)


def per_block(value, data: TrialData, parts: list[np.ndarray]) -> list:
    """Split a per-subject ``centered`` array, or a ``jumps`` mapping, by population."""
    if isinstance(value, Mapping):
        index = {k: i for i, s in enumerate(data.subjects) for k in (str(s), s)}   # ids as jumps take them
        unknown = [s for s in value if s not in index]
        if unknown:
            raise KeyError(f"jumps: subjects {unknown} are not in the data")
        population, out = np.asarray(data.population), [{} for _ in parts]
        for s, d in value.items():
            out[int(population[index[s]])][s] = d
        return [o or None for o in out]
    if isinstance(value, np.ndarray) and value.ndim >= 1:
        return [value[idx] for idx in parts]
    return [value] * len(parts)


def run(fit_one: Callable[[TrialData, int, dict], Draws], data: TrialData, seed: int,
        split: Mapping[str, object]) -> tuple[list[np.ndarray], list[Draws]]:
    """Fit every population alone: ``fit_one(data_g, seed_g, options_g)`` with the ``split``
    options (``centered``, ``jumps``) cut to its subjects."""
    parts = members(data)
    cut = {k: per_block(v, data, parts) for k, v in split.items()}
    runs = [fit_one(subset(data, idx, g), block_seed(seed, g), {k: v[g] for k, v in cut.items()})
            for g, idx in enumerate(parts)]
    return parts, runs


def join(parts: list[np.ndarray], runs: list[Draws], data: TrialData) -> Draws:
    """The whole from the population runs: subject sites back in data order, population sites
    (``<p>_mu``, ``<p>_sigma``, ``<p>_group``, a formula's ``<p>_beta``) in population order, sampler statistics per
    population (last dim) except the summed and "any" ones, settings merged."""
    order = np.argsort(np.concatenate(parts))
    samples = {}
    for name in runs[0].samples:
        if name.endswith(_PARTIAL_SITES) or not all(name in r.samples for r in runs):
            continue                                        # raw sites of some subjects, or of some populations
        joined = np.concatenate([r.samples[name] for r in runs], axis=2)
        samples[name] = joined if name.endswith(_POPULATION_SITES) else joined[:, :, order]
    stats = {}
    for name in runs[0].stats:
        values = np.stack([r.stats[name] for r in runs])
        stats[name] = (values.sum(0) if name in _SUMMED else values.any(0) if name in _ANY
                       else np.moveaxis(values, 0, -1))
        if name in _ANY:
            stats[f"{name}_population"] = np.moveaxis(values, 0, -1)
    return Draws(samples, stats, _settings([r.info for r in runs], parts, data.n_subjects, list(data.populations)))


def _settings(metas: list[dict], parts: list[np.ndarray], n_subjects: int, labels: list) -> dict:
    out: dict = {}
    keys = [k for m in metas for k in m]
    for key in dict.fromkeys(keys):
        values = [m.get(key) for m in metas]
        if key == "centered_mask":
            out[key] = {}
            for name in values[0]:
                flags = np.zeros(n_subjects, "<U1")
                for idx, v in zip(parts, values):
                    flags[idx] = list(v[name])
                out[key][name] = "".join(flags)
        elif key == "centered_by_param":
            out[key] = [int(n) for n in np.sum(values, axis=0)]
        elif key == "jumps":
            out[key] = {s: d for v in values if v for s, d in v.items()}
        elif key in _TOTALS:
            total = sum(v for v in values if v is not None)
            out[key] = round(total, 1) if isinstance(total, float) else total
        elif all(v == values[0] for v in values):
            out[key] = values[0]
        else:
            out[key] = {str(label): v for label, v in zip(labels, values)}
    return out
