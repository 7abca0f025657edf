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
from cogfit.models._learner import chosen_logp2, log_softmax2, split_theta
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
    """Carry of the scan, one scalar per value (as in :class:`~cogfit.models.bandit.LearnerState`:
    XLA on a CPU runs scalar arithmetic much faster than small arrays; see
    ``benchmarks/RESULTS.md``, cost of a log-likelihood).

    ``q1``: model-free stage-1 values (2); ``q2``: stage-2 values of (state, action) = (0, 0),
    (0, 1), (1, 0), (1, 1) (4); ``last``: the previous stage-1 choice, one-hot (2).
    """

    q1: tuple[jax.Array, jax.Array]
    q2: tuple[jax.Array, jax.Array, jax.Array, jax.Array]
    last: tuple[jax.Array, jax.Array]


def _get(th: Record | dict, name: str, shared: str) -> jax.Array:
    return th[name] if name in th else th[shared]


def stage1_logits(common: float, th: Record | dict, st: State) -> tuple[jax.Array, jax.Array]:
    """``beta1 (w Q_MB + (1 - w) Q_MF + p rep)`` of the two stage-1 actions."""
    best0, best1 = jnp.maximum(st.q2[0], st.q2[1]), jnp.maximum(st.q2[2], st.q2[3])
    q_mb = (common * best0 + (1 - common) * best1, (1 - common) * best0 + common * best1)
    beta, w = _get(th, "beta1", "beta"), th["w"]
    return tuple(beta * (w * mb + (1 - w) * mf + th["p"] * rep) for mb, mf, rep in zip(q_mb, st.q1, st.last))


def stage2_logits(th: Record | dict, st: State, state2) -> tuple[jax.Array, jax.Array]:
    """``beta2 Q2[state2, a2]`` of the two stage-2 actions."""
    beta = _get(th, "beta2", "beta")
    return tuple(beta * jnp.where(state2 == 0, st.q2[a], st.q2[2 + a]) for a in (0, 1))


def learn(th: Record | dict, st: State, a1, s, a2, reward) -> State:
    """State after a full trial (Daw et al. 2011 SARSA(lambda) updates)."""
    hit = [(s == i // 2) & (a2 == i % 2) for i in range(4)]
    q2_sa = sum(jnp.where(h, v, 0.0) for h, v in zip(hit, st.q2))
    d1 = q2_sa - jnp.where(a1 == 0, st.q1[0], st.q1[1])
    d2 = reward - q2_sa
    up1 = _get(th, "alpha1", "alpha") * (d1 + th["lam"] * d2)
    up2 = _get(th, "alpha2", "alpha") * d2
    return State(tuple(jnp.where(a1 == k, v + up1, v) for k, v in enumerate(st.q1)),
                 tuple(jnp.where(h, v + up2, v) for h, v in zip(hit, st.q2)),
                 tuple((a1 == k).astype(v.dtype) for k, v in enumerate(st.last)))


def _start() -> State:
    zero = jnp.zeros(())
    return State((zero,) * 2, (zero,) * 4, (zero,) * 2)


def _scan_observed(common: float, theta: Record, trials: Record, out: str) -> jax.Array:
    """Along the observed history, per trial: ``"loglik"`` (log-probability of both observed
    choices, ``(T,)``) or ``"logp1"`` (of each stage-1 action, ``(T, 2)``)."""
    n = trials["choice"].shape[0]
    mask = trials["mask"] if "mask" in trials else jnp.ones(n, bool)
    ints = [jnp.asarray(trials[k]).astype(jnp.int32) for k in ("choice", "state2", "choice2")]
    fixed, varying = split_theta(theta)

    def step(st, x):
        v, a1, s, a2, r, m = x
        th = {**fixed, **v}
        logits1 = stage1_logits(common, th, st)
        if out == "loglik":
            y = chosen_logp2(*logits1, a1) + chosen_logp2(*stage2_logits(th, st, s), a2)
        else:
            y = jnp.stack(log_softmax2(*logits1))
        nxt = learn(th, st, a1, s, a2, r)
        return jax.tree.map(lambda a, o: jnp.where(m, a, o), nxt, st), y

    return jax.lax.scan(step, _start(), (varying, *ints, trials["reward"], mask))[1]


def loglik(common: float, theta: Record, trials: Record) -> jax.Array:
    """Log-probability of both observed choices of each trial ``(T,)``."""
    return _scan_observed(common, theta, trials, "loglik")


def stage1_logprobs(common: float, theta: Record, trials: Record) -> jax.Array:
    """Log-probability of each stage-1 action on each trial ``(T, 2)``, given the observed history."""
    return _scan_observed(common, theta, trials, "logp1")


def simulate(common: float, key: jax.Array, theta: Record, trials: Record) -> dict[str, jax.Array]:
    """Play the world in ``trials.common`` (T,) and ``trials.payoff`` (T, 4)."""
    n = trials["payoff"].shape[0]
    mask = trials["mask"] if "mask" in trials else jnp.ones(n, bool)
    fixed, varying = split_theta(theta)

    def step(st, x):
        k, v, is_common, pay, m = x
        th = {**fixed, **v}
        k1, k2 = jax.random.split(k)
        a1 = jax.random.categorical(k1, jnp.stack(stage1_logits(common, th, st)))
        s = jnp.where(is_common > 0.5, a1, 1 - a1)
        a2 = jax.random.categorical(k2, jnp.stack(stage2_logits(th, st, s)))
        r = pay[2 * s + a2]
        nxt = learn(th, st, a1, s, a2, r)
        return jax.tree.map(lambda a, o: jnp.where(m, a, o), nxt, st), (a1, s, a2, r)

    xs = (jax.random.split(key, n), varying, trials["common"], trials["payoff"], mask)
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
        choice_logprobs=lambda theta, trials: stage1_logprobs(common, theta, trials),
        stateful=True,
        doc=__doc__,
    )


hybrid = register(twostep("twostep_hybrid", ("alpha1", "alpha2", "lam", "beta1", "beta2", "w", "p")))
register(hybrid.variant("twostep_hybrid6", fix={"lam": 1.0}))
register(twostep("twostep_hybrid4", ("alpha", "beta", "w", "p"), fixed={"lam": 1.0}))
