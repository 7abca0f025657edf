"""Wiener first-passage times: exact log densities, choice probabilities and a sampler.

Conventions (used by every function here and by ``models/ddm.py``)
-------------------------------------------------------------------
A Brownian motion with drift ``v`` (per second), noise sd 1 (per sqrt second), starts at
``z * a`` between an absorbing *lower* boundary at 0 and an *upper* boundary at ``a``:

``v``  drift rate; ``v > 0`` drifts toward the upper boundary.
``a``  full boundary separation (> 0).
``z``  relative start point in (0, 1); 0.5 is unbiased, ``z -> 1`` starts next to the upper one.
``t``  non-decision time in seconds; the response time is ``rt = t + decision time``.
``choice``  1 = upper boundary, 0 = lower boundary.

From other conventions: HSSM/``ssm-simulators`` use ``a`` as *half* the separation (pass
``2 * a_hssm``); models with noise sd ``s`` (0.1 in Ratcliff's papers) map by
``v / s, a / s`` (``z`` and ``t`` unchanged). HDDM uses the same convention as here.

The density of hitting the lower boundary at decision time ``d`` is (Navarro & Fuss, 2009)
``f(d | v, a, w) = a**-2 * exp(-v a w - v**2 d / 2) * f(d / a**2 | 0, 1, w)``; the upper boundary
uses ``v -> -v, w -> 1 - w``. The standard density ``f(u | 0, 1, w)`` has a small-time series
(fast for small ``u``) and a large-time series (fast for large ``u``). Per trial we compute how
many terms each series needs for a *relative* error ``REL_EPS`` (absolute bound of Gondan,
Blurton & Kesselmeier, 2014, for the small-time series and of Navarro & Fuss, 2009, for the
large-time one, applied with ``eps = REL_EPS * leading term``) and use the series that needs
fewer. Each series is then summed over a fixed ``K_SMALL`` / ``K_LARGE`` terms, at least the
per-trial requirement wherever that series is chosen (checked in ``tests/test_wiener.py``):
a fixed count vectorises, and the extra terms only shrink the error. All sums are formed
relative to their leading term and evaluated in log space, so densities down to ``exp(-1e4)``
keep full relative precision and nothing under- or overflows.

References
----------
Navarro, D. J., & Fuss, I. G. (2009). Fast and accurate calculations for first-passage times in
Wiener diffusion models. J. Math. Psych., 53, 222-230.
Gondan, M., Blurton, S. P., & Kesselmeier, M. (2014). Even faster and even more accurate
first-passage time densities and distributions for the Wiener diffusion model. J. Math. Psych.,
60, 20-22.
Blurton, S. P., Kesselmeier, M., & Gondan, M. (2017). The first-passage time distribution for
the drift diffusion model with variable drift. J. Math. Psych., 76, 7-12.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

REL_EPS = 1e-12
"""Target relative truncation error of the series (before rounding)."""
K_SMALL = 3
"""Pairs of image terms ``k = -K..K`` summed in the small-time series."""
K_LARGE = 6
"""Terms ``k = 1..K`` summed in the large-time series."""

_LOG_2PI = math.log(2.0 * math.pi)
_PI2 = math.pi**2


def n_terms_small(u: ArrayLike, w: ArrayLike, log_eps: ArrayLike) -> jax.Array:
    """Pairs of small-time terms for absolute error ``exp(log_eps)`` (Gondan et al., 2014)."""
    u, w = jnp.asarray(u), jnp.asarray(w)
    u_eps = jnp.minimum(-1.0, _LOG_2PI + 2.0 * jnp.log(u) + 2.0 * log_eps)
    arg = -u * (u_eps - jnp.sqrt(-2.0 * u_eps - 2.0))
    k1 = (jnp.sqrt(2.0 * u) - w) / 2.0
    k2 = (jnp.sqrt(jnp.maximum(arg, 0.0)) - w) / 2.0
    return jnp.ceil(jnp.maximum(k1, jnp.where(arg > 0, k2, k1)))


def n_terms_large(u: ArrayLike, log_eps: ArrayLike) -> jax.Array:
    """Large-time terms for absolute error ``exp(log_eps)`` (Navarro & Fuss, 2009)."""
    u = jnp.asarray(u)
    bc = 1.0 / (math.pi * jnp.sqrt(u))
    log_pue = math.log(math.pi) + jnp.log(u) + log_eps
    kl = jnp.sqrt(jnp.maximum(-2.0 * log_pue, 0.0) / (_PI2 * u))
    return jnp.ceil(jnp.where(log_pue < 0, jnp.maximum(kl, bc), bc))


def _log_lead_small(u, w):
    """Log of the k = 0 small-time term: the density's size for small ``u``."""
    return jnp.log(w) - 0.5 * _LOG_2PI - 1.5 * jnp.log(u) - w**2 / (2.0 * u)


