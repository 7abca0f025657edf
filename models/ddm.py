"""Drift-diffusion models: ``ddm``, ``ddm_sdv``, ``full_ddm``, ``ddm_lapse``, ``ddm_choice``.

Parameterisation (see :mod:`cogfit.wiener` for the maths)
---------------------------------------------------------
Noise sd 1 per sqrt(second). ``v`` drift (1/s, > 0 toward the *upper* boundary, which is
``choice == 1``; ``choice == 0`` is the lower boundary), ``a`` full boundary separation, ``z``
relative start in (0, 1) (> 0.5 biased toward the upper boundary), ``t`` non-decision time in
seconds; ``rt`` in seconds. From HSSM (``a`` is half the separation there): ``a = 2 a_hssm``;
from noise-sd-``s`` conventions (``s = 0.1`` in Ratcliff's papers): ``v / s``, ``a / s``.

Variability (``ddm_sdv``, ``full_ddm``): ``sv`` sd of the drift across trials (closed form),
``sz`` width of a uniform start-point range *as a fraction of its largest possible value*
``2 min(z, 1 - z)`` (so every start point lies inside the boundaries for every ``sz`` in (0, 1)),
``st`` width (seconds) of a uniform range of non-decision times ``[t, t + st]``.

Responses faster than ``t``
---------------------------
The Wiener density is zero for ``rt <= t``, which would make a single fast guess veto every
``t`` above it. Every RT model here is therefore a mixture with a contaminant process
(Ratcliff & Tuerlinckx, 2002): with probability ``p_outlier`` the response is a guess, a
uniformly random key at a time uniform on ``(0, rt_max)``::

    p(rt, c) = (1 - p_outlier) * wiener(rt, c) + p_outlier * 0.5 / rt_max

``ddm``, ``ddm_sdv`` and ``full_ddm`` fix ``p_outlier = P_OUTLIER = 0.02`` (the contaminant
density, 0.001 per second per key, matters only for responses the diffusion cannot explain);
``ddm_lapse`` estimates it. ``rt_max = RT_MAX = 10`` seconds; responses slower than ``rt_max``
get no contaminant density (no error: the diffusion density stays positive). Other constants
can be passed as ``Model(..., fixed={"rt_max": 60.0})`` or ``fixed={"p_outlier": 0.0}`` (a
pure diffusion, whose log-likelihood is ``-inf`` when some ``rt <= t``).

Known limitation of a *fixed* contaminant share: the Wiener density rises from 0 at ``rt = t``,
so when a subject's ``t`` sits among their fastest responses every such response is a small
barrier in ``t`` (just below it the trial is a poorly fitting diffusion response, just above it a
contaminant), and chains can settle in different modes, as they do for participants who make
fast guesses. Estimating the share per participant (``ddm_lapse``) removes the barrier, and is the
suggested model for guenther2020LDT (see ``benchmarks/RESULTS.md``, guenther).

Choice-only data (``ddm_choice``, e.g. LLM choices): the closed-form probability of each
boundary. Only ``v * a`` and ``z`` are identified from choices, so ``a`` is 1 (unless theta
carries another constant ``a``) and ``v`` is the drift in units of the boundary separation.

References
----------
Ratcliff, R., & McKoon, G. (2008). The diffusion decision model: theory and data for two-choice
decision tasks. Neural Computation, 20, 873-922.
Ratcliff, R., & Tuerlinckx, F. (2002). Estimating parameters of the diffusion model: approaches
to dealing with contaminant reaction times and parameter variability. Psychon. Bull. Rev., 9.
Navarro & Fuss (2009); Gondan, Blurton & Kesselmeier (2014); Blurton et al. (2017): see
:mod:`cogfit.wiener`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpyro.distributions as dist

from cogfit import wiener
from cogfit._model import Model, Param
from cogfit._record import Record
from cogfit._transforms import Interval, Positive, Real
from cogfit.models import register

_V = Param("v", Real(), dist.Normal(0.0, 2.0), "drift rate (1/s), > 0 toward the upper boundary",
           dist.HalfNormal(1.5))
_A = Param("a", Positive(), dist.Normal(math.log(1.5), 0.5), "boundary separation (noise sd 1)",
           dist.HalfNormal(0.5))
_Z = Param("z", Interval(0.0, 1.0), dist.Normal(0.0, 0.5), "relative start point, 0.5 unbiased",
           dist.HalfNormal(0.5))
_T = Param("t", Positive(), dist.Normal(math.log(0.3), 0.5), "non-decision time (s)",
           dist.HalfNormal(0.5))
_SV = Param("sv", Positive(), dist.Normal(0.0, 0.7), "across-trial sd of the drift (1/s)",
            dist.HalfNormal(0.5))
_SZ = Param("sz", Interval(0.0, 1.0), dist.Normal(-1.0, 1.0),
            "start-point range as a fraction of 2 min(z, 1 - z)", dist.HalfNormal(0.5))
_ST = Param("st", Positive(), dist.Normal(math.log(0.1), 0.7), "range of non-decision times (s)",
            dist.HalfNormal(0.5))
_P = Param("p_outlier", Interval(0.0, 1.0), dist.Normal(-3.5, 1.0),
           "probability of a contaminant (uniform guess)", dist.HalfNormal(0.5))

P_OUTLIER = 0.02
"""Contaminant probability of the models that do not estimate it."""
RT_MAX = 10.0
"""Upper end (seconds) of the uniform contaminant response times."""


def _diffusion_logpdf(theta: Record, rt: jax.Array, choice: jax.Array) -> jax.Array:
    """Log density of the diffusion part, with whichever variabilities ``theta`` carries."""
    sv = theta.get("sv", 0.0)
    if "sz" in theta or "st" in theta:
        sz = theta.sz * 2.0 * jnp.minimum(theta.z, 1.0 - theta.z)
        return wiener.full_ddm_logpdf(rt, choice, theta.v, theta.a, theta.z, theta.t, sv, sz, theta.st)
    return wiener.wiener_logpdf(rt, choice, theta.v, theta.a, theta.z, theta.t, sv)


def rt_loglik(theta: Record, trials: Record) -> jax.Array:
    """Per-trial log-likelihood ``(T,)`` of ``(rt, choice)``: diffusion plus contaminant mixture."""
    rt = trials.rt
    p = jnp.asarray(theta.get("p_outlier", P_OUTLIER))
    rt_max = theta.get("rt_max", RT_MAX)
    log_c = jnp.where(rt < rt_max, -jnp.log(2.0 * rt_max), -jnp.inf)
    return jnp.logaddexp(jnp.log1p(-p) + _diffusion_logpdf(theta, rt, trials.choice), jnp.log(p) + log_c)


def rt_simulate(key: jax.Array, theta: Record, trials: Record) -> dict[str, jax.Array]:
    """Draw ``rt`` (seconds) and ``choice`` for one subject's ``T`` trials."""
    shape = trials.mask.shape
    kv, kz, kt, kw, kc, km, kr = jax.random.split(key, 7)
    v = theta.v + theta.get("sv", 0.0) * jax.random.normal(kv, shape)
    z, t = theta.z, theta.t
    if "sz" in theta:
        z = z + theta.sz * 2.0 * jnp.minimum(z, 1.0 - z) * (jax.random.uniform(kz, shape) - 0.5)
    if "st" in theta:
        t = t + theta.st * jax.random.uniform(kt, shape)
    rt, choice = wiener.sample_wiener(kw, v, theta.a, z, t, shape)
    guess = jax.random.uniform(km, shape) < theta.get("p_outlier", P_OUTLIER)
    rt = jnp.where(guess, theta.get("rt_max", RT_MAX) * jax.random.uniform(kr, shape), rt)
    choice = jnp.where(guess, jax.random.bernoulli(kc, 0.5, shape).astype(jnp.int32), choice)
    return {"rt": rt, "choice": choice}


