"""What every inference method shares: its result (:class:`Draws`), the method protocol, and
the checks and records of the options methods have in common."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol

import numpy as np

from cogfit._data import TrialData
from cogfit._hierarchy import Hierarchy
from cogfit._model import Model


class Draws(NamedTuple):
    """What a method returns to :func:`cogfit.fit`.

    ``samples``: site -> ``(chain, draw, ...)`` (constrained latent and deterministic sites);
    ``stats``: sampler statistics -> ``(chain, draw[, population])`` (empty for SVI/MAP);
    ``info``: settings and findings recorded in the fit's metadata (JSON values).
    """

    samples: dict[str, np.ndarray]
    stats: dict[str, np.ndarray]
    info: dict[str, Any]


class Method(Protocol):
    """An inference method: a frozen object of options with a ``run``."""

    name: str

    def run(self, model: Model, data: TrialData, hierarchy: Hierarchy, *, seed: int, progress: bool) -> Draws: ...

    def settings(self) -> dict: ...


def positive_int(owner: str, name: str, value, minimum: int = 1) -> None:
    """``ValueError`` naming ``owner.name`` unless ``value`` is an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum}, not {value!r}")


def positive(owner: str, name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not value > 0:
        raise ValueError(f"{owner}: {name} must be a number > 0, not {value!r}")


def one_of(owner: str, name: str, value, allowed: tuple) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{owner}: {name} must be one of {allowed}, not {value!r}")


def check_centered(owner: str, value, allow_auto: bool) -> None:
    """``centered``: ``None`` (by trial count), a bool, a bool array ``(S,)`` or ``(S, P)``, or
    ``"auto"`` where the method can choose it from a pilot."""
    if value is None or isinstance(value, (bool, np.bool_)):
        return
    if isinstance(value, str):
        if value == "auto" and allow_auto:
            return
        allowed = "None, a bool, a bool array" + (" or 'auto'" if allow_auto else "")
        raise ValueError(f"{owner}: centered must be {allowed}, not {value!r}")
    arr = np.asarray(value)
    if arr.dtype != bool or arr.ndim not in (1, 2):
        raise ValueError(f"{owner}: centered as an array must be bool, shaped (subjects,) or (subjects, "
                         f"parameters); got dtype {arr.dtype} and shape {arr.shape}")


def plain(value):
    """``value`` as JSON-able values (arrays as nested lists, mappings with string keys)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dict(kind=value.name, **value.settings())
    if isinstance(value, np.generic):
        return value.item()
    return value


def settings(method) -> dict:
    """A method's fields as JSON values (a nested method as ``{"kind": name, ...}``)."""
    return {f.name: plain(getattr(method, f.name)) for f in dataclasses.fields(method)}


def centring_info(model: Model, mask: np.ndarray) -> dict:
    """How many (subject, parameter) pairs were centred, per parameter, and which (per parameter a
    string of ``0``/``1``, one per subject in data order: pass it back as an ``(S, P)`` array to
    refit with the same layout)."""
    return dict(centered=int(mask.sum()), centered_by_param=[int(n) for n in mask.sum(0)],
                centered_mask={p.name: "".join("1" if c else "0" for c in mask[:, j])
                               for j, p in enumerate(model.params)})