def _log_lead_large(u, w, sin1=None):
    """Log of the k = 1 large-time term: the density's size for large ``u``."""
    sin1 = jnp.sin(math.pi * w) if sin1 is None else sin1
    return math.log(math.pi) + jnp.log(sin1) - _PI2 * u / 2.0


def use_small_time(u: ArrayLike, w: ArrayLike, sin1: ArrayLike | None = None) -> jax.Array:
    """Per trial: True where the small-time series needs fewer terms than the large-time one.

    Both counts are for the absolute error ``REL_EPS`` times the smaller leading term, i.e. a
    relative error of about ``REL_EPS`` (the smaller leading term never exceeds the density by
    much). ``sin1`` (``sin(pi w)``) may be passed to share work. Not differentiated.
    """
    # The choice needs no precision (both series are accurate near the switch), so it runs in
    # float32, where logarithms are several times cheaper than in float64.
    f32 = lambda x: jax.lax.stop_gradient(jnp.asarray(x)).astype(jnp.float32)  # noqa: E731
    u, w = f32(u), f32(w)
    sin1 = jnp.sin(math.pi * w) if sin1 is None else f32(sin1)
    log_eps = math.log(REL_EPS) + jnp.minimum(_log_lead_small(u, w), _log_lead_large(u, w, sin1))
    return 2.0 * n_terms_small(u, w, log_eps) + 1.0 <= n_terms_large(u, log_eps)


def _small_sums(u, w):
    """Small-time sum ``S = sum_k (w + 2k) E_k``, ``E_k = exp(-2k(w + k)/u)``, k = -K..K, with
    ``dS/du`` and ``dS/dw``.

    Consecutive factors differ by ``exp(-2(1 +- w)/u) * exp(-4/u)**(j-1)``, so three
    exponentials give them all. Every factor is <= 1: products underflow to 0, never overflow.
    """
    a2 = jnp.exp(-4.0 / u)
    step = {1: jnp.exp(-2.0 * (1.0 + w) / u), -1: jnp.exp(-2.0 * (1.0 - w) / u)}
    e = dict(step)
    s, s_u, s_w = w, jnp.zeros_like(w * u), jnp.ones_like(w * u)
    for j in range(1, K_SMALL + 1):
        for sign in (1, -1):
            if j > 1:
                step[sign] = step[sign] * a2
                e[sign] = e[sign] * step[sign]
            k = sign * j
            s = s + (w + 2 * k) * e[sign]
            s_u = s_u + (w + 2 * k) * e[sign] * (2 * k * (w + k)) / u**2
            s_w = s_w + e[sign] * (1.0 - 2 * k * (w + 2 * k) / u)
    return s, s_u, s_w


def _large_sums(u, w, sin1):
    """Large-time sum ``B = sum_k k q**(k**2 - 1) sin(k pi w)``, ``q = exp(-pi**2 u / 2)``,
    k = 1..K, with ``dB/du`` and ``dB/dw``.

    Powers of ``q`` by products (``q**(2k - 1)`` steps); ``sin(k x)`` and ``cos(k x)`` by the
    Chebyshev recurrence ``f_k = 2 cos(x) f_{k-1} - f_{k-2}`` (relative error about ``k**2 / 3``
    ulps): one exponential, one sine, one cosine per trial.
    """
    q = jnp.exp(-_PI2 * u / 2.0)
    q2 = q * q
    cos1 = jnp.cos(math.pi * w)
    s_prev, s_k = jnp.zeros_like(sin1), sin1
    c_prev, c_k = jnp.ones_like(cos1), cos1
    step, power = q, jnp.ones_like(q)
    b, b_u, b_w = sin1, jnp.zeros_like(sin1 * u), math.pi * cos1
    for k in range(2, K_LARGE + 1):
        s_prev, s_k = s_k, 2.0 * cos1 * s_k - s_prev
        c_prev, c_k = c_k, 2.0 * cos1 * c_k - c_prev
        step = step * q2
        power = power * step
        b = b + k * power * s_k
        b_u = b_u - k * (k * k - 1) * (_PI2 / 2.0) * power * s_k
        b_w = b_w + k * k * math.pi * power * c_k
    return b, b_u, b_w


