"""Divergences between two population distributions of one parameter, pure JAX.

Both populations come from one location-scale family on the unconstrained scale, with the
standard density ``p0`` shared by both: the normal (``nu=None``) or a Student-t with ``nu``
degrees of freedom (a cogfit fit has one ``nu`` per parameter, shared by populations). A member's
unconstrained value is ``m + s * t``, ``t ~ p0``; its natural value is ``transform.forward`` of it.
Every function takes scalars ``(ma, sa, mb, sb[, nu])`` (``a`` the reference) and returns a
scalar; batch them with :func:`jax.vmap` (draws, splits).

KL, Jensen-Shannon and the overlap are invariant under one monotone map of both populations,
so they are computed on the unconstrained scale (after standardising by ``a``: ``b`` becomes
``((mb - ma) / sa, sb / sa)``). The Wasserstein distances are not: they are computed on the
natural scale, in the parameter's units.

What each does as one population's spread ``sb -> 0`` (an LLM "population" that is one model):

``kl(a, b)``  KL(a || b) in nats: grows like ``1 / sb**2`` (b puts no mass where a lives); finite
    for any ``sb > 0`` representable in the precision.
``kl(b, a)``  grows slowly, like ``log(1 / sb)`` (the entropy of b goes to -inf).
``js``  Jensen-Shannon divergence in bits, in [0, 1]: tends to 1 (a point mass and a density are
    mutually singular), wherever b's point lies. It then measures spread, not location.
``overlap``  the overlap coefficient ``integral of min(pa, pb)``, in [0, 1]: tends to 0, likewise.
``wasserstein``  W1 (and W2) on the natural scale: tends to the distance from a's members to b's
    point, ``E|X_a - f(mb)|``: stays informative about location. The primary measure.

Numerics: the normal KL is closed form; the Student-t KL and all Jensen-Shannon values are
trapezoid sums over the union of two grids ``m + s * sinh(u)``, one around each population, so a
narrow population is resolved wherever it lies (relative error ~1e-4); the overlap is closed
form from the (at most two) points where the densities cross (``p0``'s CDF); the Wasserstein
integrals are Gauss-Legendre sums over ``t``, split where the two quantile functions cross (the
integrand's kink). Grid tails beyond ``|t| = T_MAX`` (12 normal, 1e6 Student-t) are left out.
For Student-t populations W1 and W2 are *trimmed*: the quantile coupling over levels
``[W_TRIM, 1 - W_TRIM]`` (0.1% each side), because a Student-t population of a positive
(log-scale) parameter has no natural-scale mean and an infinite W1. Natural values are clipped
to the precision's range / 1e6 so no sum overflows.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import betainc, gammaln, ndtr

from cogfit._transforms import Real, Transform

LOG2 = float(np.log(2.0))
T_MAX = {"normal": 12.0, "student_t": 1e6}
GRID = {"normal": 257, "student_t": 801}      # sinh-grid points per population
GAUSS = {"normal": 64, "student_t": 96}       # Gauss-Legendre nodes per side of the W crossing
W_TRIM = 1e-3     # Student-t: W1/W2 over quantile levels [W_TRIM, 1 - W_TRIM] (the mean need not exist)


def _family(nu) -> str:
    return "normal" if nu is None else "student_t"


def log_p0(t: jax.Array, nu=None) -> jax.Array:
    """Log density of the standard family member at ``t`` (normal, or Student-t with ``nu``)."""
    if nu is None:
        return -0.5 * t * t - 0.5 * jnp.log(2 * jnp.pi)
    return (gammaln((nu + 1) / 2) - gammaln(nu / 2) - 0.5 * jnp.log(nu * jnp.pi)
            - (nu + 1) / 2 * jnp.log1p(t * t / nu))


def cdf0(t: jax.Array, nu=None) -> jax.Array:
    """CDF of the standard family member (``t = +-inf`` allowed)."""
    if nu is None:
        return ndtr(t)
    tail = 0.5 * betainc(nu / 2, 0.5, nu / (nu + t * t))
    return jnp.where(t > 0, 1.0 - tail, tail)


def upper_quantile0(eps, nu, *, iterations: int = 60) -> jax.Array:
    """``t`` with ``P(T > t) = eps`` for the standard Student-t (bisection on ``asinh(t)``)."""
    def step(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        above = cdf0(-jnp.sinh(mid), nu) > eps
        return jnp.where(above, mid, lo), jnp.where(above, hi, mid)

    dtype = jnp.result_type(nu, float)
    lo, hi = jax.lax.fori_loop(0, iterations, step, (jnp.zeros((), dtype),
                                                     jnp.asarray(np.arcsinh(T_MAX["student_t"]), dtype)))
    return jnp.sinh(0.5 * (lo + hi))


def _standardise(ma, sa, mb, sb):
    """``b`` in units of ``a`` (a becomes (0, 1)); the divergences below are affine-invariant."""
    return (mb - ma) / sa, sb / sa


def _grid(nu):
    fam = _family(nu)
    u = np.linspace(-np.arcsinh(T_MAX[fam]), np.arcsinh(T_MAX[fam]), GRID[fam])
    return np.sinh(u)


def _merged(m, s, nu):
    """Sorted union of the two sinh grids around N(0, 1)-like ``a`` and ``(m, s)``-like ``b``."""
    t = jnp.asarray(_grid(nu), jnp.result_type(m, float))
    return jnp.sort(jnp.concatenate([t, m + s * t]))


def _trapezoid(x, g):
    return jnp.sum(0.5 * (g[1:] + g[:-1]) * (x[1:] - x[:-1]))


def _logps(x, m, s, nu):
    return log_p0(x, nu), log_p0((x - m) / s, nu) - jnp.log(s)


def _xlogr(logp, logr):
    """``p * logr`` with ``p = exp(logp)``, 0 where p underflows (never 0 * inf)."""
    p = jnp.exp(logp)
    return jnp.where(p > 0, p * logr, 0.0)


def kl(ma, sa, mb, sb, nu=None) -> jax.Array:
    """KL(a || b) in nats (same on the natural and the unconstrained scale)."""
    m, s = _standardise(ma, sa, mb, sb)
    if nu is None:
        return jnp.log(s) + (1.0 + m * m) / (2 * s * s) - 0.5
    x = _merged(m, s, nu)
    la, lb = _logps(x, m, s, nu)
    return jnp.maximum(_trapezoid(x, _xlogr(la, la - lb)), 0.0)


def js(ma, sa, mb, sb, nu=None) -> jax.Array:
    """Jensen-Shannon divergence in bits, in [0, 1]."""
    m, s = _standardise(ma, sa, mb, sb)
    x = _merged(m, s, nu)
    la, lb = _logps(x, m, s, nu)
    lm = jnp.logaddexp(la, lb) - LOG2
    g = 0.5 * (_xlogr(la, la - lm) + _xlogr(lb, lb - lm))
    return jnp.clip(_trapezoid(x, g) / LOG2, 0.0, 1.0)


def _crossings(m, s, nu):
    """The points where N/t(0, 1) and (m, s) have equal density: roots of ``A x^2 + B x + C``."""
    if nu is None:
        k, c0 = 1.0, -2 * jnp.log(s)              # x^2 = ((x - m) / s)^2 + 2 log s
    else:
        k = s ** (2 / (nu + 1))                   # 1 + x^2/nu = k (1 + ((x - m) / s)^2 / nu)
        c0 = nu * (1 - k)
    A, B, C = s * s - k, 2 * k * m, -k * m * m + s * s * c0   # times s^2 (nu): A x^2 + B x + C = 0
    disc = jnp.maximum(B * B - 4 * A * C, 0.0)
    q = -0.5 * (B + jnp.where(B >= 0, 1.0, -1.0) * jnp.sqrt(disc))
    r1 = jnp.where(A != 0, q / jnp.where(A != 0, A, 1.0), -jnp.inf * jnp.sign(q))
    r2 = jnp.where(q != 0, C / jnp.where(q != 0, q, 1.0), jnp.inf)
    return jnp.minimum(r1, r2), jnp.maximum(r1, r2)


def overlap(ma, sa, mb, sb, nu=None) -> jax.Array:
    """Overlap coefficient ``integral of min(pa, pb)``, in [0, 1] (1: identical)."""
    m, s = _standardise(ma, sa, mb, sb)
    r1, r2 = _crossings(m, s, nu)
    Fa = [cdf0(r1, nu), cdf0(r2, nu)]
    Fb = [cdf0((r1 - m) / s, nu), cdf0((r2 - m) / s, nu)]
    Sa, Sb = cdf0(-r2, nu), cdf0(-(r2 - m) / s, nu)      # upper tails without cancellation
    out = (jnp.minimum(Fa[0], Fb[0]) + jnp.minimum(Fa[1] - Fa[0], Fb[1] - Fb[0]) + jnp.minimum(Sa, Sb))
    same = (m == 0) & (s == 1)
    return jnp.where(same, 1.0, jnp.clip(out, 0.0, 1.0))


def _gauss_legendre(lo, hi, n):
    x, w = np.polynomial.legendre.leggauss(n)
    mid, half = 0.5 * (hi + lo), 0.5 * (hi - lo)
    return mid + half * jnp.asarray(x, lo.dtype), half * jnp.asarray(w, lo.dtype)


def _wasserstein_pieces(ma, sa, mb, sb, nu, transform):
    """``(u, w, d)``: nodes on each side of the quantile crossing, weights, natural-scale gaps."""
    fam = _family(nu)
    dtype = jnp.result_type(ma, sa, mb, sb, float)
    U = np.arcsinh(T_MAX[fam]) if nu is None else jnp.arcsinh(upper_quantile0(W_TRIM, jnp.asarray(nu, dtype)))
    dm, ds = mb - ma, sa - sb                      # ma + sa t = mb + sb t  at  t* = dm / ds
    tstar = jnp.where(ds != 0, dm / jnp.where(ds != 0, ds, 1.0), jnp.inf)
    ustar = jnp.arcsinh(jnp.nan_to_num(tstar)).astype(dtype)
    n = GAUSS[fam]
    U = jnp.asarray(U, dtype)
    ustar = jnp.clip(ustar, -U, U)
    ul, wl = _gauss_legendre(-U, ustar, n)
    ur, wr = _gauss_legendre(ustar, U, n)
    u, w = jnp.concatenate([ul, ur]), jnp.concatenate([wl, wr])
    t = jnp.sinh(u)
    w = w * jnp.exp(log_p0(t, nu)) * jnp.cosh(u)
    big = jnp.finfo(dtype).max / 1e6
    fa = jnp.clip(transform.forward(ma + sa * t), -big, big)
    fb = jnp.clip(transform.forward(mb + sb * t), -big, big)
    return ul.shape[0], w, fa - fb


def wasserstein(ma, sa, mb, sb, nu=None, *, transform: Transform = Real(), order: int = 1) -> jax.Array:
    """Wasserstein-``order`` distance (1 or 2) on the natural scale, in the parameter's units:
    ``(E_t |f(ma + sa t) - f(mb + sb t)|^order)^(1/order)``, ``t ~ p0`` (quantile coupling)."""
    n, w, d = _wasserstein_pieces(ma, sa, mb, sb, nu, transform)
    if order == 1:
        return jnp.abs(jnp.sum(w[:n] * d[:n])) + jnp.abs(jnp.sum(w[n:] * d[n:]))
    if order == 2:
        return jnp.sqrt(jnp.sum(w * d * d))
    raise ValueError(f"order must be 1 or 2, not {order!r}")


MEASURES = ("w1", "js", "kl_ref_pop", "kl_pop_ref", "overlap")
UNITS = {"w1": "natural units", "w2": "natural units", "js": "bits", "kl_ref_pop": "nats",
         "kl_pop_ref": "nats", "overlap": "share (1 = identical)"}


def all_measures(ma, sa, mb, sb, nu=None, *, transform: Transform = Real()) -> dict[str, jax.Array]:
    """Every measure of :data:`MEASURES` (reference ``a``, population ``b``) as a dict of scalars."""
    return {"w1": wasserstein(ma, sa, mb, sb, nu, transform=transform),
            "js": js(ma, sa, mb, sb, nu),
            "kl_ref_pop": kl(ma, sa, mb, sb, nu),
            "kl_pop_ref": kl(mb, sb, ma, sa, nu),
            "overlap": overlap(ma, sa, mb, sb, nu)}
