"""Prospect theory: hBayesDM's gamble-vs-sure-amount model and cumulative prospect theory.

Choice conventions: in ``prospect_ra*`` ``choice`` 1 = took the gamble, 0 = took the sure
amount; in ``cpt*`` ``choice`` 1 = chose lottery b, 0 = lottery a. Outcomes are in the task's
own units (points, euros); probabilities are fractions.

References
----------
Sokol-Hessner et al. (2009) PNAS 106, 5035-5040 (the ``ra_prospect`` task; hBayesDM's form).
Tversky & Kahneman (1992) J. Risk Uncertain. 5, 297-323 (CPT; one-parameter weighting).
Prelec (1998) Econometrica 66, 497-527 (one- and two-parameter weighting).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro.distributions as dist

from cogfit._model import Model, Param
from cogfit._transforms import Interval, Positive, Real
from cogfit.models import register


def spow(x: jax.Array, k: jax.Array) -> jax.Array:
    """``x**k`` for ``x >= 0`` with finite gradients at ``x == 0`` (where it is 0)."""
    pos = x > 0
    return jnp.where(pos, jnp.exp(k * jnp.log(jnp.where(pos, x, 1.0))), 0.0)


def weighted_utility(x: jax.Array, w: jax.Array, alpha, beta, lam) -> jax.Array:
    """``sum_k w_k u(x_k)`` over the last axis, ``u`` the power value function, accurate near 0 curvature.

    ``u(x) = x**alpha`` for gains, ``-lam * (-x)**beta`` for losses, 0 for 0. With
    ``u = s * c * |x|**k`` (``s`` the sign, ``c`` 1 for gains and ``lam`` for losses)
    written as ``s * c * (1 + expm1(k * log|x|))``, the constant parts ``sum w s c`` are added
    apart from the small ones. Near ``k = 0`` (the log-utility limit, where ``tau * alpha``
    stays finite as ``tau`` grows) the direct sum of ``|x|**k ~ 1`` loses every float32
    digit of the difference between two lotteries (see ``benchmarks/RESULTS.md``, spektor);
    this form keeps it.
    ``x, w``: (..., K); ``alpha, beta, lam``: scalars or shaped like ``x[..., 0]``.
    """
    alpha, beta, lam = (jnp.expand_dims(jnp.asarray(v), -1) for v in (alpha, beta, lam))
    nz = x != 0
    k = jnp.where(x > 0, alpha, beta)
    c = jnp.where(x > 0, 1.0, -lam) * nz
    log_abs = jnp.log(jnp.where(nz, jnp.abs(x), 1.0))
    return jnp.sum(w * c, -1) + jnp.sum(w * c * jnp.expm1(k * log_abs), -1)


def _logit_choice(eta: jax.Array, choice: jax.Array) -> jax.Array:
    """log P(choice) for ``P(choice == 1) = sigmoid(eta)``."""
    return jax.nn.log_sigmoid(jnp.where(choice == 1, eta, -eta))


# --- hBayesDM ra_prospect ------------------------------------------------------------------

def _ra_value_diff(theta, trials):
    # 0.5 u(gain) + 0.5 u(-|loss|) - u(cert); a gain <= 0 counts as 0 (hBayesDM: gain^rho)
    x = jnp.stack([jnp.where(trials.gain > 0, trials.gain, 0.0), -jnp.abs(trials.loss), trials.cert], -1)
    w = jnp.array([0.5, 0.5, -1.0], x.dtype)
    return theta.tau * weighted_utility(x, w, theta.rho, theta.rho, theta.lam)


def _ra_loglik(theta, trials):
    return _logit_choice(_ra_value_diff(theta, trials), trials.choice)


def _ra_simulate(key, theta, trials):
    p = jax.nn.sigmoid(_ra_value_diff(theta, trials))
    return {"choice": jax.random.bernoulli(key, p).astype(jnp.int32)}


def _ra_design(key, n_trials):
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "gain": jax.random.randint(k1, (n_trials,), 2, 13).astype(float) * 2.0,
        "loss": jax.random.randint(k2, (n_trials,), 1, 13).astype(float) * 1.0,
        "cert": jnp.where(jax.random.bernoulli(k3, 0.5, (n_trials,)), 0.0, 2.0),
    }


prospect_ra = register(Model(
    name="prospect_ra",
    params=(
        Param("rho", Interval(0.0, 2.0), dist.Normal(0.0, 1.0), "risk attitude (utility curvature; 1 = linear)"),
        Param("lam", Interval(0.0, 5.0), dist.Normal(-1.0, 1.0), "loss aversion (1 = none)"),
        Param("tau", Interval(0.0, 30.0), dist.Normal(-2.0, 1.0), "inverse temperature (per utility unit)"),
    ),
    loglik=_ra_loglik,
    simulate=_ra_simulate,
    design=_ra_design,
    requires=("gain", "loss", "cert"),
    doc="Gamble (50% gain, 50% loss) vs sure amount, hBayesDM ra_prospect "
        "(rho in (0,2), lambda in (0,5), tau in (0,30) as there; 'loss' may be signed or a magnitude).",
))
register(prospect_ra.variant("prospect_ra_nola", fix={"lam": 1.0},
                             doc="ra_prospect without loss aversion (hBayesDM ra_noLA)."))
register(prospect_ra.variant("prospect_ra_nora", fix={"rho": 1.0},
                             doc="ra_prospect without risk aversion (hBayesDM ra_noRA)."))


# --- cumulative prospect theory --------------------------------------------------------------

def w_tk92(p, g, q=None):
    """Tversky-Kahneman (1992): ``p^g / (p^g + (1-p)^g)^(1/g)``; ``q`` is ``1 - p`` if known exactly."""
    q = 1.0 - p if q is None else q
    pg, qg = spow(p, g), spow(q, g)
    return pg / jnp.exp(jnp.log(pg + qg) / g)


def w_prelec(p, g, d=1.0, q=None):
    """Prelec (1998): ``exp(-d (-ln p)^g)``; ``w(0) = 0``; ``q`` is ``1 - p`` if known exactly."""
    inner = p > 0
    nl = -jnp.log(jnp.where(inner, p, 1.0))
    if q is not None:                                    # -ln p = -log1p(-q): exact near p = 1
        nl = jnp.where(p > 0.5, -jnp.log1p(-jnp.where(p > 0.5, q, 0.0)), nl)
    return jnp.where(inner, jnp.exp(-d * spow(nl, g)), 0.0)


def decision_weights(x, p, w_gain, w_loss):
    """Rank-dependent decision weights of a lottery with outcomes ``x`` and probabilities ``p``.

    ``x, p``: (..., K). Gains are ranked from best to worst and weighted with ``w_gain`` of the
    probability of doing at least as well; losses from worst to best with ``w_loss``; ties are
    broken by position, so the tied outcomes' weights add up exactly. ``w_gain(P, Q)`` and
    ``w_loss(P, Q)`` get each cumulative probability ``P`` with its complement ``Q = 1 - P``
    summed directly from the other outcomes' probabilities, never as ``1 - P``: with curvature
    ~0.3, ``w`` near ``P = 1`` moves by ``(1 - P)**0.3``, so float32 probabilities summing to
    0.99999997 instead of 1 changed a weight by 2% (``1 - P`` = 3e-8). Returns (..., K).
    """
    K = x.shape[-1]
    idx = jnp.arange(K)
    before = idx[None, :] < idx[:, None]                 # [i, j]: j comes before i
    self_ = idx[None, :] == idx[:, None]
    xi, xj = x[..., :, None], x[..., None, :]
    pj = p[..., None, :]
    better = (xj > 0) & ((xj > xi) | ((xj == xi) & before))   # gains ranked above i
    worse = (xj < 0) & ((xj < xi) | ((xj == xi) & before))    # losses ranked below i

    def weight(ranked, w):
        lo = jnp.sum(pj * ranked, -1)                     # P(ranked strictly beyond i)
        hi = lo + p                                       # ... or i itself
        lo_c = jnp.sum(pj * ~ranked, -1)                  # 1 - lo, summed directly
        hi_c = jnp.sum(pj * ~(ranked | self_), -1)        # 1 - hi
        return w(jnp.clip(hi, 0.0, 1.0), hi_c) - w(jnp.clip(lo, 0.0, 1.0), lo_c)

    wg, wl = weight(better, w_gain), weight(worse, w_loss)
    return jnp.where(x > 0, wg, jnp.where(x < 0, wl, 0.0))


def _cpt_weights(theta, x, p, weighting):
    """Decision weights of one lottery ``(..., K)`` (the probabilities themselves if linear)."""
    if weighting == "linear":                       # ranks are irrelevant
        return p
    if weighting == "tk92":
        wg = lambda P, Q: w_tk92(P, theta.gamma, Q)  # noqa: E731
        wl = lambda P, Q: w_tk92(P, theta.delta, Q)  # noqa: E731
    elif weighting == "prelec1":
        wg = lambda P, Q: w_prelec(P, theta.gamma, q=Q)  # noqa: E731
        wl = lambda P, Q: w_prelec(P, theta.delta, q=Q)  # noqa: E731
    else:
        wg = lambda P, Q: w_prelec(P, theta.gamma, theta.eta_g, Q)  # noqa: E731
        wl = lambda P, Q: w_prelec(P, theta.delta, theta.eta_l, Q)  # noqa: E731
    return decision_weights(x, p, wg, wl)


def _cpt_value_diff(theta, trials, weighting):
    """CPT value of lottery b minus that of lottery a, one utility pass over all outcomes.

    ``theta.ref == 0``: ``u(x) = x**alpha`` for gains, ``-lam * (-x)**beta`` for losses (task
    units). ``theta.ref > 0`` (a reference stake, task units): the same utility rescaled,
    ``u(x) = k * ref * (x / ref)**alpha`` and ``-k * lam * ref * (-x / ref)**beta`` with
    ``k = 2 / (1 + lam)``, so ``u(ref) - u(-ref) = 2 * ref`` whatever alpha, beta and lam.
    """
    beta = theta.beta if "beta" in theta else theta.alpha
    x = jnp.concatenate([trials.x_a, trials.x_b], -1)
    w = jnp.concatenate([-_cpt_weights(theta, trials.x_a, trials.p_a, weighting),
                         _cpt_weights(theta, trials.x_b, trials.p_b, weighting)], -1)
    on = theta.ref > 0
    ref = jnp.where(on, theta.ref, 1.0)
    k = jnp.where(on, 2.0 * ref / (1.0 + theta.lam), 1.0)
    return k * weighted_utility(x / jnp.expand_dims(ref, -1), w, theta.alpha, beta, theta.lam)


def _make_cpt(name: str, weighting: str, shared: bool, doc: str, bias: bool = False) -> Model:
    def eta(theta, trials):
        e = theta.tau * _cpt_value_diff(theta, trials, weighting)
        return e + theta.bias if bias else e

    def loglik(theta, trials):
        return _logit_choice(eta(theta, trials), trials.choice)

    def simulate(key, theta, trials):
        return {"choice": jax.random.bernoulli(key, jax.nn.sigmoid(eta(theta, trials))).astype(jnp.int32)}

    curv = [Param("alpha", Interval(0.0, 2.0), dist.Normal(0.0, 1.0), "utility curvature for gains (1 = linear)")]
    if not shared:
        curv.append(Param("beta", Interval(0.0, 2.0), dist.Normal(0.0, 1.0), "utility curvature for losses"))
    weights = {
        "tk92": [Param("gamma", Interval(0.3, 1.5), dist.Normal(0.0, 1.0),
                       "probability weighting, gains (TK92; 1 = linear)"),
                 Param("delta", Interval(0.3, 1.5), dist.Normal(0.0, 1.0), "probability weighting, losses (TK92)")],
        "prelec1": [Param("gamma", Interval(0.1, 2.0), dist.Normal(0.0, 1.0), "Prelec curvature, gains (1 = linear)"),
                    Param("delta", Interval(0.1, 2.0), dist.Normal(0.0, 1.0), "Prelec curvature, losses")],
        "prelec2": [Param("gamma", Interval(0.1, 2.0), dist.Normal(0.0, 1.0), "Prelec curvature, gains"),
                    Param("eta_g", Positive(), dist.Normal(0.0, 0.5), "Prelec elevation, gains (1 = none)"),
                    Param("delta", Interval(0.1, 2.0), dist.Normal(0.0, 1.0), "Prelec curvature, losses"),
                    Param("eta_l", Positive(), dist.Normal(0.0, 0.5), "Prelec elevation, losses")],
        "linear": [],
    }[weighting]
    params = (
        *curv,
        Param("lam", Positive(), dist.Normal(0.0, 1.0), "loss aversion (1 = none)"),
        *weights,
        Param("tau", Positive(), dist.Normal(-1.0, 1.0),
              "choice sensitivity (log-odds per utility unit; see ref)"),
        *([Param("bias", Real(), dist.Normal(0.0, 1.0), "side bias towards lottery b (log-odds; 0 = none)")]
          if bias else []),
    )
    return Model(name=name, params=params, loglik=loglik, simulate=simulate, design=_cpt_design,
                 requires=("x_a", "p_a", "x_b", "p_b"), probabilities=("p_a", "p_b"), fixed={"ref": 0.0},
                 doc=doc + REF_DOC)


REF_DOC = """

