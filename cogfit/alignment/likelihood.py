"""The likelihood view beside the divergences: how well each population's *parameters* predict
the reference's (human) choices, the parameter-level counterpart of Psych-201's NLL.

For reference member ``i`` with data ``y_i`` and population ``g``, the log predictive density of
``y_i`` under ``g``'s distribution of a new member (the posterior mixture over draws ``d`` of
``mu_g^d + sigma_g^d t`` on the unconstrained scale, :mod:`cogfit.alignment.populations`)::

    log p(y_i | g) = log  integral p(y_i | theta) pbar_g(theta) dtheta

estimated by multiple importance sampling with the balance heuristic: half the samples from
``pbar_g`` itself, half from a normal fitted to member ``i``'s own posterior draws (diagonal, sd
x 1.5), weights ``p(y_i | theta) pbar_g(theta) / q(theta)`` with ``q`` the equal mixture of the two
(bounded by twice the likelihood, so a population far from ``i`` gives a small, stable value).

The reference predicting its own members would be in-sample, so its value is cross-validated:
the reference is split into two random halves, and each half's members are predicted by the
other half's population distribution, drawn per draw from the posterior of ``(mu, sigma)``
given that half's members (:func:`~cogfit.alignment.ceiling.part_posterior`).
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.scipy.special import logsumexp

from cogfit._hierarchy import trial_loglik
from cogfit._record import Record
from cogfit.alignment.ceiling import location_scale, part_posterior
from cogfit.alignment.divergences import log_p0
from cogfit.alignment.populations import population_draws


def _log_pbar(u, mu, sigma, nu):
    """log of the mixture over draws of the population density at ``u (K, P)``; ``mu, sigma
    (D, P)``, ``nu (D, P)`` or None -> ``(K,)``."""
    z = (u[:, None, :] - mu[None]) / sigma[None]                              # (K, D, P)
    lp = log_p0(z, None if nu is None else nu[None]) - jnp.log(sigma[None])
    return logsumexp(jnp.sum(lp, -1), axis=1) - jnp.log(mu.shape[0])


def _log_q(u, m, s):
    return jnp.sum(log_p0((u - m) / s) - jnp.log(s), -1)


def _subject_elpd(key, loglik, m, s, mu, sigma, nu, K):
    """``log p(y | population)`` of one member: ``loglik(u (K, P)) -> (K,)``, ``m, s (P,)`` its
    own posterior's mean and sd (unconstrained)."""
    k1, k2, k3 = jax.random.split(key, 3)
    half = K // 2
    d = jax.random.randint(k1, (half,), 0, mu.shape[0])
    t = jax.random.normal(k2, (half, mu.shape[1])) if nu is None else jax.random.t(k2, nu[d], (half, mu.shape[1]))
    u = jnp.concatenate([mu[d] + sigma[d] * t, m + s * jax.random.normal(k3, (K - half, m.shape[0]))])
    lpbar = _log_pbar(u, mu, sigma, nu)
    lq = jnp.logaddexp(lpbar, _log_q(u, m, s)) - jnp.log(2.0)
    return logsumexp(loglik(u) + lpbar - lq) - jnp.log(K)


