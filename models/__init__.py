"""The cogfit model zoo: one small file per model family.

``get(name)`` returns a registered :class:`cogfit.Model`; ``available()`` lists the names;
``register(model)`` adds a user's model.
"""

from __future__ import annotations

import importlib

from cogfit._model import Model

# Families that register their models on import. A new family is one file plus one entry here.
_FAMILIES = ("prospect", "ddm", "bandit", "twostep", "rlddm")
_REGISTRY: dict[str, Model] = {}
_loaded = False


def register(model: Model, *, overwrite: bool = False) -> Model:
    """Add ``model`` to the registry under ``model.name`` and return it."""
    if model.name in _REGISTRY and not overwrite and _REGISTRY[model.name] is not model:
        raise ValueError(f"a model named {model.name!r} is already registered")
    _REGISTRY[model.name] = model
    return model


def _load_families() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for family in _FAMILIES:
        try:
            importlib.import_module(f"{__name__}.{family}")
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{family}":
                raise


def get(name: str | Model) -> Model:
    """The registered model called ``name`` (a Model is returned unchanged)."""
    if isinstance(name, Model):
        return name
    _load_families()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(available())}") from None


def available() -> list[str]:
    """Names of all registered models, sorted."""
    _load_families()
    return sorted(_REGISTRY)


__all__ = ["available", "get", "register"]
