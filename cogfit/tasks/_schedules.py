"""Pure, seeded reward schedules shared by the task environments and the models' ``design``.

Every function maps a JAX key to arrays; nothing depends on a participant's choices, so a
schedule can be drawn once, played by anyone (a learner model, a person, a language model) and
exported as a design table.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike


def reflect(x: jax.Array, low: float, high: float) -> jax.Array:
    """Fold ``x`` back into ``[low, high]`` by mirror reflection at the bounds."""
    width = high - low
    y = jnp.mod(x - low, 2.0 * width)
    return low + jnp.where(y > width, 2.0 * width - y, y)


@functools.partial(jax.jit, static_argnames=("n_trials",))
def random_walk(
    key: jax.Array, start: ArrayLike, n_trials: int, *, sd: float, low: float, high: float
) -> jax.Array:
    """Gaussian random walk with reflecting bounds, shape ``(n_trials, *start.shape)``.

    Row 0 is ``start``; each later row adds independent ``Normal(0, sd)`` steps and reflects
    the result into ``[low, high]`` (Daw et al. 2011 use ``sd=0.025`` in ``[0.25, 0.75]``).
    """
    start = jnp.asarray(start, dtype=float)
    steps = sd * jax.random.normal(key, (n_trials - 1, *start.shape))

    def step(p, z):
        nxt = reflect(p + z, low, high)
        return nxt, nxt

    _, path = jax.lax.scan(step, start, steps)
    return jnp.concatenate([start[None], path], axis=0)


def reversal_schedule(probabilities: ArrayLike, n_trials: int, every: int) -> jax.Array:
    """Arm probabilities ``(n_trials, K)`` that reverse (arm order flipped) every ``every`` trials."""
    p = jnp.asarray(probabilities, dtype=float)
    flipped = (jnp.arange(n_trials) // every) % 2 == 1
    return jnp.where(flipped[:, None], p[::-1][None, :], p[None, :])


def bernoulli_payoffs(key: jax.Array, probabilities: ArrayLike) -> jax.Array:
    """0/1 payoffs (float), one independent draw per entry of ``probabilities``."""
    p = jnp.asarray(probabilities, dtype=float)
    return jax.random.bernoulli(key, p).astype(float)


def gaussian_payoffs(key: jax.Array, means: ArrayLike, sd: float) -> jax.Array:
    """Payoffs ``means + Normal(0, sd)`` noise, one independent draw per entry."""
    means = jnp.asarray(means, dtype=float)
    return means + sd * jax.random.normal(key, means.shape)
