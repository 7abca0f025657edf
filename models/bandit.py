"""K-armed bandit learners (Rescorla-Wagner / Q-learning) with a softmax choice rule.

One learner covers the family; a model's parameter list picks the mechanisms:

=========  ==============================================================  ==================
name       meaning                                                         absent means
=========  ==============================================================  ==================
alpha      learning rate for every prediction error (0..1)                 use alpha_pos/neg
alpha_pos  learning rate when the prediction error is >= 0                 alpha
alpha_neg  learning rate when the prediction error is < 0                  alpha
beta       inverse temperature on values (per unit of reward)              required
alpha_c    learning rate of the choice kernel (0..1)                       1 (last choice)
beta_c     weight of the choice kernel (perseveration > 0, alternation <0) no kernel
decay      unchosen values decay toward ``q0`` by this fraction per trial  0
lapse      probability of a uniformly random choice                        0
=========  ==============================================================  ==================

Trial ``t``: ``p(choice) = (1 - lapse) softmax(beta Q + beta_c CK) + lapse / K``; then
``Q[c] += alpha_(pos|neg) (reward - Q[c])``, unchosen ``Q += decay (q0 - Q)``,
``CK += alpha_c (onehot(c) - CK)`` (Wilson & Collins 2019). ``Q`` starts at ``q0`` (default 0)
and ``CK`` at 0; with ``reset_on_block`` both restart whenever the ``block`` column changes.

Registered: ``bandit_rw`` (alpha, beta), ``bandit_dual`` (alpha_pos, alpha_neg, beta),
``bandit_dual_rep`` (+ beta_c with the kernel = last choice, one-back perseveration),
``bandit_persev`` and ``bandit_dual_persev`` (+ alpha_c, beta_c), ``bandit_decay``,
``bandit_lapse``, ``bandit_full`` (all seven); ``bandit_rw_blocks``, ``bandit_dual_rep_blocks``
and ``bandit_dual_persev_blocks`` restart at blocks. Other combinations: :func:`bandit`.

Data columns: ``choice`` (arm code 0..K-1), ``reward`` (float outcome of the chosen arm),
``block`` (int, only for the ``*_blocks`` models). Simulation reads the payoff schedule
``payoff_1..payoff_K`` (what each arm would pay on each trial, e.g. from
:meth:`cogfit.tasks.Bandit.design`) and returns ``choice`` and ``reward``.

hBayesDM equivalents: ``bandit_rw`` is ``bandit2arm_delta``/``banditNarm_delta`` (A = alpha,
tau = beta, initial values 0); ``bandit_dual`` is ``prl_rp`` (Arew = alpha_pos,
Apun = alpha_neg) when outcomes are +1/-1 and q0 = 0. Their priors (Phi_approx scales) differ.

References
----------
Rescorla & Wagner (1972); Sutton & Barto (2018); Frank et al. (2007) PNAS 104:16311 (dual rates);
Ito & Doya (2009) J Neurosci 29:9861 (decay); Wilson & Collins (2019) eLife 8:e49547 (choice
kernel, lapse); Dezfouli et al. (2019) PLoS Comput Biol 15:e1006903.
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
PARAMS = {
    "alpha": Param("alpha", doc="learning rate (per trial, 0..1)", **RATE),
    "alpha_pos": Param("alpha_pos", doc="learning rate for positive prediction errors", **RATE),
    "alpha_neg": Param("alpha_neg", doc="learning rate for negative prediction errors", **RATE),
    "beta": Param("beta", Positive(), dist.Normal(1.0, 1.0), "inverse temperature (1/reward unit)"),
    "alpha_c": Param("alpha_c", doc="choice-kernel learning rate (0..1)", **RATE),
    "beta_c": Param("beta_c", Real(), dist.Normal(0.0, 1.0), "choice-kernel weight (logit units)"),
    "decay": Param("decay", Interval(0.0, 1.0), dist.Normal(-2.0, 1.5), "decay of unchosen values"),
    "lapse": Param("lapse", Interval(0.0, 1.0), dist.Normal(-3.0, 1.5), "random-choice probability"),
}


class LearnerState(NamedTuple):
    """Carry of the scan: values ``q`` (K,), choice kernel ``ck`` (K,), current ``block``."""

    q: jax.Array
    ck: jax.Array
    block: jax.Array


class Config(NamedTuple):
    """Static settings of a bandit learner (not estimated)."""

    n_arms: int = 2
    q0: float = 0.0
    reset_on_block: bool = False
    unroll: int = 1  # trials per compiled loop iteration: 1 is fastest on CPU; try 4-16 on GPUs


def _per_trial(theta: Record, n: int) -> Record:
    """Every theta field as a ``(n,)`` array (condition-varying fields already are)."""
    return Record({k: jnp.broadcast_to(jnp.asarray(v, dtype=float), (n,)) for k, v in theta.items()})


def _rate(th: Record, name: str) -> jax.Array:
    return th[name] if name in th else th["alpha"]


def policy(cfg: Config, th: Record, state: LearnerState) -> jax.Array:
    """Log-probability of each arm ``(K,)`` for one trial's parameters ``th`` and ``state``."""
    logits = th["beta"] * state.q
    if "beta_c" in th:
        logits = logits + th["beta_c"] * state.ck
    logp = jax.nn.log_softmax(logits)
    if "lapse" in th:
        logp = jnp.logaddexp(jnp.log1p(-th["lapse"]) + logp, jnp.log(th["lapse"] / cfg.n_arms))
    return logp


