"""K-armed bandit learners (Rescorla-Wagner / Q-learning) with a softmax choice rule.

One learner covers the family; a model's parameter list picks the mechanisms:

=========  ==============================================================  ==================
name       meaning                                                         absent means
=========  ==============================================================  ==================
alpha      learning rate for every prediction error (0..1)                 use alpha_pos/neg
alpha_pos  learning rate when the prediction error is >= 0                 alpha
alpha_neg  learning rate when the prediction error is < 0                  alpha
beta       inverse temperature on values (per unit of reward)              beta_h (one of two)
beta_h     sensitivity to what ``horizon`` consistent outcomes teach       beta
alpha_c    learning rate of the choice kernel (0..1)                       1 (last choice)
beta_c     weight of the choice kernel (perseveration > 0, alternation <0) no kernel
decay      unchosen values decay toward ``q0`` by this fraction per trial  0
lapse      probability of a uniformly random choice                        0
=========  ==============================================================  ==================

Trial ``t``: ``p(choice) = (1 - lapse) softmax(beta Q + beta_c CK) + lapse / K``; then
``Q[c] += alpha_(pos|neg) (reward - Q[c])``, unchosen ``Q += decay (q0 - Q)``,
``CK += alpha_c (onehot(c) - CK)`` (Wilson & Collins 2019). ``Q`` starts at ``q0`` (default 0)
and ``CK`` at 0; with ``reset_on_block`` both restart whenever the ``block`` column changes.

``beta_h`` replaces ``beta`` by ``beta = beta_h / (1 - (1 - alpha)^H)`` (``H = horizon``, default
20 trials; ``alpha`` the mean of ``alpha_pos`` and ``alpha_neg`` where they are separate):
``beta_h`` is the logit difference between an arm that paid 1 and one that paid 0 on each of the
last ``H`` trials. With ``beta``, slow learners have a ridge: as ``alpha -> 0`` values grow like
reward counts times ``alpha``, so the likelihood stays high along ``alpha * beta = const`` up to
``beta -> inf`` (dezfouli2019: ``benchmarks/rl_profile.py``); under ``beta_h`` that ridge is
a plateau in ``alpha`` at fixed ``beta_h``. The two are the same likelihood with different priors.
Models with ``beta_h`` report ``beta`` as a derived quantity (``Model.derived``: in
``Fit.subject_params()`` and ``Fit.differences()``), so the inverse temperature stays comparable.
Under either, a participant whose likelihood has a fast and a slow regime can keep NUTS chains
in separate modes (:meth:`cogfit.Fit.flags`; ``benchmarks/learner_ml.py``);
``cogfit.NUTS(jumps=...)`` adds moves between the two (``jumps="auto"`` finds them). See
``benchmarks/RESULTS.md``, dezfouli.

Registered: ``bandit_rw`` (alpha, beta), ``bandit_dual`` (alpha_pos, alpha_neg, beta),
``bandit_dual_rep`` (+ beta_c with the kernel = last choice, one-back perseveration),
``bandit_dual_rep_h_blocks`` (the same with ``beta_h`` instead of ``beta``, restarting at blocks),
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

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpyro.distributions as dist

from cogfit import Derived, Interval, Model, Param, Positive, Real, Record
from cogfit.models import register
from cogfit.models._learner import chosen_logp2, log_softmax2, split_theta
from cogfit.tasks import _schedules as sched

RATE = dict(transform=Interval(0.0, 1.0), prior=dist.Normal(0.0, 1.5))
PARAMS = {
    "alpha": Param("alpha", doc="learning rate (per trial, 0..1)", **RATE),
    "alpha_pos": Param("alpha_pos", doc="learning rate for positive prediction errors", **RATE),
    "alpha_neg": Param("alpha_neg", doc="learning rate for negative prediction errors", **RATE),
    "beta": Param("beta", Positive(), dist.Normal(1.0, 1.0), "inverse temperature (1/reward unit)"),
    "beta_h": Param("beta_h", Positive(), dist.Normal(0.0, 1.0),
                    "logit gain of an arm that paid 1 (vs 0) on each of the last `horizon` trials"),
    "alpha_c": Param("alpha_c", doc="choice-kernel learning rate (0..1)", **RATE),
    "beta_c": Param("beta_c", Real(), dist.Normal(0.0, 1.0), "choice-kernel weight (logit units)"),
    "decay": Param("decay", Interval(0.0, 1.0), dist.Normal(-2.0, 1.5), "decay of unchosen values"),
    "lapse": Param("lapse", Interval(0.0, 1.0), dist.Normal(-3.0, 1.5), "random-choice probability"),
}


class LearnerState(NamedTuple):
    """Carry of the scan: values ``q`` and choice kernel ``ck`` (tuples of ``K`` scalars, one per
    arm), and the current ``block``.

    One scalar per arm rather than a ``(K,)`` array: XLA on a CPU runs the per-arm scalar
    arithmetic much faster than small arrays with reductions over a length-``K`` axis (see
    ``benchmarks/RESULTS.md``, cost of a log-likelihood).
    """

    q: tuple[jax.Array, ...]
    ck: tuple[jax.Array, ...]
    block: jax.Array


class Config(NamedTuple):
    """Static settings of a bandit learner (not estimated)."""

    n_arms: int = 2
    q0: float = 0.0
    reset_on_block: bool = False
    unroll: int = 1  # trials per compiled loop iteration: 1 is fastest on CPU; try 4-16 on GPUs
    horizon: float = 20.0  # trials over which beta_h measures sensitivity (models with beta_h)


def _rate(th: Record, name: str) -> jax.Array:
    return th[name] if name in th else th["alpha"]


def learned_fraction(alpha: jax.Array, horizon: float) -> jax.Array:
    """``1 - (1 - alpha)^horizon``: the fraction of a constant reward a value has learned after
    ``horizon`` trials. Accurate for tiny ``alpha`` (``-expm1(H log1p(-alpha))``) and with finite
    gradients at ``alpha = 1`` (where a float32 sigmoid saturates)."""
    below = alpha < 1.0
    safe = jnp.where(below, alpha, 0.0)                    # keeps log1p(-alpha)'s gradient finite
    return jnp.where(below, -jnp.expm1(horizon * jnp.log1p(-safe)), 1.0)


def inverse_temperature(theta: Record, horizon: float) -> jax.Array:
    """``beta`` of a subject: the parameter itself, or ``beta_h / learned_fraction(alpha)`` (with
    ``alpha`` the mean of ``alpha_pos`` and ``alpha_neg`` when they are separate)."""
    if "beta" in theta:
        return theta["beta"]
    alpha = theta["alpha"] if "alpha" in theta else 0.5 * (theta["alpha_pos"] + theta["alpha_neg"])
    return theta["beta_h"] / learned_fraction(alpha, horizon)


def _with_beta(cfg: Config, theta: Record) -> Record:
    """``theta`` with ``beta`` in place of ``beta_h``; unchanged without ``beta_h`` (models with
    ``beta``, and RL-DDM, whose learner has no softmax)."""
    if "beta_h" not in theta:
        return theta
    rest = {k: v for k, v in theta.items() if k != "beta_h"}
    return Record({**rest, "beta": inverse_temperature(theta, cfg.horizon)})


def _pick(choice: jax.Array, per_arm: tuple[jax.Array, ...]) -> jax.Array:
    """``per_arm[choice]`` without a gather (a sum of selects, differentiable in the values)."""
    return functools.reduce(jnp.add, (jnp.where(choice == k, v, 0.0) for k, v in enumerate(per_arm)))


def _logits(th: Record, state: LearnerState) -> list[jax.Array]:
    logits = [th["beta"] * q for q in state.q]
    if "beta_c" in th:
        logits = [v + th["beta_c"] * c for v, c in zip(logits, state.ck)]
    return logits


def chosen_logp(cfg: Config, th: Record, state: LearnerState, choice: jax.Array) -> jax.Array:
    """Log-probability of ``choice``; equals ``policy(...)[choice]``.

    Two arms without lapse: ``-softplus(logit_other - logit_chosen)``, one softplus per trial
    (the likelihood's hot loop; accurate in float32 for any logit difference).
    """
    if cfg.n_arms == 2 and "lapse" not in th:
        return chosen_logp2(*_logits(th, state), choice)
    return _pick(choice, policy(cfg, th, state))


def policy(cfg: Config, th: Record, state: LearnerState) -> tuple[jax.Array, ...]:
    """Log-probability of each arm (``K`` scalars) for one trial's parameters ``th`` and ``state``."""
    logits = _logits(th, state)
    if cfg.n_arms == 2:
        logp = log_softmax2(*logits)
    else:
        top = jax.lax.stop_gradient(functools.reduce(jnp.maximum, logits))  # shift only: exact
        lse = top + jnp.log(functools.reduce(jnp.add, (jnp.exp(v - top) for v in logits)))
        logp = tuple(v - lse for v in logits)
    if "lapse" in th:
        floor = jnp.log(th["lapse"] / cfg.n_arms)
        logp = tuple(jnp.logaddexp(jnp.log1p(-th["lapse"]) + v, floor) for v in logp)
    return logp


def enter(cfg: Config, state: LearnerState, block: jax.Array) -> LearnerState:
    """Restart values and kernel when a new block begins (if the model asks for it)."""
    if not cfg.reset_on_block:
        return state
    new = block != state.block
    return LearnerState(tuple(jnp.where(new, cfg.q0, q) for q in state.q),
                        tuple(jnp.where(new, 0.0, c) for c in state.ck), jnp.asarray(block))


def learn(cfg: Config, th: Record, state: LearnerState, choice, reward) -> LearnerState:
    """State after observing ``choice`` and its ``reward``."""
    pe = reward - _pick(choice, state.q)
    step = jnp.where(pe >= 0, _rate(th, "alpha_pos"), _rate(th, "alpha_neg")) * pe
    q = []
    for k, v in enumerate(state.q):
        other = v + th["decay"] * (cfg.q0 - v) if "decay" in th else v
        q.append(jnp.where(choice == k, v + step, other))
    ck = []
    for k, c in enumerate(state.ck):
        hit = (choice == k).astype(c.dtype)
        ck.append(c + th["alpha_c"] * (hit - c) if "alpha_c" in th else hit)   # alpha_c = 1: last choice
    return LearnerState(tuple(q), tuple(ck), state.block)


def initial_state(cfg: Config, trials: Record) -> LearnerState:
    block = trials["block"][0] if cfg.reset_on_block else jnp.asarray(0.0)
    zero = jnp.zeros(())
    return LearnerState((zero + cfg.q0,) * cfg.n_arms, (zero,) * cfg.n_arms, jnp.asarray(block))


def _inputs(trials: Record) -> tuple[int, jax.Array, jax.Array]:
    """Number of trials, mask (all True if absent) and block ids (zeros if absent)."""
    n = trials["choice"].shape[0] if "choice" in trials else trials["payoff"].shape[0]
    mask = trials["mask"] if "mask" in trials else jnp.ones(n, bool)
    block = trials["block"] if "block" in trials else jnp.zeros(n)
    return n, mask, block


def _observed(cfg: Config, theta: Record, trials: Record, out: str) -> jax.Array:
    """Scan the learner along the observed history. Per trial ``out`` is ``"loglik"`` (log-probability
    of the observed choice, ``(T,)``), ``"logp"`` (of each arm) or ``"q"`` (values before the choice),
    ``(T, K)``."""
    n, mask, block = _inputs(trials)
    fixed, varying = split_theta(_with_beta(cfg, theta))

    def step(state, x):
        v, c, r, b, m = x
        th = Record({**fixed, **v})
        entered = enter(cfg, state, b)
        if out == "q":
            y = jnp.stack(entered.q)
        elif out == "loglik":
            y = chosen_logp(cfg, th, entered, c)
        else:
            y = jnp.stack(policy(cfg, th, entered))
        nxt = learn(cfg, th, entered, c, r)
        return jax.tree.map(lambda a, o: jnp.where(m, a, o), nxt, state), y

    xs = (varying, trials["choice"], trials["reward"], block, mask)
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
    return _observed(cfg, theta, trials, "loglik")


def simulate(cfg: Config, key: jax.Array, theta: Record, trials: Record) -> dict[str, jax.Array]:
    """Play the payoff schedule ``trials.payoff`` ``(T, K)``: returns ``choice`` and ``reward``."""
    n, mask, block = _inputs(trials)
    fixed, varying = split_theta(_with_beta(cfg, theta))

    def step(state, x):
        k, v, pay, b, m = x
        th = Record({**fixed, **v})
        entered = enter(cfg, state, b)
        c = jax.random.categorical(k, jnp.stack(policy(cfg, th, entered)))
        r = pay[c]
        nxt = learn(cfg, th, entered, c, r)
        return jax.tree.map(lambda a, o: jnp.where(m, a, o), nxt, state), (c, r)

    xs = (jax.random.split(key, n), varying, trials["payoff"], block, mask)
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
    horizon: float = 20.0,
    doc: str = "",
) -> Model:
    """A bandit learner with the mechanisms named in ``params`` (see the module table).

    ``q0`` is the initial value of every arm; ``reset_on_block`` restarts the learner when the
    ``block`` column changes (the model then requires ``block``); ``unroll`` is passed to
    ``jax.lax.scan`` (speed only); ``horizon`` (trials) defines ``beta_h``.
    """
    unknown = set(params) - set(PARAMS)
    if unknown or ("beta" in params) == ("beta_h" in params):
        raise ValueError(f"bandit {name!r}: params must include one of 'beta' and 'beta_h' and come from "
                         f"{list(PARAMS)}")
    if not ("alpha" in params or {"alpha_pos", "alpha_neg"} <= set(params)):
        raise ValueError(f"bandit {name!r}: needs 'alpha' or both 'alpha_pos' and 'alpha_neg'")
    if "alpha_c" in params and "beta_c" not in params:
        raise ValueError(f"bandit {name!r}: 'alpha_c' needs 'beta_c'")
    cfg = Config(n_arms, float(q0), reset_on_block, unroll, float(horizon))
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
        derived=(Derived("beta", lambda theta: inverse_temperature(theta, cfg.horizon),
                         "inverse temperature on values implied by beta_h and the mean learning rate"),)
        if "beta_h" in params else (),
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
register(bandit("bandit_dual_rep_h_blocks", ("alpha_pos", "alpha_neg", "beta_h", "beta_c"), reset_on_block=True))
