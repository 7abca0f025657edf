"""Find subjects with a second posterior mode, and the mode-jump move between their modes.

``fit(..., jumps="auto")`` needs, for each subject whose posterior has two separated modes, the
displacement from one to the other (:mod:`cogfit.inference.jump`). Given population estimates (``mu``,
``sigma`` and ``nu`` averaged over the last NUTS warm-up draws), each subject's values are
maximised alone under its population as the prior, on the unconstrained scale, from
``1 + 2P + n_random`` starts: the
population centre, the centre moved by ``-+2 sigma`` along each parameter, and draws from the
population. All subjects and starts are optimised at once (damped Newton: Levenberg-Marquardt
with the exact Hessian of each subject's ``P`` values, a fixed number of iterations, one
compiled program). A subject gets a move when, besides its best optimum, it has a converged
optimum that is distinct (more than one population sigma away on some parameter), separated
from the best by a valley (the log density at one of three points between them is lower than at both
by ``BARRIER`` nats) and within ``gap`` nats of it.

Why not per-subject BFGS: a ``lax.while_loop`` vmapped over subjects runs every subject to the
slowest one's iteration count, and scipy's BFGS needs one compile per subject length; the
fixed-iteration Newton here costs ``iters * (P + 2)`` passes over all subjects' trials (starts
in chunks of at most ``LANE_TRIALS`` subject-trials per call, to bound memory).
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from numpyro.distributions.transforms import biject_to

from cogfit._data import TrialData
from cogfit._hierarchy import NU_PRIOR, bucket_logliks, model_args
from cogfit._model import Model

BARRIER = 0.5            # nats: the valley between two optima that makes them separate modes
LANE_TRIALS = 8_000_000  # (subject, start) lanes x trials per compiled call: ~2 GB of memory
CONVERGED = 5e-2         # largest |gradient| (nats per unconstrained unit) of an optimum


def population_means(model: Model, loc: Mapping[str, jax.Array], population: str,
                          nu: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(mu (G, P), sigma (G, P), nu (P,) or None)`` from per-site means on the unconstrained scale.

    ``loc`` holds the partial-pooling model's sites (``<p>_mu``; ``<p>_sigma`` and ``<p>_nu`` on
    their unconstraining transform's scale, so a mean there is a geometric mean), e.g. averaged
    over NUTS draws; ``nu`` is ``None`` for a normal population, the fixed degrees of freedom, or
    fitted (from ``<p>_nu``).
    """
    mu = np.stack([np.asarray(loc[f"{p.name}_mu"]) for p in model.params], axis=-1)
    sigma = np.stack([np.asarray(biject_to(p.sd_prior.support)(loc[f"{p.name}_sigma"])) for p in model.params],
                     axis=-1)
    df = None
    if population == "student_t":
        df = (np.full(len(model.params), float(nu)) if nu is not None else
              np.array([float(biject_to(NU_PRIOR.support)(loc[f"{p.name}_nu"])) for p in model.params]))
    return mu, sigma, df