def enter(cfg: Config, state: LearnerState, block: jax.Array) -> LearnerState:
    """Restart values and kernel when a new block begins (if the model asks for it)."""
    if not cfg.reset_on_block:
        return state
    new = block != state.block
    return LearnerState(
        jnp.where(new, cfg.q0, state.q), jnp.where(new, 0.0, state.ck), jnp.asarray(block)
    )


def learn(cfg: Config, th: Record, state: LearnerState, choice, reward) -> LearnerState:
    """State after observing ``choice`` and its ``reward``."""
    chosen = jnp.arange(cfg.n_arms) == choice
    pe = reward - jnp.sum(jnp.where(chosen, state.q, 0.0))
    alpha = jnp.where(pe >= 0, _rate(th, "alpha_pos"), _rate(th, "alpha_neg"))
    q = state.q + jnp.where(chosen, alpha * pe, 0.0)
    if "decay" in th:
        q = q + jnp.where(chosen, 0.0, th["decay"] * (cfg.q0 - state.q))
    alpha_c = th["alpha_c"] if "alpha_c" in th else 1.0
    ck = state.ck + alpha_c * (chosen.astype(float) - state.ck)
    return LearnerState(q, ck, state.block)


def initial_state(cfg: Config, trials: Record) -> LearnerState:
    block = trials["block"][0] if cfg.reset_on_block else jnp.asarray(0.0)
    return LearnerState(jnp.full(cfg.n_arms, cfg.q0), jnp.zeros(cfg.n_arms), jnp.asarray(block))


def _inputs(trials: Record) -> tuple[int, jax.Array, jax.Array]:
    """Number of trials, mask (all True if absent) and block ids (zeros if absent)."""
    n = trials["choice"].shape[0] if "choice" in trials else trials["payoff"].shape[0]
    mask = trials["mask"] if "mask" in trials else jnp.ones(n, bool)
    block = trials["block"] if "block" in trials else jnp.zeros(n)
    return n, mask, block


def _observed(cfg: Config, theta: Record, trials: Record, out: str) -> jax.Array:
    """Scan the learner along the observed history; per trial ``out`` is ``"logp"``
    (log-probability of each arm) or ``"q"`` (values before the choice), shape ``(T, K)``."""
    n, mask, block = _inputs(trials)

    def step(state, x):
        th, c, r, b, m = x
        entered = enter(cfg, state, b)
        y = policy(cfg, th, entered) if out == "logp" else entered.q
        nxt = learn(cfg, th, entered, c, r)
        return jax.tree.map(lambda a, o: jnp.where(m, a, o), nxt, state), y

    xs = (_per_trial(theta, n), trials["choice"], trials["reward"], block, mask)
    return jax.lax.scan(step, initial_state(cfg, trials), xs, unroll=cfg.unroll)[1]


def option_logprobs(cfg: Config, theta: Record, trials: Record) -> jax.Array:
    """Log-probability of every arm on every trial ``(T, K)``, given the observed history.

    The learner sees the subject's actual choices and rewards; masked trials leave it unchanged.
    """
    return _observed(cfg, theta, trials, "logp")


def values(cfg: Config, theta: Record, trials: Record) -> jax.Array:
    """Values ``Q`` before each trial's choice ``(T, K)`` (for RL-DDM and plots)."""
    return _observed(cfg, theta, trials, "q")


def loglik(cfg: Config, theta: Record, trials: Record) -> jax.Array:
    """Log-probability of each observed choice ``(T,)``."""
    logp = option_logprobs(cfg, theta, trials)
    chosen = jnp.arange(cfg.n_arms) == trials["choice"][:, None]  # one-hot: no gather/scatter
    return jnp.sum(jnp.where(chosen, logp, 0.0), axis=1)


