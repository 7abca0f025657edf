"""Two-step task (Daw et al. 2011): hybrid model-based / model-free learner.

Trial ``t``: stage-1 action ``a`` (0/1) leads to state ``s`` (0/1; ``a -> a`` is the common
transition, probability ``common``), stage-2 action ``a2`` (0/1) earns ``reward`` (0/1).

* ``Q_MB(a) = P(s=0|a) max Q2[0] + P(s=1|a) max Q2[1]``
* ``P(a) ∝ exp(beta1 [w Q_MB(a) + (1 - w) Q_MF(a) + p rep(a)])``, ``rep(a) = 1`` if ``a`` was
  the previous stage-1 choice (Daw et al. 2011, eq. 2: ``p`` inside ``beta1``)
* ``P(a2 | s) ∝ exp(beta2 Q2[s, a2])``
* ``d1 = Q2[s, a2] - Q_MF(a)``, ``d2 = reward - Q2[s, a2]`` (both before any update);
  ``Q_MF(a) += alpha1 (d1 + lam d2)``, ``Q2[s, a2] += alpha2 d2``. All values start at 0.

Models: ``twostep_hybrid`` (7 parameters), ``twostep_hybrid6`` (``lam = 1``) and
``twostep_hybrid4`` (``alpha``, ``beta``, ``w``, ``p``: one learning rate and one inverse
temperature for both stages, ``lam = 1``). hBayesDM's ``ts_par7`` is this learner
reparameterised: its eligibility term uses the stage-2 value *after* its update, so
``lam = lambda_hB (1 - a2)`` exactly, and its perseveration sits outside ``beta1``
(``pi = beta1 p``). Its ``ts_par6``/``ts_par4`` fix ``lambda_hB = 1``, i.e. ``lam = 1 - alpha2``
here, not ``lam = 1``; fit ``twostep_hybrid`` and transform to compare.

Data columns: ``choice`` (stage-1 action), ``state2``, ``choice2``, ``reward``. Simulation reads
``common`` (1 if trial ``t``'s transition is common) and ``payoff_1..payoff_4`` (what
(state, action) = (0,0), (0,1), (1,0), (1,1) would pay), as exported by
:meth:`cogfit.tasks.TwoStep.design`, and returns all four data columns.
``choice_logprobs`` gives stage-1 probabilities only (soft labels are for the first stage).

References
----------
Daw, Gershman, Seymour, Dayan & Dolan (2011) Neuron 69:1204. Ahn, Haines & Zhang (2017)
Computational Psychiatry 1:24 (hBayesDM).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpyro.distributions as dist

from cogfit import Interval, Model, Param, Positive, Real, Record
from cogfit.models import register
from cogfit.tasks import _schedules as sched

RATE = dict(transform=Interval(0.0, 1.0), prior=dist.Normal(0.0, 1.5))
TEMP = dict(transform=Positive(), prior=dist.Normal(1.0, 1.0))
PARAMS = {
    "alpha1": Param("alpha1", doc="stage-1 learning rate (0..1)", **RATE),
    "alpha2": Param("alpha2", doc="stage-2 learning rate (0..1)", **RATE),
    "alpha": Param("alpha", doc="learning rate of both stages (0..1)", **RATE),
    "lam": Param("lam", doc="eligibility trace (0..1)", **RATE),
    "beta1": Param("beta1", doc="stage-1 inverse temperature (1/reward)", **TEMP),
    "beta2": Param("beta2", doc="stage-2 inverse temperature (1/reward)", **TEMP),
    "beta": Param("beta", doc="inverse temperature of both stages (1/reward)", **TEMP),
    "w": Param("w", Interval(0.0, 1.0), dist.Normal(0.0, 1.5), "model-based weight (0..1)"),
    "p": Param("p", Real(), dist.Normal(0.0, 1.0), "stage-1 perseveration (reward units)"),
}


class State(NamedTuple):
    """Model-free stage-1 values ``q1`` (2,), stage-2 values ``q2`` (2, 2), last choice one-hot."""

    q1: jax.Array
    q2: jax.Array
    last: jax.Array


def _get(th: Record, name: str, shared: str) -> jax.Array:
    return th[name] if name in th else th[shared]


def stage1_logp(common: float, th: Record, st: State) -> jax.Array:
    """Log-probabilities of the two stage-1 actions ``(2,)``."""
    best = jnp.max(st.q2, axis=1)  # (state,)
    q_mb = jnp.stack(
        [common * best[0] + (1 - common) * best[1], (1 - common) * best[0] + common * best[1]]
    )
    q_net = th["w"] * q_mb + (1 - th["w"]) * st.q1 + th["p"] * st.last
    return jax.nn.log_softmax(_get(th, "beta1", "beta") * q_net)


def stage2_logp(th: Record, st: State, state2) -> jax.Array:
    """Log-probabilities of the two stage-2 actions in ``state2`` ``(2,)``."""
    return jax.nn.log_softmax(_get(th, "beta2", "beta") * st.q2[state2])


def learn(th: Record, st: State, a1, s, a2, reward) -> State:
    """State after a full trial (Daw et al. 2011 SARSA(lambda) updates)."""
    a1_hot = jnp.arange(2) == a1
    q2_sa = st.q2[s, a2]
    d1 = q2_sa - st.q1[a1]
    d2 = reward - q2_sa
    alpha1, alpha2 = _get(th, "alpha1", "alpha"), _get(th, "alpha2", "alpha")
    q1 = st.q1 + jnp.where(a1_hot, alpha1 * (d1 + th["lam"] * d2), 0.0)
    sa_hot = (jnp.arange(2)[:, None] == s) & (jnp.arange(2)[None, :] == a2)
    q2 = st.q2 + jnp.where(sa_hot, alpha2 * d2, 0.0)
    return State(q1, q2, a1_hot.astype(float))


def _start() -> State:
    return State(jnp.zeros(2), jnp.zeros((2, 2)), jnp.zeros(2))


def _per_trial(theta: Record, n: int) -> Record:
    return Record({k: jnp.broadcast_to(jnp.asarray(v, dtype=float), (n,)) for k, v in theta.items()})


def _scan_observed(common: float, theta: Record, trials: Record):
    """Stage-1 and stage-2 log-probability arrays ``(T, 2)`` along the observed history."""
    n = trials["choice"].shape[0]
    mask = trials["mask"] if "mask" in trials else jnp.ones(n, bool)
    ints = [jnp.asarray(trials[k]).astype(jnp.int32) for k in ("choice", "state2", "choice2")]

    def step(st, x):
        th, a1, s, a2, r, m = x
        lp1, lp2 = stage1_logp(common, th, st), stage2_logp(th, st, s)
        nxt = learn(th, st, a1, s, a2, r)
        return jax.tree.map(lambda a, o: jnp.where(m, a, o), nxt, st), (lp1, lp2)

    xs = (_per_trial(theta, n), *ints, trials["reward"], mask)
    return jax.lax.scan(step, _start(), xs)[1]


def loglik(common: float, theta: Record, trials: Record) -> jax.Array:
    """Log-probability of both observed choices of each trial ``(T,)``."""
    lp1, lp2 = _scan_observed(common, theta, trials)
    def pick(lp, k):  # one-hot sum rather than a gather: no scatter-add in the gradient
        return jnp.sum(jnp.where(jnp.arange(2) == trials[k][:, None], lp, 0.0), axis=1)

    return pick(lp1, "choice") + pick(lp2, "choice2")


def simulate(common: float, key: jax.Array, theta: Record, trials: Record) -> dict[str, jax.Array]:
    """Play the world in ``trials.common`` (T,) and ``trials.payoff`` (T, 4)."""
    n = trials["payoff"].shape[0]
    mask = trials["mask"] if "mask" in trials else jnp.ones(n, bool)

    def step(st, x):
        k, th, is_common, pay, m = x
        k1, k2 = jax.random.split(k)
        a1 = jax.random.categorical(k1, stage1_logp(common, th, st))
        s = jnp.where(is_common > 0.5, a1, 1 - a1)
        a2 = jax.random.categorical(k2, stage2_logp(th, st, s))
        r = pay[2 * s + a2]
        nxt = learn(th, st, a1, s, a2, r)
        return jax.tree.map(lambda a, o: jnp.where(m, a, o), nxt, st), (a1, s, a2, r)

    xs = (jax.random.split(key, n), _per_trial(theta, n), trials["common"], trials["payoff"], mask)
    a1, s, a2, r = jax.lax.scan(step, _start(), xs)[1]
    return {"choice": a1.astype(jnp.int32), "state2": s.astype(jnp.int32), "choice2": a2.astype(jnp.int32),
            "reward": r}


def design(common: float, key: jax.Array, n_trials: int) -> dict[str, jax.Array]:
    """Transitions and drifting 0/1 payoffs as in :class:`cogfit.tasks.TwoStep`."""
    k_tr, k_start, k_walk, k_pay = jax.random.split(key, 4)
    start = jax.random.uniform(k_start, (4,), minval=0.25, maxval=0.75)
    p = sched.random_walk(k_walk, start, n_trials, sd=0.025, low=0.25, high=0.75)
    return {
        "common": jax.random.bernoulli(k_tr, common, (n_trials,)).astype(float),
        "payoff": sched.bernoulli_payoffs(k_pay, p),
    }


def twostep(name: str, params: tuple[str, ...], *, common: float = 0.7, fixed=None) -> Model:
    """A hybrid two-step learner with ``params`` (names from ``PARAMS``) and constants ``fixed``."""
    if not 0.0 <= common <= 1.0:
        raise ValueError(f"twostep {name!r}: common transition probability must be in [0, 1]")
    return Model(
        name,
        tuple(PARAMS[p] for p in params),
        loglik=lambda theta, trials: loglik(common, theta, trials),
        simulate=lambda key, theta, trials: simulate(common, key, theta, trials),
        requires=("state2", "choice2", "reward"),
        outcomes=("state2", "choice2", "reward"),
        design_requires=("common", "payoff"),
        n_options=2,
        design=lambda key, n_trials: design(common, key, n_trials),
        fixed=dict(fixed or {}),
        choice_logprobs=lambda theta, trials: _scan_observed(common, theta, trials)[0],
        stateful=True,
        doc=__doc__,
    )


hybrid = register(twostep("twostep_hybrid", ("alpha1", "alpha2", "lam", "beta1", "beta2", "w", "p")))
register(hybrid.variant("twostep_hybrid6", fix={"lam": 1.0}))
register(twostep("twostep_hybrid4", ("alpha", "beta", "w", "p"), fixed={"lam": 1.0}))
