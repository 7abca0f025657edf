"""RL-DDM: a bandit learner whose value difference drives a drift-diffusion decision.

On trial ``t`` the learner of :mod:`cogfit.models.bandit` holds values ``Q`` (before the
choice); the choice and response time follow the Wiener first-passage model of
:mod:`cogfit.models.ddm` with drift ``v_t = v_scale * (Q[1] - Q[0])`` (choice 1 = arm 1 = upper
boundary), boundary separation ``a``, start point ``z`` (fixed at 0.5 unless estimated) and
non-decision time ``t`` (seconds), with the DDM family's 2% contaminant mixture so responses
faster than ``t`` do not veto a parameter value. The learner then updates on ``reward`` exactly
as the bandit models do (masked trials neither count nor update it).

Models: ``rlddm`` (alpha, v_scale, a, t), ``rlddm_dual`` (alpha_pos, alpha_neg, v_scale, a, t),
``rlddm_dual_bias`` (+ z). Data columns: ``choice`` (0/1), ``rt`` (seconds), ``reward``.
Simulation reads ``payoff_1, payoff_2`` as the bandit models do and returns ``choice``, ``rt``
and ``reward``. ``choice_logprobs`` gives the closed-form boundary probabilities of the diffusion (RTs
marginalised, no contaminant), for choice-only soft labels.

References
----------
Pedersen, Frank & Biele (2017) Psychon Bull Rev 24:1234. Fontanesi, Gluth, Spektor &
Rieskamp (2019) Psychon Bull Rev 26:1099.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro.distributions as dist

from cogfit import Model, Param, Positive, Record, wiener
from cogfit.models import bandit, ddm, register
from cogfit.models._learner import split_theta

CFG = bandit.Config(n_arms=2)
V_SCALE = Param("v_scale", Positive(), dist.Normal(1.0, 1.0),
                "drift per unit of value difference (1/s per reward unit)")
DDM_PARAMS = {name: ddm.ddm.param(name) for name in ("a", "z", "t")}  # the DDM family's priors


def drift(theta: Record, trials: Record) -> jax.Array:
    """Per-trial drift ``(T,)``: ``v_scale * (Q[1] - Q[0])`` along the observed history."""
    q = bandit.values(CFG, theta, trials)
    return theta["v_scale"] * (q[:, 1] - q[:, 0])


def _ddm_theta(theta: Record, v: jax.Array) -> Record:
    return Record({**theta, "v": v, "z": theta.get("z", 0.5)})


def loglik(theta: Record, trials: Record) -> jax.Array:
    """Log joint density of each trial's choice and response time ``(T,)`` (log 1/seconds)."""
    return ddm.rt_loglik(_ddm_theta(theta, drift(theta, trials)), trials)


def choice_logprobs(theta: Record, trials: Record) -> jax.Array:
    """Log-probabilities ``(T, 2)`` of choosing arm 0 (lower) and arm 1 (upper), RTs marginalised."""
    v = drift(theta, trials)
    z = theta.get("z", 0.5)
    return jnp.stack([wiener.wiener_log_prob(k, v, theta["a"], z) for k in (0, 1)], axis=-1)


def simulate(key: jax.Array, theta: Record, trials: Record) -> dict[str, jax.Array]:
    """Play the payoff schedule ``trials.payoff`` ``(T, 2)``: ``choice``, ``rt`` and ``reward``."""
    n = trials["payoff"].shape[0]
    mask = trials["mask"] if "mask" in trials else jnp.ones(n, bool)
    fixed, varying = split_theta(theta)

    def step(state, x):
        k, per_trial, pay, m = x
        th = Record({**fixed, **per_trial})
        v = th["v_scale"] * (state.q[1] - state.q[0])
        out = ddm.rt_simulate(k, _ddm_theta(th, v), Record(mask=jnp.ones((), bool)))
        c = out["choice"].astype(jnp.int32)
        r = pay[c]
        nxt = bandit.learn(CFG, th, state, c, r)
        return jax.tree.map(lambda a, o: jnp.where(m, a, o), nxt, state), (c, out["rt"], r)

    xs = (jax.random.split(key, n), varying, trials["payoff"], mask)
    choice, rt, reward = jax.lax.scan(step, bandit.initial_state(CFG, trials), xs)[1]
    return {"choice": choice, "rt": rt, "reward": reward}


def rlddm(name: str, params: tuple[str, ...], doc: str) -> Model:
    """An RL-DDM with learner parameters from :data:`bandit.PARAMS` plus ``v_scale``, a, z, t."""
    table = {**bandit.PARAMS, "v_scale": V_SCALE, **DDM_PARAMS}
    return Model(
        name,
        tuple(table[p] for p in params),
        loglik=loglik,
        simulate=simulate,
        requires=("reward",),
        outcomes=("reward",),
        design_requires=("payoff",),
        n_options=2,
        rt=True,
        design=lambda key, n_trials: bandit.design(CFG, key, n_trials),
        choice_logprobs=choice_logprobs,
        stateful=True,
        doc=f"{doc}\n\n{__doc__}",
    )


register(rlddm("rlddm", ("alpha", "v_scale", "a", "t"), "RL-DDM, one learning rate."))
register(rlddm("rlddm_dual", ("alpha_pos", "alpha_neg", "v_scale", "a", "t"),
               "RL-DDM, learning rates for positive and negative prediction errors."))
register(rlddm("rlddm_dual_bias", ("alpha_pos", "alpha_neg", "v_scale", "a", "z", "t"),
               "RL-DDM with dual learning rates and a start-point bias z."))