def _log_std_and_grads(u, w):
    """``log f(u | 0, 1, w)`` and its partial derivatives in ``u`` and ``w``."""
    sin1 = jnp.sin(math.pi * w)
    small = use_small_time(u, w, sin1)
    s, s_u, s_w = _small_sums(u, w)
    b, b_u, b_w = _large_sums(u, w, sin1)
    # Double-where: the series not chosen may be <= 0 where it has not converged; give it a
    # harmless value so nothing downstream can be NaN.
    total = jnp.where(small, s, b)
    total = jnp.where(total > 0, total, 1.0)
    lead = jnp.where(small, -0.5 * _LOG_2PI - 1.5 * jnp.log(u) - w**2 / (2.0 * u), math.log(math.pi) - _PI2 * u / 2.0)
    lead_u = jnp.where(small, -1.5 / u + w**2 / (2.0 * u**2), -_PI2 / 2.0)
    lead_w = jnp.where(small, -w / u, 0.0)
    value = lead + jnp.log(total)
    d_u = lead_u + jnp.where(small, s_u, b_u) / total
    d_w = lead_w + jnp.where(small, s_w, b_w) / total
    return value, d_u, d_w


@jax.custom_jvp
def log_standard_density(u: ArrayLike, w: ArrayLike) -> jax.Array:
    """Log density of hitting the lower boundary at time ``u`` for ``v = 0, a = 1``.

    Parameters
    ----------
    u
        Standardised decision time ``(rt - t) / a**2``, > 0 (any shape).
    w
        Relative start point in (0, 1), broadcastable against ``u``.

    Its derivatives are the analytic term-by-term derivatives of the same series, formed in the
    same pass (a custom JVP), which makes gradients about as cheap as the value.
    """
    return _log_std_and_grads(jnp.asarray(u), jnp.asarray(w))[0]


@log_standard_density.defjvp
def _log_standard_density_jvp(primals, tangents):
    u, w = (jnp.asarray(x) for x in primals)
    du, dw = tangents
    value, d_u, d_w = _log_std_and_grads(u, w)
    tangent = d_u * du + d_w * dw
    return value, jnp.broadcast_to(tangent, value.shape)


def _flip(choice, v, z):
    """Map the upper boundary to the lower one: ``v -> -v``, ``z -> 1 - z`` where choice == 1."""
    up = jnp.asarray(choice) == 1
    return jnp.where(up, -v, v), jnp.where(up, 1.0 - z, z)


def wiener_logpdf(rt: ArrayLike, choice: ArrayLike, v: ArrayLike, a: ArrayLike, z: ArrayLike,
                  t: ArrayLike, sv: ArrayLike = 0.0) -> jax.Array:
    """Log joint density of a response time (seconds) and a boundary.

    Parameters
    ----------
    rt
        Response times in seconds, shape ``(T,)`` (or any shape).
    choice
        1 for the upper boundary, 0 for the lower one; same shape as ``rt``.
    v, a, z, t
        Drift, boundary separation, relative start, non-decision time (seconds); scalars or
        arrays broadcastable against ``rt``.
    sv
        Across-trial standard deviation of the drift (normal; 0 for the plain model),
        integrated out in closed form (Blurton et al., 2017).

    Returns
    -------
    Log density per trial (log of 1/seconds). Where ``rt <= t`` the density is zero and the
    result is ``-inf`` with zero gradient; models in ``models/ddm.py`` never reach that value
    because they mix in a contaminant (see there).
    """
    rt, a, t = jnp.asarray(rt), jnp.asarray(a), jnp.asarray(t)
    v, w = _flip(choice, jnp.asarray(v), jnp.asarray(z))
    d = rt - t
    ok = d > 0
    d = jnp.where(ok, d, 1.0)
    u = d / a**2
    if isinstance(sv, (int, float)) and sv == 0:
        log_drift = -v * a * w - v**2 * d / 2.0
    else:
        sv2 = jnp.asarray(sv) ** 2
        one = 1.0 + sv2 * d
        log_drift = ((a * w) ** 2 * sv2 - 2.0 * a * v * w - v**2 * d) / (2.0 * one) - 0.5 * jnp.log(one)
    out = log_standard_density(u, w) - 2.0 * jnp.log(a) + log_drift
    return jnp.where(ok, out, -jnp.inf)


