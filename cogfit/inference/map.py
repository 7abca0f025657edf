"""The posterior mode (MAP), optionally with a Laplace approximation around it."""

from __future__ import annotations

import dataclasses
import warnings
from typing import ClassVar

import jax

from cogfit._data import TrialData
from cogfit._hierarchy import Hierarchy
from cogfit._model import Model
from cogfit.inference.base import Draws
from cogfit.inference.svi import Optimised, run_guide


@dataclasses.dataclass(frozen=True)
class MAP(Optimised):
    """The posterior mode on the unconstrained scale, found by ``steps`` of Adam
    (``learning_rate``); with ``laplace=True``, ``draws`` draws from the Laplace approximation
    (a normal with the inverse Hessian at the mode as covariance), else the mode alone.

    A hierarchical (partial-pooling) model has no useful mode: its joint density grows without
    bound as a group's sd goes to 0, so subjects shrink to the group mean and the Laplace
    approximation is too narrow. Use it with ``Hierarchy(pooling="none")`` or ``"complete"``, or
    use :class:`cogfit.SVI` / :class:`cogfit.NUTS`. ``steps``, ``learning_rate``, ``draws`` and
    ``centered`` as for :class:`~cogfit.inference.svi.Optimised`.
    """

    laplace: bool = True
    name: ClassVar[str] = "map"

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.laplace, bool):
            raise ValueError(f"MAP: laplace must be True or False, not {self.laplace!r}")

    def run(self, model: Model, data: TrialData, hierarchy: Hierarchy, *, seed: int, progress: bool) -> Draws:
        if hierarchy.any_partial(model):
            warnings.warn("MAP of a hierarchical model drives the group sd towards 0 (the joint density is "
                          "unbounded there), so subject estimates shrink to the group mean and a Laplace "
                          "approximation is too narrow; use cogfit.NUTS() or cogfit.SVI(), or "
                          "Hierarchy(pooling='none').", UserWarning, stacklevel=4)
        return run_guide(self, "laplace", model, data, hierarchy, key=jax.random.PRNGKey(seed), progress=progress,
                         point=not self.laplace)
