"""The one generic hierarchical builder: plates, non-centring, vmap over subjects, masking.

For every parameter ``p`` with transform ``f``, population ``g`` and (optionally) condition
``c``::

    partial:  p[s, c] = f(mu[g(s), c] + sigma[g(s), c] * z[s, c]),  z ~ N(0, 1)   (non-centred)
              or p[s, c] = f(u[s, c]),  u ~ N(mu[g(s), c], sigma[g(s), c])   (centred, per subject)
    complete: p[s, c] = f(mu[g(s), c])              (every subject of a population shares it)
    none:     p[s, c] = f(u[s, c]),  u ~ prior      (independent subjects)

``mu ~ param.prior`` and ``sigma ~ param.sd_prior`` live on the unconstrained scale, so the
hierarchy is identical for every model. The per-subject ``loglik`` is vmapped over subjects (in
buckets of similar trial counts, :mod:`cogfit._layout`) and masked trials contribute exactly zero.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from cogfit._data import SOFT, TrialData
from cogfit._layout import MAX_BUCKETS, buckets
from cogfit._model import Model
from cogfit._record import Record

Pooling = Literal["partial", "none", "complete"]


def check_options(model: Model, data: TrialData, pooling: str, by_condition: Sequence[str]) -> None:
    if pooling not in ("partial", "none", "complete"):
        raise ValueError(f"pooling must be 'partial', 'none' or 'complete', not {pooling!r}")
    for name in by_condition:
        model.param(name)
    if by_condition and len(data.conditions) < 2:
        raise ValueError(
            f"by_condition={tuple(by_condition)} needs a 'condition' column with at least two labels"
        )


def per_trial_theta(model: Model, values: dict[str, jax.Array], condition: jax.Array,
                    by_condition: Sequence[str]) -> Record:
    """Subject parameters ``(S,)`` or ``(S, C)`` -> theta for vmap: ``(S,)`` or per trial ``(S, T)``."""
    out = {k: jnp.full(condition.shape[:1], v) for k, v in model.fixed.items()}  # (S,) for vmap
    for name, v in values.items():
        out[name] = jnp.take_along_axis(v, condition, axis=1) if name in by_condition else v
    return Record(out)


def trial_loglik(model: Model, theta: Record, fields: Record) -> jax.Array:
    """Masked per-trial log-likelihood ``(S, T)``; soft labels use the cross-entropy."""
    if SOFT in fields:
        logp = choice_logprobs(model, theta, fields)                 # (S, T, K)
        ll = jnp.sum(fields[SOFT] * logp, axis=-1)
    else:
        ll = jax.vmap(model.loglik)(theta, fields)
    return jnp.where(fields["mask"], ll, 0.0)


def choice_logprobs(model: Model, theta: Record, fields: Record) -> jax.Array:
    """Log-probability of every option at every trial ``(S, T, K)``, given the observed history.

    Uses the model's own ``choice_logprobs`` when it has one (learners, whose state depends on
    the choices actually made); otherwise evaluates ``loglik`` with each choice code, which is
    exact for models whose trials are conditionally independent.
    """
    if model.choice_logprobs is not None:
        return jax.vmap(model.choice_logprobs)(theta, fields)
    if model.stateful:
        raise ValueError(f"model {model.name!r} carries state across trials but has no choice_logprobs")

    def one(k):
        f = fields.replace(choice=jnp.full_like(fields["choice"], k))
        return jax.vmap(model.loglik)(theta, f)

    return jnp.stack([one(k) for k in range(model.n_options)], axis=-1)


def bucket_logliks(model: Model, values: dict[str, jax.Array], pieces: tuple,
                   by_condition: Sequence[str]) -> list[jax.Array]:
    """Masked per-trial log-likelihoods of every length bucket: ``[(S_b, T_b), ...]``.

    ``values`` holds each parameter for all subjects ``(S,)`` or ``(S, C)``; ``pieces`` is
    :func:`model_args`' first element.
    """
    return [trial_loglik(model, per_trial_theta(model, {k: v[idx] for k, v in values.items()}, cond, by_condition),
                         fields) for idx, fields, cond in pieces]


def model_args(data: TrialData, max_buckets: int = MAX_BUCKETS) -> tuple:
    """The arrays the NumPyro model takes: ``(pieces, population)``.

    ``pieces`` is a tuple of length buckets (see :mod:`cogfit._layout`), each
    ``(subject_index (S_b,), fields (S_b, T_b), condition (S_b, T_b))``. They are passed as
    arguments, not closed over, so the compiled program does not embed the data (fast
    compiles, small cache entries, one program for data sets of the same shape).
    """
    def piece(idx):
        T = int(data.n_trials[idx].max())
        def cut(a):
            return jnp.asarray(a[idx][:, :T])
        return jnp.asarray(idx), jax.tree.map(cut, data.fields), cut(data.condition)

    return tuple(piece(idx) for idx in buckets(data.n_trials, max_buckets)), jnp.asarray(data.population)


def build(
    model: Model,
    data: TrialData,
    *,
    pooling: Pooling = "partial",
    by_condition: Sequence[str] = (),
    centered: bool | Sequence[bool] = False,
) -> Callable[[tuple, jax.Array], None]:
    """A NumPyro model function of ``model_args(data)`` for ``model``.

    ``centered`` (one bool, or one per subject) samples ``u ~ N(mu, sigma)`` directly
    instead of the non-centred ``z``; it mixes better for subjects with many informative
    trials, the non-centred form for subjects with few. With a mix, the centred subjects'
    values are the site ``<p>_uc`` and the others' ``<p>_znc`` (subject order kept in ``<p>``).
    """
    check_options(model, data, pooling, by_condition)
    S, G, C = data.n_subjects, len(data.populations), len(data.conditions)
    cen = np.broadcast_to(np.asarray(centered, bool), (S,))
    ic, inc = np.flatnonzero(cen), np.flatnonzero(~cen)

    def numpyro_model(pieces: tuple, pop: jax.Array):
        values = {}
        for p in model.params:
            extra = (C,) if p.name in by_condition else ()
            if pooling == "none":
                u = numpyro.sample(f"{p.name}_u", p.prior.expand((S, *extra)).to_event())
            else:
                mu = numpyro.sample(f"{p.name}_mu", p.prior.expand((G, *extra)).to_event())
                numpyro.deterministic(f"{p.name}_group", p.transform.forward(mu))
                if pooling == "complete":
                    u = mu[pop]
                else:
                    sigma = numpyro.sample(f"{p.name}_sigma", p.sd_prior.expand((G, *extra)).to_event())
                    if cen.all():
                        u = numpyro.sample(f"{p.name}_u", dist.Normal(mu[pop], sigma[pop]).to_event())
                    elif not cen.any():
                        z = numpyro.sample(f"{p.name}_z", dist.Normal(0.0, 1.0).expand((S, *extra)).to_event())
                        u = mu[pop] + sigma[pop] * z
                    else:
                        pc, pn = pop[ic], pop[inc]
                        uc = numpyro.sample(f"{p.name}_uc", dist.Normal(mu[pc], sigma[pc]).to_event())
                        z = numpyro.sample(f"{p.name}_znc", dist.Normal(0.0, 1.0).expand((len(inc), *extra)).to_event())
                        u = jnp.zeros((S, *extra)).at[ic].set(uc).at[inc].set(mu[pn] + sigma[pn] * z)
            values[p.name] = numpyro.deterministic(p.name, p.transform.forward(u))
        numpyro.factor("loglik", sum(jnp.sum(ll) for ll in bucket_logliks(model, values, pieces, by_condition)))

    return numpyro_model
