"""The human ceiling: how far apart two random parts of the reference population are.

For a compared population of ``n`` members and a reference of ``N``, every split draws ``m =
min(n, N // 2)`` reference members at random (part ``A``, which plays the compared population,
so the ceiling has the same sampling noise as the comparison) and keeps the other ``N - m`` as
part ``B`` (which plays the reference). Posterior draw ``d`` uses split ``d mod n_splits``, so the
ceiling's per-draw values carry both the posterior's and the split's randomness and compare
draw by draw with the divergence (P(divergence > ceiling)).

Group level: one fit gives ``mu, sigma`` for whole populations only. Each part's ``(mu, sigma)``
at draw ``d`` is drawn instead from their posterior given the part's members' unconstrained
values at that draw (:func:`part_posterior`), which is the conditional a hierarchical fit of
that part alone samples them from (its Gibbs step for the population level), with a flat prior:
for a normal population exactly (normal-scaled-inverse-chi^2), for a Student-t one by the
normal approximation around the maximum-likelihood location and scale (:func:`location_scale`).
So the ceiling carries the same two noises as the comparison of two fitted populations: the
finite sample of members and the posterior uncertainty of ``mu`` and ``sigma`` given them. No
refit is needed; what it leaves out is how the members' own values would shift if each part
were fitted alone (their shrinkage toward the part's instead of the whole population's mean).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Splits(NamedTuple):
    """Reference member indices per split: ``a (n_splits, m)`` and ``b (n_splits, N - m)``."""

    a: np.ndarray
    b: np.ndarray


def make_splits(reference: np.ndarray, n_compared: int, n_splits: int, seed: int) -> Splits:
    """Random splits of the member indices ``reference (N,)``, the first part size-matched to
    ``n_compared`` (at most half of N)."""
    reference = np.asarray(reference)
    N = len(reference)
    m = min(int(n_compared), N // 2)
    if m < 2:
        raise ValueError(f"the ceiling splits the reference's {N} members into parts of at least 2; "
                         f"with {n_compared} compared members that leaves {m}")
    rng = np.random.default_rng(seed)
    perms = np.stack([rng.permutation(reference) for _ in range(n_splits)])
    return Splits(a=perms[:, :m], b=perms[:, m:])


def split_of_draw(n_draws: int, n_splits: int) -> np.ndarray:
    """Which split each posterior draw uses: ``d mod n_splits``, ``(n_draws,)``."""
    return np.arange(n_draws) % n_splits


def location_scale(u: jax.Array, nu: jax.Array | None = None, *, iterations: int = 30) -> tuple[jax.Array, jax.Array]:
    """Location and scale of the members ``u (n,)``: mean and sd (ddof=1) for a normal population;
    for Student-t with ``nu`` degrees of freedom the maximum-likelihood values (EM iterations of
    the weighted mean and scale, starting from the median and the normal scale)."""
    loc, scale = jnp.mean(u), jnp.std(u, ddof=1)
    if nu is None:
        return loc, scale
    tiny = jnp.finfo(u.dtype).tiny
    nu = jnp.asarray(nu, u.dtype)

    def step(_, state):
        loc, scale = state
        w = (nu + 1) / (nu + ((u - loc) / scale) ** 2)
        loc = jnp.sum(w * u) / jnp.sum(w)
        scale = jnp.sqrt(jnp.maximum(jnp.mean(w * (u - loc) ** 2), tiny))
        return loc, scale

    return jax.lax.fori_loop(0, iterations, step, (jnp.median(u), jnp.maximum(scale, tiny)))


def part_posterior(loc: np.ndarray, scale: np.ndarray, n: int, nu: np.ndarray | None,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One draw of ``(mu, sigma)`` per posterior draw given ``n`` members whose per-draw mean/sd
    (normal) or maximum-likelihood location/scale (Student-t with ``nu``) are ``loc``, ``scale``
    ``(D,)``, under the flat prior ``p(mu, log sigma) = const``.

    Normal: ``sigma^2 = (n - 1) scale^2 / chi2(n - 1)``, ``mu ~ N(loc, sigma^2 / n)``. Student-t:
    ``mu ~ N(loc, scale^2 (nu + 3) / ((nu + 1) n))``, ``log sigma ~ N(log scale, (nu + 3) / (2 nu n))``
    (the inverse Fisher information of the location and the log scale).
    """
    loc, scale = np.asarray(loc, np.float64), np.asarray(scale, np.float64)
    z, w = rng.normal(size=loc.shape), rng.normal(size=loc.shape)
    if nu is None:
        sigma = scale * np.sqrt((n - 1) / rng.chisquare(n - 1, size=loc.shape))
        return loc + sigma / np.sqrt(n) * z, sigma
    nu = np.asarray(nu, np.float64)
    mu = loc + scale * np.sqrt((nu + 3) / ((nu + 1) * n)) * z
    return mu, scale * np.exp(np.sqrt((nu + 3) / (2 * nu * n)) * w)