def member_elpd(fit, reference: str = "human", *, draws: int = 200, samples: int = 256,
                seed: int = 0) -> dict[str, np.ndarray]:
    """``population -> log p(y_i | population)`` ``(R,)`` for the reference's ``R`` members (data
    order), nats; the reference's own values cross-validated by halves. See :func:`predictive`."""
    if fit.meta.get("by_condition"):
        raise ValueError("the likelihood view needs parameters without a condition dim (by_condition=())")
    order = list(fit.data.populations)
    if reference not in order:
        raise ValueError(f"reference {reference!r} is not a population of the fit; populations are {order}")
    model, data = fit.model, fit.data
    pds = population_draws(fit)
    if len(pds) != len(model.params):
        raise ValueError(f"the likelihood view draws every parameter of a new member from its population: it needs "
                         f"partial pooling of all of {model.param_names}, not only of {[p.param for p in pds]}")
    D = pds[0].mu.shape[0]
    pick = np.unique(np.linspace(0, D - 1, min(draws, D)).astype(int))
    mu = np.stack([p.mu[pick] for p in pds], -1)                            # (D', G, P)
    sigma = np.stack([p.sigma[pick] for p in pds], -1)
    nu = None if pds[0].nu is None else np.stack([p.nu[pick] for p in pds], -1)     # (D', P)
    members = np.stack([p.members for p in pds], -1)                        # (D, S, P)
    ref = np.flatnonzero(np.asarray(data.population) == order.index(reference))
    m, s = members[:, ref].mean(0), 1.5 * members[:, ref].std(0) + 1e-6      # (R, P)
    fields = data.fields
    sub = Record({k: jnp.asarray(np.asarray(v)[ref]) for k, v in fields.items()})    # (R, T, ...)
    fixed = {k: jnp.asarray(v) for k, v in model.fixed.items()}

    def loglik_of(one):
        def ll(u):                                                           # (K, P) -> (K,)
            theta = Record({**{k: jnp.full(u.shape[:1], v) for k, v in fixed.items()},
                            **{p.param: p.transform.forward(u[:, j]) for j, p in enumerate(pds)}})
            trials = Record({k: jnp.broadcast_to(v, (u.shape[0],) + v.shape) for k, v in one.items()})
            return jnp.sum(trial_loglik(model, theta, trials), -1)
        return ll

    @jax.jit
    def per_member(keys, one_fields, m, s, mu, sigma, nu):
        return jax.vmap(lambda k, f, mi, si: _subject_elpd(k, loglik_of(f), mi, si, mu, sigma, nu, samples))(
            keys, one_fields, m, s)

    rng = np.random.default_rng(seed)
    key = jax.random.PRNGKey(seed)
    dtype = mu.dtype
    values = {}
    args = dict(one_fields=sub, m=jnp.asarray(m, dtype), s=jnp.asarray(s, dtype))
    nu_j = None if nu is None else jnp.asarray(nu)
    for g, pop in enumerate(order):
        key, k = jax.random.split(key)
        keys = jax.random.split(k, len(ref))
        if pop != reference:
            values[pop] = np.asarray(per_member(keys, mu=jnp.asarray(mu[:, g]), sigma=jnp.asarray(sigma[:, g]),
                                                nu=nu_j, **args))
            continue
        perm = rng.permutation(len(ref))                                     # cross-validated by halves
        out = np.empty(len(ref))
        halves = perm[: len(ref) // 2], perm[len(ref) // 2:]
        for held, other in (halves, halves[::-1]):
            part_mu, part_sigma = [], []
            for j, p in enumerate(pds):
                u = members[pick][:, ref[other], j]
                pnu = None if p.nu is None else p.nu[pick]
                extra = () if pnu is None else (jnp.asarray(pnu),)
                loc, scale = jax.vmap(location_scale)(jnp.asarray(u), *extra)
                a, b = part_posterior(np.asarray(loc), np.asarray(scale), len(other), pnu, rng)
                part_mu.append(a)
                part_sigma.append(b)
            sel = {k: v[held] for k, v in args.items() if k != "one_fields"}
            out[held] = np.asarray(per_member(keys[held], Record({k: v[held] for k, v in sub.items()}),
                                              mu=jnp.asarray(np.stack(part_mu, -1), dtype),
                                              sigma=jnp.asarray(np.stack(part_sigma, -1), dtype), nu=nu_j, **sel))
        values[pop] = out
    return values


def predictive(fit, reference: str = "human", *, draws: int = 200, samples: int = 256, seed: int = 0,
               scores: Mapping[str, pd.DataFrame] | None = None, base: str | None = None) -> pd.DataFrame:
    """Per population, the mean log predictive density of the reference's members' data
    (:mod:`cogfit.alignment.likelihood`); the reference's own row is cross-validated by halves.

    Returns a table with ``population``, ``elpd`` (mean over reference members of ``log p(y_i |
    population)``, nats), ``elpd_per_trial``, ``diff`` (``elpd`` minus the reference's), ``diff_se``
    (paired standard error over members), ``members`` (reference members predicted).
    ``draws`` posterior draws (evenly thinned) form each population's mixture; ``samples``
    importance samples per member and population.

    ``scores`` (population -> :func:`cogfit.llm.score_transcripts` of that LLM on the reference's
    transcripts) adds Psych-201's view in the same table: ``nll`` (mean NLL per human response,
    nats) and, with ``base`` (one of the scored populations, e.g. the base model of a
    post-trained one), ``cohens_d`` (:func:`cogfit.llm.cohens_d` of each against ``base``).
    """
    unknown = sorted(set(scores or {}) - set(fit.data.populations))
    if unknown:
        raise ValueError(f"scores name populations not in the fit: {unknown}; populations are "
                         f"{list(fit.data.populations)}")
    if base is not None and base not in (scores or {}):
        raise ValueError(f"base {base!r} must be one of the scored populations {sorted(scores or {})}")
    values = member_elpd(fit, reference, draws=draws, samples=samples, seed=seed)
    ref = np.flatnonzero(np.asarray(fit.data.population) == list(fit.data.populations).index(reference))
    n_trials = np.asarray(fit.data.mask)[ref].sum(1)
    own = values[reference]
    rows = []
    for pop, v in values.items():
        diff = v - own
        rows.append(dict(population=pop, elpd=float(v.mean()), elpd_per_trial=float(v.sum() / n_trials.sum()),
                         diff=float(diff.mean()), diff_se=float(diff.std(ddof=1) / np.sqrt(len(v))),
                         members=len(v)))
    table = pd.DataFrame(rows)
    if scores:
        table["nll"] = [float(scores[p]["nll"].mean()) if p in scores else np.nan for p in table["population"]]
        if base is not None:
            from cogfit.llm import cohens_d

            table["cohens_d"] = [cohens_d(scores[base], scores[p]).d if p in scores else np.nan
                                 for p in table["population"]]
    return table
