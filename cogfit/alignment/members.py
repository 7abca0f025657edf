"""Member-level, all parameters at once: the energy distance between two sets of fitted members.

Each member is a point in the space of its unconstrained parameter values (one coordinate per
parameter, and per condition where a parameter varies by condition), every coordinate divided by
the reference set's standard deviation of that coordinate, so that parameters on different
scales count alike and correlated parameters count once, not as a sum of marginals.

The energy distance (Szekely & Rizzo 2013) ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` (Euclidean
norms) is 0 exactly when the two distributions are equal. It is computed between the two sets'
empirical distributions (the V-statistic, all pairs): never negative, and biased upward by
about ``E|X - X'| / (2n) + E|Y - Y'| / (2m)`` for sets of sizes n and m, a bias the size-matched
split-half ceiling (:mod:`cogfit.alignment.ceiling`) carries too.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _mean_distance(x: jax.Array, y: jax.Array) -> jax.Array:
    """Mean Euclidean distance over all pairs; ``|x|^2 + |y|^2 - 2 x.y`` (a matrix product), after
    centring both at ``x``'s mean so the subtraction loses no precision."""
    c = jnp.mean(x, axis=0)
    x, y = x - c, y - c
    d2 = jnp.sum(x * x, -1)[:, None] + jnp.sum(y * y, -1)[None, :] - 2 * x @ y.T
    return jnp.mean(jnp.sqrt(jnp.maximum(d2, 0.0)))


def energy_distance(x: jax.Array, y: jax.Array) -> jax.Array:
    """Energy distance between the empirical distributions of ``x (n, F)`` and ``y (m, F)``."""
    return jnp.maximum(2 * _mean_distance(x, y) - _mean_distance(x, x) - _mean_distance(y, y), 0.0)


def standardised_energy(ref: jax.Array, other: jax.Array) -> jax.Array:
    """:func:`energy_distance` after dividing every coordinate by ``ref``'s sd (ddof=1) of it;
    a coordinate without spread in ``ref`` (below 1e-12 of its scale, or 0) is divided by the
    larger of that and the tiny number of the precision instead of 0."""
    sd = jnp.std(ref, axis=0, ddof=1)
    sd = jnp.maximum(sd, jnp.finfo(ref.dtype).tiny)
    return energy_distance(ref / sd, other / sd)