def find_jumps(model: Model, data: TrialData, mu: np.ndarray, sigma: np.ndarray, nu: np.ndarray | None = None, *,
               key: jax.Array, gap: float = 8.0, n_random: int = 8,
               iters: int = 60) -> dict[object, dict[str, float]]:
    """``{subject: {parameter: d}}`` for subjects with two separated modes under their population.

    ``mu`` and ``sigma`` ``(G, P)`` are each population's centre and spread of subjects on the
    unconstrained scale (``model.params`` order); ``nu`` ``(P,)`` Student-t degrees of freedom,
    or ``None`` for a normal population. ``d`` is the second mode minus the best one on the
    unconstrained scale (every parameter), the input :func:`cogfit.fit`'s ``jumps`` takes.
    """
    pop = np.asarray(data.population)
    S, P = data.n_subjects, len(model.params)
    centre, spread = mu[pop], sigma[pop]                                        # (S, P)
    axis = np.concatenate([np.eye(P) * -2.0, np.eye(P) * 2.0])                  # (2P, P)
    draws = np.asarray(jax.random.normal(key, (n_random, S, P)))
    x0 = np.concatenate([centre[None], centre[None] + axis[:, None, :] * spread[None],
                         centre[None] + draws * spread[None]])                  # (K, S, P)
    x0 = jnp.asarray(np.moveaxis(x0, 0, 1), dtype=jnp.result_type(float))     # (S, K, P)

    potential = _potential(model, data, jnp.asarray(centre), jnp.asarray(spread),
                           None if nu is None else jnp.asarray(nu))
    solve = _newton(potential, iters)
    chunk = max(1, LANE_TRIALS // max(1, int(data.n_trials.sum())))          # starts per call
    parts = [solve(x0[:, k:k + chunk]) for k in range(0, x0.shape[1], chunk)]
    x, f, g = (np.concatenate([np.asarray(part[i]) for part in parts], axis=1) for i in range(3))

    # the valley test: the log density at 3 points on the segment between each pair (best, other)
    best = np.argmin(np.where(np.isfinite(f), f, np.inf), axis=1)               # (S,)
    xb = x[np.arange(S), best]                                                  # (S, P)
    ts = jnp.asarray([0.25, 0.5, 0.75], dtype=x0.dtype)
    between = jax.vmap(lambda t: potential(xb[:, None, :] + t * (x - xb[:, None, :])))(ts)   # (3, S, K)
    valley = np.asarray(between).max(axis=0)

    out = {}
    for s in range(S):
        ok = (np.isfinite(f[s]) & (np.abs(g[s]).max(axis=-1) < CONVERGED)
              & (np.max(np.abs(x[s] - xb[s]) / spread[s], axis=-1) > 1.0)
              & (valley[s] > np.maximum(f[s], f[s, best[s]]) + BARRIER)
              & (f[s] - f[s, best[s]] < gap))
        if ok.any():
            k = np.flatnonzero(ok)[np.argmin(f[s][ok])]
            out[data.subjects[s]] = {p.name: float(x[s, k, j] - xb[s, j]) for j, p in enumerate(model.params)}
    return out


def _potential(model: Model, data: TrialData, centre: jax.Array, spread: jax.Array, nu: jax.Array | None):
    """``x (S, K, P) -> (S, K)``: minus the log density of each subject's values ``x`` (``K``
    candidates each) given its own trials and its population."""
    pieces, _ = model_args(data)
    S = data.n_subjects

    def one(x):                                                                 # x (S, P) -> (S,)
        values = {p.name: p.transform.forward(x[:, j]) for j, p in enumerate(model.params)}
        ll = jnp.zeros(S, x.dtype)
        for (idx, _, _), piece in zip(pieces, bucket_logliks(model, values, pieces, ())):
            ll = ll.at[idx].add(jnp.sum(piece, axis=1))
        if nu is None:
            prior = dist.Normal(centre, spread).log_prob(x)
        else:
            prior = dist.StudentT(nu, centre, spread).log_prob(x)
        return -(ll + jnp.sum(prior, axis=-1))

    return jax.jit(lambda x: jax.vmap(one, in_axes=1, out_axes=1)(x))


def _newton(potential, iters: int):
    """``x0 (S, K, P) -> (x, f, gradient)``: Levenberg-Marquardt on every ``(subject, start)``
    at once, ``iters`` steps. A step solves ``(H + lam I) dx = -g`` with each lane's exact
    ``(P, P)`` Hessian; it is kept if it lowers the lane's potential (then ``lam / 3``), else
    ``lam * 4``."""
    grad = jax.grad(lambda x: jnp.sum(potential(x)))           # lanes are independent: per-lane gradients

    def hessian(x):                                            # (S, K, P, P), column j by a jvp along e_j
        eye = jnp.eye(x.shape[-1], dtype=x.dtype)
        cols = jax.vmap(lambda e: jax.jvp(grad, (x,), (jnp.broadcast_to(e, x.shape),))[1])(eye)
        return jnp.moveaxis(cols, 0, -1)

    def step(carry, _):
        x, f, lam = carry
        g, h = grad(x), hessian(x)
        h = 0.5 * (h + jnp.swapaxes(h, -1, -2))
        dx = jnp.linalg.solve(h + lam[..., None, None] * jnp.eye(x.shape[-1], dtype=x.dtype), -g[..., None])[..., 0]
        x_new = x + dx
        f_new = potential(x_new)
        better = jnp.isfinite(f_new) & (f_new < f)
        x = jnp.where(better[..., None], x_new, x)
        f = jnp.where(better, f_new, f)
        lam = jnp.clip(jnp.where(better, lam / 3.0, lam * 4.0), 1e-6, 1e8)
        return (x, f, lam), None

    @jax.jit
    def run(x0):
        f0 = potential(x0)
        (x, f, _), _ = jax.lax.scan(step, (x0, f0, jnp.ones_like(f0)), None, length=iters)
        return x, f, grad(x)

    return run