def _log_exprel(x):
    """``log((exp(x) - 1) / x)``, smooth and finite for every real ``x`` (0 at ``x = 0``)."""
    tiny = jnp.abs(x) < 1e-3
    xs = jnp.where(tiny, 1.0, x)
    pos = xs + jnp.log(-jnp.expm1(-jnp.abs(xs))) - jnp.log(jnp.abs(xs))
    neg = jnp.log(-jnp.expm1(-jnp.abs(xs))) - jnp.log(jnp.abs(xs))
    series = x / 2.0 + x**2 / 24.0 - x**4 / 2880.0
    return jnp.where(tiny, series, jnp.where(xs > 0, pos, neg))


def wiener_log_prob(choice: ArrayLike, v: ArrayLike, a: ArrayLike, z: ArrayLike) -> jax.Array:
    """Log probability of absorbing at the chosen boundary (1 upper, 0 lower), closed form.

    ``P(lower) = expm1(x (1 - z)) / expm1(x)`` with ``x = 2 v a``, evaluated as
    ``(1 - z) exprel(x (1 - z)) / exprel(x)`` in log space: exact and finite for every ``v``
    (``1 - z`` at ``v = 0``), with finite gradients. Broadcasts over its arguments.
    """
    v, w = _flip(choice, jnp.asarray(v), jnp.asarray(z))
    # P(lower | v, w) = P(upper | -v, 1 - w) = expm1(x (1 - w)) / expm1(x), x = 2 v a.
    x = 2.0 * v * jnp.asarray(a)
    return jnp.log1p(-w) + _log_exprel(x * (1.0 - w)) - _log_exprel(x)


def full_ddm_logpdf(rt: ArrayLike, choice: ArrayLike, v: ArrayLike, a: ArrayLike, z: ArrayLike,
                    t: ArrayLike, sv: ArrayLike, sz: ArrayLike, st: ArrayLike, *,
                    n_z: int = 7, n_t: int = 13) -> jax.Array:
    """Log density of the full DDM: drift, start-point and non-decision-time variability.

    ``v_trial ~ Normal(v, sv)`` (closed form), ``z_trial ~ Uniform(z - sz/2, z + sz/2)`` and
    ``t_trial ~ Uniform(t, t + st)`` (seconds), both integrated by Gauss-Legendre quadrature
    with ``n_z`` and ``n_t`` nodes. The ``t`` integral runs over ``[t, min(t + st, rt)]`` only,
    where the integrand is smooth; its accuracy against adaptive brute-force integration is
    measured in ``tests/test_wiener.py`` (absolute log error < 1e-6 at the defaults there).
    ``sz`` is the absolute width of the start-point range; it must satisfy
    ``0 <= z - sz/2`` and ``z + sz/2 <= 1``. Shapes broadcast as in :func:`wiener_logpdf`.
    """
    xz, wz = np.polynomial.legendre.leggauss(n_z)
    xt, wt = np.polynomial.legendre.leggauss(n_t)
    e = lambda x: jnp.asarray(x)[..., None, None]  # noqa: E731  (trailing node axes)
    rt, t, st, z, sz = e(rt), e(t), e(st), e(z), e(sz)
    span = jnp.minimum(st, rt - t)                          # part of [t, t + st] before rt
    ok = span > 0
    span_safe = jnp.where(ok, span, st)
    tau = t + span_safe * (xt[None, :] + 1.0) / 2.0          # (..., 1, n_t)
    zz = z + sz * xz[:, None] / 2.0                          # (..., n_z, 1)
    logf = wiener_logpdf(rt, e(choice), e(v), e(a), zz, tau, e(sv))
    log_w = jnp.log(wz / 2.0)[:, None] + jnp.log(wt / 2.0)[None, :]
    out = jax.scipy.special.logsumexp(logf + log_w, axis=(-2, -1))
    out = out + jnp.log(span_safe[..., 0, 0]) - jnp.log(st[..., 0, 0])
    return jnp.where(ok[..., 0, 0], out, -jnp.inf)


