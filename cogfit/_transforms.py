"""Bijections from the real line to a parameter's natural domain.

The hierarchy lives on the unconstrained (real) scale: a subject's value is
``transform(mu + sigma * z)``. Each transform is a small frozen record with a ``forward``
map (real -> natural) and its ``inverse``; both are pure and differentiable.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike


def _eq(self, other: object) -> bool:
    """Equal when of the same kind with the same bounds: a NamedTuple alone would make
    ``Real() == Positive()`` (two empty tuples), and caches keyed on transforms mix them up."""
    return type(self) is type(other) and tuple.__eq__(self, other)


def _ne(self, other: object) -> bool:
    return not _eq(self, other)


def _hash(self) -> int:
    return hash((type(self).__name__, *self))


class Real(NamedTuple):
    """The identity: the parameter is any real number."""

    __eq__, __ne__, __hash__ = _eq, _ne, _hash

    def forward(self, x: ArrayLike) -> jax.Array:
        return jnp.asarray(x)

    def inverse(self, y: ArrayLike) -> jax.Array:
        return jnp.asarray(y)

    def describe(self) -> str:
        return "real"


class Positive(NamedTuple):
    """``exp``: the parameter is > 0 (its log has the hierarchy)."""

    __eq__, __ne__, __hash__ = _eq, _ne, _hash

    def forward(self, x: ArrayLike) -> jax.Array:
        return jnp.exp(x)

    def inverse(self, y: ArrayLike) -> jax.Array:
        return jnp.log(y)

    def describe(self) -> str:
        return "positive (log scale)"


class Interval(NamedTuple):
    """Scaled logistic: the parameter lies in the open interval ``(low, high)``."""

    low: float = 0.0
    high: float = 1.0

    __eq__, __ne__, __hash__ = _eq, _ne, _hash

    def forward(self, x: ArrayLike) -> jax.Array:
        return self.low + (self.high - self.low) * jax.nn.sigmoid(x)

    def inverse(self, y: ArrayLike) -> jax.Array:
        u = (jnp.asarray(y) - self.low) / (self.high - self.low)
        return jnp.log(u) - jnp.log1p(-u)

    def describe(self) -> str:
        return f"interval ({self.low:g}, {self.high:g}) (logit scale)"


Transform = Real | Positive | Interval
