"""Prospect-theory likelihoods against an independent high-precision computation and textbook values."""

import itertools

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

import cogfit
from cogfit import Record

RNG = np.random.default_rng(20261130)


# ---- independent reference: explicit sorting and cumulative sums in 30-digit mpmath ----------
# Probabilities are renormalised to sum to exactly 1 (the lottery meant): near a cumulative
# probability of 1 the weighting functions move by (1 - P)**gamma, so float64 sums that miss 1
# by 1e-16 would shift a weight by ~1e-5 (gamma 0.3).

def w_tk(p, g):
    """TK92 weighting; exact in whatever arithmetic ``p`` carries (float or mpmath)."""
    return p**g / (p**g + (1 - p) ** g) ** (1 / g)


def w_pr_mp(p, g, d=1.0):
    return mp.exp(-mp.mpf(float(d)) * (-mp.log(p)) ** mp.mpf(float(g))) if p > 0 else mp.mpf(0)


def cpt_value_ref(x, p, alpha, beta, lam, wg, wl, ref=0.0):
    """CPT value; ``ref > 0``: utility ``2 ref / (1 + lam) * (x / ref)**alpha`` (losses likewise)."""
    with mp.workdps(30):
        ps = [mp.mpf(float(b)) for b in p]
        ps = [b / mp.fsum(ps) for b in ps]
        alpha, beta, lam = (mp.mpf(float(v)) for v in (alpha, beta, lam))
        r = mp.mpf(float(ref)) if ref > 0 else mp.mpf(1)
        k = 2 * r / (1 + lam) if ref > 0 else mp.mpf(1)
        v = mp.mpf(0)
        cum = mp.mpf(0)
        for xi, pi in sorted([(mp.mpf(float(a)), b) for a, b in zip(x, ps) if a > 0], key=lambda t: -t[0]):
            v += (wg(min(cum + pi, 1)) - wg(cum)) * k * (xi / r) ** alpha   # the sum may pass 1 by 1e-30
            cum += pi
        cum = mp.mpf(0)
        for xi, pi in sorted([(mp.mpf(float(a)), b) for a, b in zip(x, ps) if a < 0], key=lambda t: t[0]):
            v += (wl(min(cum + pi, 1)) - wl(cum)) * (-k * lam * (-xi / r) ** beta)
            cum += pi
        return float(v)


def ref_loglik(name, th, x_a, p_a, x_b, p_b, choice, ref=0.0):
    beta = th.get("beta", th["alpha"])
    if name == "cpt":
        wg, wl = (lambda q: w_tk(q, th["gamma"])), (lambda q: w_tk(q, th["delta"]))
    elif name == "cpt_prelec1":
        wg, wl = (lambda q: w_pr_mp(q, th["gamma"])), (lambda q: w_pr_mp(q, th["delta"]))
    elif name == "cpt_prelec2":
        wg, wl = (lambda q: w_pr_mp(q, th["gamma"], th["eta_g"])), (lambda q: w_pr_mp(q, th["delta"], th["eta_l"]))
    else:
        wg = wl = lambda q: q
    out = []
    for t in range(len(choice)):
        va = cpt_value_ref(x_a[t], p_a[t], th["alpha"], beta, th["lam"], wg, wl, ref)
        vb = cpt_value_ref(x_b[t], p_b[t], th["alpha"], beta, th["lam"], wg, wl, ref)
        eta = th["tau"] * (vb - va) + th.get("bias", 0.0)  # log P(b) = -log(1 + exp(-eta)), no overflow
        out.append(-np.logaddexp(0.0, -eta) if choice[t] == 1 else -np.logaddexp(0.0, eta))
    return np.array(out)