def sample_wiener(key: jax.Array, v: ArrayLike, a: ArrayLike, z: ArrayLike, t: ArrayLike,
                  shape: tuple[int, ...], *, step: float = 0.05, du_min: float = 1e-7,
                  chunk: int = 64, max_u: float = 200.0) -> tuple[jax.Array, jax.Array]:
    """Draw ``(rt, choice)`` from the Wiener first-passage distribution.

    Simulates in standard units (time ``u = s / a**2``, boundaries 0 and 1, drift ``v a``) with
    exact Gaussian increments and an exact Brownian-bridge test for a crossing between steps.
    Steps adapt to the distance ``d`` to the nearer boundary, ``du = max(step * d**2, du_min)``,
    so far from the boundaries steps are long and a crossing inside a long step has probability
    below ``exp(-1 / (2 step))``; near a boundary steps shrink, and the crossing time is put at
    the middle of its step, an error of at most ``du_min * a**2 / 2`` seconds in all but those
    rare long-step crossings. Agreement with the analytic density is tested by KS tests.

    Parameters
    ----------
    v, a, z, t
        Parameters as in :func:`wiener_logpdf`, broadcastable to ``shape``.
    shape
        Shape of the draws.
    max_u
        A path still inside after this standard time (probability below
        ``exp(-pi**2 max_u / 2)``) returns ``rt = inf``.

    Returns
    -------
    rt (seconds) and choice (int32, 1 = upper), each of ``shape``.
    """
    dtype = jnp.result_type(float)
    v, a, z, t = (jnp.broadcast_to(jnp.asarray(x, dtype), shape) for x in (v, a, z, t))
    mu = v * a

    def one_step(carry, noise):
        x, u, done, hit = carry
        g, r = noise
        du = jnp.maximum(step * jnp.minimum(x, 1.0 - x) ** 2, du_min)
        x1 = x + mu * du + jnp.sqrt(du) * g
        # P(the bridge from x to x1 touched 0, resp. 1) given both ends inside.
        inside = (x1 > 0) & (x1 < 1)
        p_lo = jnp.exp(-2.0 * x * jnp.clip(x1, 0.0, 1.0) / du)
        p_hi = jnp.exp(-2.0 * (1 - x) * jnp.clip(1 - x1, 0.0, 1.0) / du)
        lo = jnp.where(inside, r < p_lo, x1 <= 0)
        new = jnp.where(inside, r < p_lo + p_hi, True) & ~done
        hit = jnp.where(new, jnp.where(lo, 0, 1), hit)
        u = jnp.where(done, u, u + jnp.where(new, du / 2.0, du))
        return (jnp.where(done | new, x, x1), u, done | new, hit), None

    def cond(state):
        _, (_, u, done, _) = state
        return ~jnp.all(done) & (jnp.max(jnp.where(done, 0.0, u)) < max_u)

    def body(state):
        key, carry = state
        key, k1, k2 = jax.random.split(key, 3)
        noise = (jax.random.normal(k1, (chunk, *shape), dtype), jax.random.uniform(k2, (chunk, *shape), dtype))
        carry, _ = jax.lax.scan(one_step, carry, noise)
        return key, carry

    init = (z, jnp.zeros(shape, dtype), jnp.zeros(shape, bool), jnp.zeros(shape, jnp.int32))
    _, (_, u, done, hit) = jax.lax.while_loop(cond, body, (key, init))
    return jnp.where(done, t + u * a**2, jnp.inf), hit