def choice_loglik(theta: Record, trials: Record) -> jax.Array:
    """Per-trial log-probability ``(T,)`` of the observed boundary (closed form)."""
    return wiener.wiener_log_prob(trials.choice, theta.v, theta.get("a", 1.0), theta.z)


def choice_logprobs(theta: Record, trials: Record) -> jax.Array:
    """Log-probabilities ``(T, 2)`` of the lower (code 0) and upper (code 1) boundary."""
    shape = trials.mask.shape
    a = theta.get("a", 1.0)
    return jnp.stack([wiener.wiener_log_prob(jnp.full(shape, k), theta.v, a, theta.z)
                      for k in (0, 1)], axis=-1)


def choice_simulate(key: jax.Array, theta: Record, trials: Record) -> dict[str, jax.Array]:
    """Draw choices (1 = upper boundary) for one subject's ``T`` trials."""
    shape = trials.mask.shape
    p_up = jnp.exp(wiener.wiener_log_prob(1, theta.v, theta.get("a", 1.0), theta.z))
    return {"choice": (jax.random.uniform(key, shape) < p_up).astype(jnp.int32)}


def _no_stimuli(key: jax.Array, n_trials: int) -> dict:
    """DDM designs have no stimulus columns (conditions come from the ``condition`` column)."""
    return {}


def _rt_model(name: str, params: tuple[Param, ...], doc: str) -> Model:
    return Model(name, params, rt_loglik, rt_simulate, rt=True, design=_no_stimuli, doc=doc)


ddm = register(_rt_model("ddm", (_V, _A, _Z, _T),
                         "Wiener diffusion model (v, a, z, t) with 2% fixed contaminants."))
ddm_sdv = register(_rt_model("ddm_sdv", (_V, _A, _Z, _T, _SV),
                             "Diffusion model with across-trial drift variability sv."))
full_ddm = register(_rt_model("full_ddm", (_V, _A, _Z, _T, _SV, _SZ, _ST),
                              "Full diffusion model: sv, sz, st variability (Ratcliff, 1978)."))
ddm_lapse = register(_rt_model("ddm_lapse", (_V, _A, _Z, _T, _P),
                               "Diffusion model with an estimated contaminant probability p_outlier."))
ddm_choice = register(Model("ddm_choice", (_V, _Z), choice_loglik, choice_simulate,
                            design=_no_stimuli, choice_logprobs=choice_logprobs,
                            doc="Choice-only diffusion model: closed-form boundary probabilities."))