def random_lotteries(n, k):
    x = RNG.integers(-50, 51, size=(2, n, k)).astype(float)
    x[:, : n // 4, 1] = x[:, : n // 4, 0]  # some tied outcomes
    x[:, n // 4 : n // 3, 0] = 0.0  # some zero outcomes
    p = RNG.dirichlet(np.ones(k), size=(2, n))
    p[:, : n // 8] = np.eye(k)[0]  # some degenerate (sure) lotteries, with zero probabilities
    return x, p


def random_theta(model):
    th = {}
    for prm in model.params:
        th[prm.name] = float(prm.transform.forward(RNG.normal(0, 0.8)))
    return th


CPT_MODELS = ["cpt", "cpt_shared", "cpt_prelec1", "cpt_prelec2", "cpt_linear", "cpt_bias", "cpt_linear_bias"]


def _trials(x, p, choice, dtype=jnp.float64):
    return Record(x_a=jnp.asarray(x[0], dtype), p_a=jnp.asarray(p[0], dtype), x_b=jnp.asarray(x[1], dtype),
                  p_b=jnp.asarray(p[1], dtype), choice=jnp.asarray(choice))


def _weighting(name):
    """``ref_loglik``'s name for a registered CPT model (``_shared`` and ``_bias`` use their base's)."""
    base = name.removesuffix("_bias")
    return "cpt" if base == "cpt_shared" else base


@pytest.mark.parametrize("name", CPT_MODELS)
@pytest.mark.parametrize("k", [2, 3, 5])
def test_cpt_matches_numpy_reference(name, k):
    model = cogfit.models.get(name)
    x, p = random_lotteries(60, k)
    choice = RNG.integers(0, 2, 60)
    with jax.enable_x64(True):
        for _ in range(3):
            th = random_theta(model)
            got = np.asarray(model.loglik(model.theta({k_: jnp.float64(v) for k_, v in th.items()}),
                                          _trials(x, p, choice)))
            want = ref_loglik(_weighting(name), th, x[0], p[0], x[1], p[1], choice)
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", CPT_MODELS)
def test_cpt_reference_stake_matches_numpy_reference(name):
    """``ref > 0``: utility ``2 ref / (1 + lam) * (x / ref)**alpha`` (losses likewise), 30-digit reference."""
    model = cogfit.models.get(name).variant(name, fix={"ref": 16.0})
    assert model.fixed == {"ref": 16.0} and model.param_names == cogfit.models.get(name).param_names
    x, p = random_lotteries(40, 3)
    choice = RNG.integers(0, 2, 40)
    with jax.enable_x64(True):
        for _ in range(2):
            th = random_theta(model)
            got = np.asarray(model.loglik(model.theta({k: jnp.float64(v) for k, v in th.items()}),
                                          _trials(x, p, choice)))
            want = ref_loglik(_weighting(name), th, x[0], p[0], x[1], p[1], choice, ref=16.0)
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", ["cpt", "cpt_prelec2_bias", "cpt_linear_bias"])
def test_cpt_reference_stake_is_a_reparameterisation(name):
    """``ref > 0`` gives the choice probabilities of ``ref = 0`` at ``tau' = tau 2 / (1 + lam) ref**(1 - alpha)``
    and ``lam' = lam ref**(alpha - beta)``: the same family, only tau (and lam, with two curvatures) renamed."""
    plain = cogfit.models.get(name)
    scaled = plain.variant(name, fix={"ref": 7.5})
    x, p = random_lotteries(50, 2)
    choice = RNG.integers(0, 2, 50)
    with jax.enable_x64(True):
        for _ in range(3):
            th = random_theta(plain)
            beta = th.get("beta", th["alpha"])
            th_plain = th | {"tau": th["tau"] * 2 / (1 + th["lam"]) * 7.5 ** (1 - th["alpha"]),
                             "lam": th["lam"] * 7.5 ** (th["alpha"] - beta)}
            got = scaled.loglik(scaled.theta({k: jnp.float64(v) for k, v in th.items()}), _trials(x, p, choice))
            want = plain.loglik(plain.theta({k: jnp.float64(v) for k, v in th_plain.items()}), _trials(x, p, choice))
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_variant_sets_constants_and_rejects_unknown_names():
    cpt = cogfit.models.get("cpt")
    assert cpt.variant("cpt", fix={"ref": 3.0}).fixed == {"ref": 3.0} and cpt.fixed == {"ref": 0.0}
    with pytest.raises(KeyError, match="refx"):
        cpt.variant("cpt", fix={"refx": 3.0})


@pytest.mark.parametrize("name", ["cpt_linear_bias", "cpt"])
def test_cpt_float32_accurate_near_log_utility_limit(name):
    """alpha -> 0 with tau * alpha fixed (log utility): float32 keeps the lotteries' difference.

    A NUTS chain on spektor reached alpha = 2.6e-7, tau = 6.9e7, where the direct sum of
    |x|**alpha ~ 1 lost 33 nats of one participant's float32 log-likelihood, and the noisy
    potential froze the step size at 1e-7. Reference: float64 numpy.
    """
    model = cogfit.models.get(name)
    x = RNG.integers(1, 51, size=(2, 200, 2)).astype(float) * np.array([1.0, -1.0])  # mixed 50/50
    p = np.full((2, 200, 2), 0.5)
    choice = RNG.integers(0, 2, 200)
    for alpha in (1e-6, 1e-4):
        th = {prm.name: 1.0 for prm in model.params} | {"alpha": alpha, "tau": 2.0 / alpha, "lam": 1.3}
        th = th | ({"bias": 0.2} if "bias" in th else {}) | ({"beta": 2 * alpha} if "beta" in th else {})
        got = np.asarray(model.loglik(model.theta({k: jnp.float32(v) for k, v in th.items()}),
                                      _trials(x, p, choice, jnp.float32)))
        want = ref_loglik(_weighting(name), th, x[0], p[0], x[1], p[1], choice)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)


def test_mixed_lottery_ranks_gains_and_losses_separately():
    """A mixed lottery: gains weighted by w+ of decumulative gain probability, losses by w-."""
    from cogfit.models.prospect import decision_weights, w_tk92

    with jax.enable_x64(True):
        x = jnp.array([100.0, 50.0, -20.0, -80.0], jnp.float64)
        p = jnp.array([0.1, 0.4, 0.3, 0.2], jnp.float64)
        w = np.asarray(decision_weights(x, p,
                                        lambda P, Q: w_tk92(P, 0.61, Q), lambda P, Q: w_tk92(P, 0.69, Q)))
    wp, wm = (lambda q: w_tk(q, 0.61)), (lambda q: w_tk(q, 0.69))
    want = [wp(0.1), wp(0.5) - wp(0.1), wm(0.5) - wm(0.2), wm(0.2)]
    np.testing.assert_allclose(w, want, rtol=1e-12)


@pytest.mark.parametrize("weighting", ["cpt", "cpt_prelec1"])
def test_weights_exact_when_float32_probabilities_miss_one(weighting):
    """0.45 and 0.55 in float32 sum to 0.99999997; with curvature 0.3 the worst gain's weight
    ``w(1) - w(0.55)`` moved by 2% when ``1 - P`` was taken from that sum (3e-8 ** 0.3 = 0.005).
    The complements are summed from the other outcomes, so float32 matches float64."""
    model = cogfit.models.get(weighting)
    th = {"alpha": 0.095, "beta": 1.995, "lam": 1.0, "gamma": 0.303, "delta": 1.443, "tau": 20.0}
    trials = dict(x_a=[[33.0, 36.0]], p_a=[[0.45, 0.55]], x_b=[[34.0, -11.0]], p_b=[[0.95, 0.05]], choice=[1])
    out = {}
    for x64 in (False, True):
        with jax.enable_x64(x64):
            ft = jnp.float64 if x64 else jnp.float32
            rec = Record({k: jnp.asarray(v, jnp.int32 if k == "choice" else ft) for k, v in trials.items()})
            out[x64] = float(model.loglik(model.theta({k: jnp.asarray(v, ft) for k, v in th.items()}), rec)[0])
    assert out[False] == pytest.approx(out[True], abs=2e-3, rel=1e-5)
    # and both match the exact-arithmetic reference (probabilities summing to exactly 1)
    want = ref_loglik(weighting, th, np.array([[33.0, 36.0]]), np.array([[0.45, 0.55]]),
                      np.array([[34.0, -11.0]]), np.array([[0.95, 0.05]]), np.array([1]))
    assert out[True] == pytest.approx(float(want[0]), rel=1e-9)


def test_tk92_textbook_certainty_equivalents():
    """TK92 median parameters give the textbook certainty equivalents."""
    from cogfit.models.prospect import decision_weights, w_tk92, weighted_utility

    alpha, lam, g, d = 0.88, 2.25, 0.61, 0.69

    def ce(x, p):
        with jax.enable_x64(True):
            x, p = jnp.asarray(x, jnp.float64), jnp.asarray(p, jnp.float64)
            w = decision_weights(x, p, lambda P, Q: w_tk92(P, g, Q), lambda P, Q: w_tk92(P, d, Q))
            v = float(weighted_utility(x, w, alpha, alpha, lam))
        return v ** (1 / alpha) if v >= 0 else -((-v / lam) ** (1 / alpha))

    # w+(0.5) = 0.421 and w-(0.5) = 0.454: Tversky & Kahneman (1992), Wakker (2010, ch. 7).
    assert w_tk(0.5, 0.61) == pytest.approx(0.4206, abs=1e-4)
    assert w_tk(0.5, 0.69) == pytest.approx(0.4540, abs=1e-4)
    # CE = 100 * w(p)^(1/0.88) for (100, p; 0): TK92's fourfold pattern of risk attitudes.
    # (100, .5; 0) -> 37.38 (TK92 median observed 36): risk averse for moderate-probability gains.
    assert ce([100.0, 0.0], [0.5, 0.5]) == pytest.approx(37.38, abs=0.01)
    # (100, .05; 0) -> 9.98 > EV 5: risk seeking for low-probability gains (observed 14).
    assert ce([100.0, 0.0], [0.05, 0.95]) == pytest.approx(9.98, abs=0.01)
    # (100, .95; 0) -> 76.85 < EV 95: risk averse for high-probability gains (observed 78).
    assert ce([100.0, 0.0], [0.95, 0.05]) == pytest.approx(76.85, abs=0.01)
    # (-100, .5; 0) -> -40.76 (observed -42): risk seeking for moderate-probability losses.
    assert ce([-100.0, 0.0], [0.5, 0.5]) == pytest.approx(-40.76, abs=0.01)
    # mixed (100, 0.5; -100, 0.5): rejected (CE < 0) because of loss aversion.
    assert ce([100.0, -100.0], [0.5, 0.5]) == pytest.approx(-22.30, abs=0.01)


def test_ra_prospect_matches_hbayesdm_formula():
    model = cogfit.models.get("prospect_ra")
    n = 40
    gain, loss, cert = RNG.integers(2, 30, n) * 1.0, RNG.integers(1, 30, n) * 1.0, RNG.choice([0.0, 2, 5], n)
    choice = RNG.integers(0, 2, n)
    rho, lam, tau = 0.7, 1.8, 1.3
    ev_g = 0.5 * (gain**rho - lam * loss**rho)
    ev_s = cert**rho
    pg = 1 / (1 + np.exp(-tau * (ev_g - ev_s)))
    want = np.where(choice == 1, np.log(pg), np.log(1 - pg))
    with jax.enable_x64(True):
        got = model.loglik(model.theta(dict(rho=rho, lam=lam, tau=tau)),
                           Record(gain=gain, loss=loss, cert=cert, choice=choice))
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-10)
    nola = cogfit.models.get("prospect_ra_nola")
    assert nola.param_names == ("rho", "tau") and nola.fixed == {"lam": 1.0}


ALL = ["prospect_ra", "prospect_ra_nola", "prospect_ra_nora", *CPT_MODELS]


@pytest.mark.parametrize("x64", [False, True])
@pytest.mark.parametrize("name", ALL)
def test_gradients_finite_over_parameter_space(name, x64):
    """Finite gradients at extreme unconstrained values (+-6) and zero outcomes/probabilities."""
    model = cogfit.models.get(name)
    key = jax.random.PRNGKey(0)
    with jax.enable_x64(x64):
        d = {k: jnp.asarray(v) for k, v in model.design(key, 30).items()}
        if "x_a" in d:
            d["x_a"] = d["x_a"].at[:5, 0].set(0.0)
            d["p_a"] = d["p_a"].at[5:10].set(jnp.array([1.0, 0.0]))
        else:
            d["cert"] = d["cert"].at[:5].set(0.0)
        trials = Record(d, choice=jnp.arange(30) % 2)

        def total(u):
            th = {p.name: p.transform.forward(u[i]) for i, p in enumerate(model.params)}
            return jnp.sum(model.loglik(model.theta(th), trials))

        P = len(model.params)
        for corner in itertools.product([-6.0, 0.0, 6.0], repeat=min(P, 3)):
            u = jnp.zeros(P).at[: len(corner)].set(jnp.array(corner))
            for shift in (0.0, -6.0, 6.0):
                uu = u.at[3:].set(shift)
                val, g = jax.value_and_grad(total)(uu)
                assert np.isfinite(float(val)), (corner, shift)
                assert np.all(np.isfinite(np.asarray(g))), (name, corner, shift, g)


@pytest.mark.parametrize("name", ["prospect_ra", "cpt", "cpt_linear_bias"])
def test_simulator_agrees_with_likelihood(name):
    """Simulated choice frequencies match the likelihood's choice probabilities."""
    model = cogfit.models.get(name)
    th = model.theta({p.name: p.transform.forward(0.3) for p in model.params})
    d = {k: jnp.asarray(v) for k, v in model.design(jax.random.PRNGKey(1), 20).items()}
    trials = Record(d, choice=jnp.ones(20, jnp.int32))
    p1 = np.exp(np.asarray(model.loglik(th, trials)))
    keys = jax.random.split(jax.random.PRNGKey(2), 4000)
    sims = jax.vmap(lambda k: model.simulate(k, th, Record(d))["choice"])(keys)
    freq = np.asarray(sims).mean(0)
    assert np.all(np.abs(freq - p1) < 4 * np.sqrt(p1 * (1 - p1) / 4000) + 1e-3)
