"""Pieces shared by the learners' scans (bandit, two-step, RL-DDM); registers no model."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from cogfit import Record


def split_theta(theta: Record) -> tuple[dict, dict]:
    """``(fixed, varying)``: scalar fields, which the scan closes over (their gradient then
    accumulates in the loop's carry instead of being written per trial; see
    ``benchmarks/RESULTS.md``), and per-trial ``(T,)`` fields (condition-varying),
    which it scans over."""
    fixed = {k: jnp.asarray(v, dtype=float) for k, v in theta.items() if jnp.ndim(v) == 0}
    return fixed, {k: v for k, v in theta.items() if jnp.ndim(v) > 0}


def log_softmax2(l0: jax.Array, l1: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Log-probabilities of two options with logits ``l0``, ``l1``: log-sigmoids of their
    difference (accurate in float32 for any difference)."""
    d = l1 - l0
    return -jax.nn.softplus(d), -jax.nn.softplus(-d)


def chosen_logp2(l0: jax.Array, l1: jax.Array, choice: jax.Array) -> jax.Array:
    """Log-probability of ``choice`` (0/1) between two options; equals
    ``log_softmax2(l0, l1)[choice]`` with one softplus (the hot loop of a likelihood)."""
    return -jax.nn.softplus(jnp.where(choice == 1, l0 - l1, l1 - l0))