Constant ``ref`` (task units; default 0 = off): a reference stake. With ``ref > 0`` utility is
rescaled so that ``u(ref) - u(-ref) = 2 * ref`` (``u(x) = 2 ref / (1 + lam) * (x / ref)**alpha``,
losses likewise): the same family of choice probabilities, but ``tau`` (log-odds per task unit
at the reference stake) no longer trades off against ``alpha`` and ``lam``, so NUTS needs fewer
steps. Set it near a typical outcome magnitude, e.g. ``model.variant(model.name, fix={"ref": 16.0})``
(``cogfit fit --fix ref=16``). At ``alpha = beta = lam = 1`` nothing changes. With separate
curvatures ``lam`` is then the loss aversion at the reference stake, ``-u(-ref) / u(ref)``
(Köbberling & Wakker 2005, J Econ Theory 122, 119-131), instead of at one task unit."""


def _cpt_design(key, n_trials, n_outcomes: int = 2, scale: float = 40.0):
    """Two random lotteries per trial: outcomes uniform in [-scale, scale] (integers), random probabilities."""
    kx, kp = jax.random.split(key)
    x = jnp.round(jax.random.uniform(kx, (2, n_trials, n_outcomes), minval=-scale, maxval=scale))
    if n_outcomes == 2:  # probabilities on a 0.05 grid, as in experiments
        p1 = jnp.round(jax.random.uniform(kp, (2, n_trials), minval=0.05, maxval=0.95) * 20) / 20
        p = jnp.stack([p1, 1.0 - p1], -1)
    else:
        p = jax.random.dirichlet(kp, jnp.ones(n_outcomes), (2, n_trials))
    return {"x_a": x[0], "p_a": p[0], "x_b": x[1], "p_b": p[1]}


for _args in [
    ("cpt", "tk92", False, "Cumulative prospect theory, TK92 weighting, separate curvature for gains and losses."),
    ("cpt_shared", "tk92", True, "CPT with TK92 weighting and one curvature for gains and losses."),
    ("cpt_prelec1", "prelec1", False, "CPT with one-parameter Prelec weighting."),
    ("cpt_prelec2", "prelec2", False, "CPT with two-parameter Prelec weighting."),
    ("cpt_linear", "linear", True,
     "Prospect theory with linear probability weighting (curvature, loss aversion, noise)."),
]:
    register(_make_cpt(*_args))
    register(_make_cpt(f"{_args[0]}_bias", *_args[1:3], _args[3] + " With a side bias towards lottery b "
                       "(log-odds added to the choice rule: participants who mostly press one key).", bias=True))