def simulate(cfg: Config, key: jax.Array, theta: Record, trials: Record) -> dict[str, jax.Array]:
    """Play the payoff schedule ``trials.payoff`` ``(T, K)``: returns ``choice`` and ``reward``."""
    n, mask, block = _inputs(trials)

    def step(state, x):
        k, th, pay, b, m = x
        entered = enter(cfg, state, b)
        c = jax.random.categorical(k, policy(cfg, th, entered))
        r = pay[c]
        nxt = learn(cfg, th, entered, c, r)
        return jax.tree.map(lambda a, o: jnp.where(m, a, o), nxt, state), (c, r)

    xs = (jax.random.split(key, n), _per_trial(theta, n), trials["payoff"], block, mask)
    choice, reward = jax.lax.scan(step, initial_state(cfg, trials), xs)[1]
    return {"choice": choice.astype(jnp.int32), "reward": reward}


def design(cfg: Config, key: jax.Array, n_trials: int) -> dict[str, jax.Array]:
    """A drifting Bernoulli bandit (Daw et al. 2011 walk): ``payoff`` ``(n_trials, K)``."""
    k_start, k_walk, k_pay = jax.random.split(key, 3)
    start = jax.random.uniform(k_start, (cfg.n_arms,), minval=0.25, maxval=0.75)
    p = sched.random_walk(k_walk, start, n_trials, sd=0.025, low=0.25, high=0.75)
    return {"payoff": sched.bernoulli_payoffs(k_pay, p)}


def bandit(
    name: str,
    params: tuple[str, ...],
    *,
    n_arms: int = 2,
    q0: float = 0.0,
    reset_on_block: bool = False,
    unroll: int = 1,
    doc: str = "",
) -> Model:
    """A bandit learner with the mechanisms named in ``params`` (see the module table).

    ``q0`` is the initial value of every arm; ``reset_on_block`` restarts the learner when the
    ``block`` column changes (the model then requires ``block``); ``unroll`` is passed to
    ``jax.lax.scan`` (speed only).
    """
    unknown = set(params) - set(PARAMS)
    if unknown or "beta" not in params:
        raise ValueError(f"bandit {name!r}: params must include 'beta' and come from {list(PARAMS)}")
    if not ("alpha" in params or {"alpha_pos", "alpha_neg"} <= set(params)):
        raise ValueError(f"bandit {name!r}: needs 'alpha' or both 'alpha_pos' and 'alpha_neg'")
    if "alpha_c" in params and "beta_c" not in params:
        raise ValueError(f"bandit {name!r}: 'alpha_c' needs 'beta_c'")
    cfg = Config(n_arms, float(q0), reset_on_block, unroll)
    return Model(
        name,
        tuple(PARAMS[p] for p in params),
        loglik=lambda theta, trials: loglik(cfg, theta, trials),
        simulate=lambda key, theta, trials: simulate(cfg, key, theta, trials),
        requires=("reward", "block") if reset_on_block else ("reward",),
        outcomes=("reward",),
        design_requires=("payoff",),
        n_options=n_arms,
        design=lambda key, n_trials: design(cfg, key, n_trials),
        choice_logprobs=lambda theta, trials: option_logprobs(cfg, theta, trials),
        stateful=True,
        doc=doc or f"{n_arms}-armed bandit learner with {', '.join(params)}.\n\n{__doc__}",
    )


MODELS = {
    "bandit_rw": ("alpha", "beta"),
    "bandit_dual": ("alpha_pos", "alpha_neg", "beta"),
    "bandit_persev": ("alpha", "beta", "alpha_c", "beta_c"),
    "bandit_dual_rep": ("alpha_pos", "alpha_neg", "beta", "beta_c"),
    "bandit_dual_persev": ("alpha_pos", "alpha_neg", "beta", "alpha_c", "beta_c"),
    "bandit_decay": ("alpha", "beta", "decay"),
    "bandit_lapse": ("alpha", "beta", "lapse"),
    "bandit_full": ("alpha_pos", "alpha_neg", "beta", "alpha_c", "beta_c", "decay", "lapse"),
}
for _name, _params in MODELS.items():
    register(bandit(_name, _params))
# Learners that restart at each block (Dezfouli et al. 2019: independent arms per block).
register(bandit("bandit_rw_blocks", MODELS["bandit_rw"], reset_on_block=True))
register(bandit("bandit_dual_rep_blocks", MODELS["bandit_dual_rep"], reset_on_block=True))
register(bandit("bandit_dual_persev_blocks", MODELS["bandit_dual_persev"], reset_on_block=True))
