"""The Wiener first-passage density against independent high-precision references (mpmath)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
import scipy.integrate as si
import scipy.stats as st

from cogfit import wiener as W

# The grid of the issue: (rt - t) / a^2 in [1e-4, 50], z in [0.01, 0.99], v in [-8, 8], a in [0.3, 5].
U = np.geomspace(1e-4, 50.0, 23)
Z = np.array([0.01, 0.05, 0.2, 0.5, 0.8, 0.95, 0.99])
V = np.array([-8.0, -2.5, 0.0, 1.0, 8.0])
A = np.array([0.3, 1.3, 5.0])
T0 = 0.2


@functools.cache
def _ref_log_std(u: float, w: float) -> mp.mpf:
    """log f(u | 0, 1, w) at 60 digits: image series (u < 1) or eigenfunction series, to convergence."""
    with mp.workdps(60):
        u, w = mp.mpf(u), mp.mpf(w)
        if u < 1:
            s = mp.fsum((w + 2 * k) * mp.exp(-(w + 2 * k) ** 2 / (2 * u)) for k in range(-25, 26))
            return mp.log(s) - mp.log(2 * mp.pi * u**3) / 2
        s = mp.fsum(k * mp.exp(-k * k * mp.pi**2 * u / 2) * mp.sin(k * mp.pi * w) for k in range(1, 40))
        return mp.log(mp.pi * s)


def _ref_logpdf(u, choice, v, a, z) -> float:
    """Reference log density of (rt = T0 + u a^2, choice) from the mpmath standard density."""
    with mp.workdps(60):
        v, a, w = mp.mpf(v), mp.mpf(a), mp.mpf(z)
        if choice == 1:
            v, w = -v, 1 - w
        d = mp.mpf(u) * a**2
        return float(_ref_log_std(u, float(w)) - 2 * mp.log(a) - v * a * w - v**2 * d / 2)


@pytest.fixture(scope="module")
def grid():
    u, c, v, a, z = (x.ravel() for x in np.meshgrid(U, [0, 1], V, A, Z, indexing="ij"))
    ref = np.array([_ref_logpdf(*row) for row in zip(u, c, v, a, z)])
    return u, c, v, a, z, ref


def test_reference_series_agree_with_each_other_and_with_jacobi_theta():
    # The two mpmath series (and mpmath's theta function) must agree where both converge, so the
    # reference does not depend on where it switches.
    for u in (0.05, 0.3, 1.0, 3.0):
        for w in (0.01, 0.5, 0.99):
            with mp.workdps(60):
                uu, ww = mp.mpf(u), mp.mpf(w)
                small = mp.log(mp.fsum((ww + 2 * k) * mp.exp(-(ww + 2 * k) ** 2 / (2 * uu))
                                       for k in range(-60, 61)) / mp.sqrt(2 * mp.pi * uu**3))
                large = mp.log(mp.pi * mp.fsum(k * mp.exp(-k * k * mp.pi**2 * uu / 2) * mp.sin(k * mp.pi * ww)
                                               for k in range(1, 200)))
                theta = mp.log(-(mp.pi / 4) * mp.jtheta(3, mp.pi * ww / 2, mp.exp(-mp.pi**2 * uu / 2), 1))
                assert abs(small - large) < 1e-40
                assert abs(small - theta) < 1e-40


def test_float64_log_density_error_below_1e_8(grid):
    u, c, v, a, z, ref = grid
    with jax.enable_x64(True):
        got = np.asarray(W.wiener_logpdf(T0 + u * a**2, c, v, a, z, T0))
    assert got.dtype == np.float64
    err = np.abs(got - ref)
    assert np.all(np.isfinite(got))
    assert err.max() <= 1e-8, (err.max(), u[err.argmax()], z[err.argmax()], v[err.argmax()])
    assert ref.min() < -1000  # the grid reaches deep tails, which must stay exact in log space


def test_float32_relative_density_error_below_1e_4(grid):
    u, c, v, a, z, ref = grid
    f32 = lambda x: np.asarray(x, np.float32)  # noqa: E731
    # t = 0 here: in float32, rt - t itself rounds (relative error 1e-7 / (1 - t / rt)), an input
    # error that no density formula can undo. The density is the same function of rt - t.
    got = np.asarray(W.wiener_logpdf(f32(u * a**2), c, f32(v), f32(a), f32(z), f32(0.0)))
    assert got.dtype == np.float32
    keep = ref > -30
    rel = np.abs(np.expm1(got[keep].astype(float) - ref[keep]))
    assert keep.sum() > 300
    assert rel.max() <= 1e-4, rel.max()


def test_series_choice_and_term_counts_cover_the_whole_domain():
    u, w = (x.ravel() for x in np.meshgrid(np.geomspace(1e-6, 1e3, 300), np.linspace(1e-3, 1 - 1e-3, 201)))
    with jax.enable_x64(True):
        small = np.asarray(W.use_small_time(u, w))
        log_eps = np.log(W.REL_EPS) + np.minimum(W._log_lead_small(u, w), W._log_lead_large(u, w))
        ks = np.asarray(W.n_terms_small(u, w, log_eps))
        kl = np.asarray(W.n_terms_large(u, log_eps))
    assert small.any() and (~small).any()
    assert ks[small].max() <= W.K_SMALL
    assert kl[~small].max() <= W.K_LARGE
    assert u[small].max() < 0.5 and u[~small].min() > 0.1  # one switch region, where both converge


@pytest.mark.parametrize("v,a,z", [(1.0, 1.5, 0.5), (-3.0, 0.8, 0.2), (0.0, 2.0, 0.7), (8.0, 0.5, 0.9)])
def test_density_integrates_to_closed_form_choice_probability(v, a, z):
    with jax.enable_x64(True):
        total = 0.0
        for c in (0, 1):
            logf = jax.jit(lambda r: W.wiener_logpdf(r, c, v, a, z, 0.0))  # noqa: B023
            mass = si.quad(lambda r: float(np.exp(logf(r))), 0, np.inf, limit=400, epsabs=1e-12,  # noqa: B023
                           epsrel=1e-10)[0]
            p = float(np.exp(W.wiener_log_prob(c, v, a, z)))
            # independent closed form: P(upper) = (1 - exp(-2 v a z)) / (1 - exp(-2 v a))
            with mp.workdps(40):
                pu = z if v == 0 else (1 - mp.exp(-2 * v * a * z)) / (1 - mp.exp(-2 * v * a))
            assert abs(p - float(pu if c == 1 else 1 - pu)) < 1e-12
            assert abs(mass - p) < 1e-8
            total += p
        assert abs(total - 1) < 1e-12


def test_choice_probability_is_smooth_through_zero_drift():
    with jax.enable_x64(True):
        v = jnp.array([-1e-9, 0.0, 1e-9, 1e-4, -1e-4])
        lp = W.wiener_log_prob(1, v, 1.5, 0.3)
        np.testing.assert_allclose(np.exp(lp[:3]), 0.3, rtol=1e-8)
        g = jax.grad(lambda vv: W.wiener_log_prob(1, vv, 1.5, 0.3))(0.0)
        # d/dv log P(upper) at v = 0 is a (1 - z)... exactly: a (1 - z) (by the series).
        assert abs(float(g) - 1.5 * (1 - 0.3)) < 1e-8
        assert np.all(np.isfinite(np.asarray(W.wiener_log_prob(0, jnp.array([-500.0, 500.0]), 5.0, 0.5))))


@pytest.mark.parametrize("x64", [False, True])
def test_gradients_finite_over_the_whole_grid(x64):
    u, c, v, a, z = (x.ravel() for x in np.meshgrid(U, [0, 1], V, A, Z, indexing="ij"))

    def total(p):
        vv, aa, zz, tt, sv = p
        return jnp.sum(W.wiener_logpdf(T0 + u * a**2, c, vv, aa, zz, tt, sv))

    with jax.enable_x64(x64):
        dt = jnp.float64 if x64 else jnp.float32
        for sv in (0.0, 1.0):
            p = tuple(jnp.asarray(x, dt) for x in (v, a, z, np.full_like(u, T0 * 0.999), np.full_like(u, sv)))
            g = jax.jit(jax.grad(total))(p)
            for name, gi in zip("v a z t sv".split(), g):
                assert np.all(np.isfinite(np.asarray(gi))), (name, x64)
        def total(vv):
            return jnp.sum(W.wiener_log_prob(c, vv, jnp.asarray(a, dt), jnp.asarray(z, dt)))

        gp = jax.jit(jax.grad(total))(jnp.asarray(v, dt))
        assert np.all(np.isfinite(np.asarray(gp)))


def test_gradients_match_finite_differences():
    with jax.enable_x64(True):
        x0 = jnp.array([0.7, 1.4, 0.45, 0.25, 0.6])
        f = jax.jit(lambda x: jnp.sum(W.wiener_logpdf(jnp.array([0.3, 0.6, 1.5, 4.0]), jnp.array([1, 0, 1, 0]),  # noqa: E731
                                              x[0], x[1], x[2], x[3], x[4])))
        g = np.asarray(jax.grad(f)(x0))
        for i in range(5):
            e = np.zeros(5)
            e[i] = 1e-6
            fd = (f(x0 + e) - f(x0 - e)) / 2e-6
            assert abs(g[i] - fd) < 1e-6 * max(1, abs(fd))


def test_rt_not_after_t_is_minus_inf_with_zero_gradient():
    with jax.enable_x64(True):
        f = lambda t: W.wiener_logpdf(0.3, 1, 1.0, 1.0, 0.5, t)  # noqa: E731
        assert f(0.3) == -np.inf and f(0.4) == -np.inf
        assert float(jax.grad(f)(0.4)) == 0.0


@pytest.mark.parametrize("rt,c,v,a,z,sv", [(0.5, 1, 1.0, 1.2, 0.5, 1.0), (1.7, 0, 2.0, 2.0, 0.3, 2.0),
                                          (0.31, 1, -1.0, 0.7, 0.6, 0.5)])
def test_sdv_closed_form_matches_integral_over_drift(rt, c, v, a, z, sv):
    with jax.enable_x64(True):
        got = float(W.wiener_logpdf(rt, c, v, a, z, 0.2, sv))
        logf = jax.jit(lambda x: W.wiener_logpdf(rt, c, x, a, z, 0.2))
        f = lambda x: float(np.exp(logf(x))) * st.norm.pdf(x, v, sv)  # noqa: E731
        ref = si.quad(f, v - 12 * sv, v + 12 * sv, epsabs=0, epsrel=1e-12, limit=200)[0]
        assert abs(got - np.log(ref)) < 1e-9
        assert float(W.wiener_logpdf(rt, c, v, a, z, 0.2, 0.0)) == float(W.wiener_logpdf(rt, c, v, a, z, 0.2))


@pytest.mark.parametrize("rt,c", [(0.45, 1), (0.9, 0), (2.5, 1), (0.36, 0)])
def test_full_ddm_quadrature_error_against_brute_force(rt, c):
    """Gauss-Legendre (7 x 13 nodes) vs adaptive 2-D integration: abs log error < 1e-6."""
    v, a, z, t, sv, sz, st_ = 1.2, 1.4, 0.55, 0.3, 0.8, 0.3, 0.12
    with jax.enable_x64(True):
        got = float(W.full_ddm_logpdf(rt, c, v, a, z, t, sv, sz, st_))
        logf = jax.jit(lambda tau, w: W.wiener_logpdf(rt, c, v, a, w, tau, sv))
        ref = si.dblquad(lambda tau, w: float(np.exp(logf(tau, w))), z - sz / 2, z + sz / 2, t, min(t + st_, rt),
                         epsabs=0, epsrel=1e-11)[0]
        ref /= sz * st_
        assert abs(got - np.log(ref)) < 1e-6
        # no variability limit: tiny sz and st give the plain density
        tiny = float(W.full_ddm_logpdf(rt, c, v, a, z, t, sv, 1e-9, 1e-9))
        assert abs(tiny - float(W.wiener_logpdf(rt, c, v, a, z, t, sv))) < 1e-6


@pytest.mark.parametrize("seed,v,a,z", [(0, 1.0, 1.5, 0.5), (1, -2.0, 1.0, 0.3), (2, 0.5, 2.5, 0.7)])
def test_sampler_matches_density_by_ks_and_choice_proportion(seed, v, a, z):
    n, t = 6000, 0.3
    with jax.enable_x64(True):
        rt, ch = W.sample_wiener(jax.random.PRNGKey(seed), v, a, z, t, (n,))
        rt, ch = np.asarray(rt), np.asarray(ch)
        p = float(np.exp(W.wiener_log_prob(1, v, a, z)))
        assert abs(ch.mean() - p) < 4 * np.sqrt(p * (1 - p) / n)
        grid = np.concatenate([t + np.geomspace(1e-5, 0.05, 2000), np.linspace(t + 0.05, rt.max() + 2, 20000)])
        for c in (0, 1):
            dens = np.exp(np.asarray(W.wiener_logpdf(grid, np.full(grid.shape, c), v, a, z, t)))
            cdf = si.cumulative_trapezoid(dens, grid, initial=0)
            cdf /= cdf[-1]
            r = rt[ch == c]
            assert st.kstest(r, lambda x: np.interp(x, grid, cdf)).pvalue > 1e-4  # noqa: B023


def test_analytic_series_derivatives_match_finite_differences_over_the_grid():
    """The custom JVP (term-by-term derivatives) against central differences of the value."""
    with jax.enable_x64(True):
        u, w = (x.ravel() for x in np.meshgrid(np.geomspace(1e-4, 50, 120), Z))
        grad = jax.jit(jax.vmap(jax.grad(W.log_standard_density, argnums=(0, 1))))
        g_u, g_w = (np.asarray(g) for g in grad(u, w))
        h = 1e-6
        f = jax.jit(W.log_standard_density)
        fd_u = (f(u * (1 + h), w) - f(u * (1 - h), w)) / (2 * h * u)
        fd_w = (f(u, w * (1 + h)) - f(u, w * (1 - h))) / (2 * h * w)
        np.testing.assert_allclose(g_u, fd_u, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(g_w, fd_w, rtol=1e-6, atol=1e-6)
