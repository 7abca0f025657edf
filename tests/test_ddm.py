"""The drift-diffusion model family (models/ddm.py) on the model contract."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate as si
import scipy.stats as st
from scipy.special import logsumexp

import cogfit
from cogfit import wiener as W
from cogfit.models import ddm as D

RT_MODELS = ("ddm", "ddm_sdv", "full_ddm", "ddm_lapse")
THETA = {"v": 1.1, "a": 1.4, "z": 0.45, "t": 0.3, "sv": 0.7, "sz": 0.4, "st": 0.15, "p_outlier": 0.05}


def _theta(model, **over):
    return cogfit.Record({k: np.asarray(v, float) for k, v in {**THETA, **over}.items() if k in model.param_names})


def _trials(rt, choice):
    rt = np.asarray(rt, float)
    return cogfit.Record(rt=rt, choice=np.asarray(choice, np.int32), mask=np.ones(rt.shape, bool))


def test_family_is_registered_with_documented_parameters():
    names = cogfit.models.available()
    for name in (*RT_MODELS, "ddm_choice"):
        assert name in names
    assert cogfit.models.get("ddm").param_names == ("v", "a", "z", "t")
    assert cogfit.models.get("full_ddm").param_names == ("v", "a", "z", "t", "sv", "sz", "st")
    assert cogfit.models.get("ddm_choice").param_names == ("v", "z")
    assert all(cogfit.models.get(n).rt for n in RT_MODELS)


@pytest.mark.parametrize("name", RT_MODELS)
def test_loglik_is_the_contaminant_mixture(name):
    model = cogfit.models.get(name)
    theta = _theta(model)
    rt, ch = np.array([0.1, 0.29, 0.45, 0.8, 2.0, 12.0]), np.array([1, 0, 1, 0, 1, 1])
    with jax.enable_x64(True):
        got = np.asarray(jax.jit(model.loglik)(theta, _trials(rt, ch)))
        th = dict(THETA)
        if name == "ddm":
            th.update(sv=0.0)
        if name in ("ddm", "ddm_sdv", "ddm_lapse"):
            diff = np.asarray(W.wiener_logpdf(rt, ch, th["v"], th["a"], th["z"], th["t"],
                                              th["sv"] if name == "ddm_sdv" else 0.0))
        else:
            sz = th["sz"] * 2 * min(th["z"], 1 - th["z"])
            diff = np.asarray(W.full_ddm_logpdf(rt, ch, th["v"], th["a"], th["z"], th["t"], th["sv"], sz, th["st"]))
    p = THETA["p_outlier"] if name == "ddm_lapse" else D.P_OUTLIER
    cont = np.where(rt < D.RT_MAX, np.log(p * 0.5 / D.RT_MAX), -np.inf)
    ref = logsumexp(np.stack([np.log1p(-p) + diff, cont]), axis=0)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    # responses before t are explained by the contaminant alone, never -inf
    assert got[0] == pytest.approx(np.log(p * 0.5 / D.RT_MAX))


@pytest.mark.parametrize("name", RT_MODELS)
def test_gradients_finite_with_fast_guesses_and_per_trial_parameters(name):
    model = cogfit.models.get(name)
    rt = jnp.array([0.05, 0.31, 0.5, 0.9, 3.0])
    trials = _trials(rt, [1, 0, 1, 1, 0])

    def f(values):
        return jnp.sum(model.loglik(cogfit.Record(values), trials))

    values = {k: jnp.asarray(v, jnp.float32) for k, v in THETA.items() if k in model.param_names}
    values["v"] = jnp.array([1.0, -1.0, 1.0, -1.0, 2.0], jnp.float32)   # v varies by condition
    g = jax.jit(jax.grad(f))(values)
    for k, gk in g.items():
        assert np.all(np.isfinite(np.asarray(gk))), k
    assert float(jnp.abs(g["t"])) > 0


@pytest.mark.parametrize("name", RT_MODELS)
def test_per_trial_parameters_broadcast_like_scalars(name):
    model = cogfit.models.get(name)
    rt, ch = np.array([0.5, 0.7, 1.1]), np.array([1, 0, 1])
    vs = np.array([0.5, -1.0, 2.0])
    loglik = jax.jit(model.loglik)
    joint = loglik(_theta(model, v=vs), _trials(rt, ch))
    single = [loglik(_theta(model, v=v), _trials(rt[i:i + 1], ch[i:i + 1]))[0] for i, v in enumerate(vs)]
    np.testing.assert_allclose(np.asarray(joint), np.asarray(single), rtol=1e-5)


def test_choice_only_model_probabilities():
    model = cogfit.models.get("ddm_choice")
    theta = cogfit.Record(v=np.asarray(0.8), z=np.asarray(0.6))
    trials = cogfit.Record(choice=jnp.array([0, 1, 1]), mask=jnp.ones(3, bool))
    with jax.enable_x64(True):
        lp = np.asarray(model.choice_logprobs(theta, trials))
        ll = np.asarray(model.loglik(theta, trials))
    np.testing.assert_allclose(np.exp(lp).sum(-1), 1.0, rtol=1e-12)
    x = 2 * 0.8 * 1.0
    p_up = (1 - np.exp(-x * 0.6)) / (1 - np.exp(-x))   # a = 1
    np.testing.assert_allclose(ll, np.log([1 - p_up, p_up, p_up]), rtol=1e-12)
    sims = model.simulate(jax.random.PRNGKey(0), theta, cogfit.Record(mask=jnp.ones(20000, bool)))
    assert abs(float(sims["choice"].mean()) - p_up) < 4 * np.sqrt(p_up * (1 - p_up) / 20000)


def _mixture_cdf(model, theta, c, grid):
    """Sub-distribution CDF of (rt, choice = c) from the model's own log-likelihood on a grid."""
    trials = _trials(grid, np.full(grid.shape, c))
    dens = np.exp(np.asarray(jax.jit(model.loglik)(theta, trials)))
    return si.cumulative_trapezoid(dens, grid, initial=0.0)


@pytest.mark.parametrize("name,seed,over", [
    ("ddm", 0, {}),
    ("ddm_sdv", 1, {"v": -0.8, "sv": 1.2}),
    ("full_ddm", 2, {"a": 1.9, "z": 0.6}),
    ("ddm_lapse", 3, {"p_outlier": 0.1}),
])
def test_simulator_agrees_with_likelihood(name, seed, over):
    """Choice proportions and RT distributions (KS) of simulated data match the likelihood."""
    model = cogfit.models.get(name)
    n = 5000
    with jax.enable_x64(True):
        theta = _theta(model, **over)
        sims = model.simulate(jax.random.PRNGKey(seed), theta, cogfit.Record(mask=jnp.ones(n, bool)))
        rt, ch = np.asarray(sims["rt"]), np.asarray(sims["choice"])
        grid = np.concatenate([np.geomspace(1e-4, 0.3, 400)[:-1], np.linspace(0.3, D.RT_MAX + 20, 24000)])
        cdfs = {c: _mixture_cdf(model, theta, c, grid) for c in (0, 1)}
    total = cdfs[0][-1] + cdfs[1][-1]
    assert abs(total - 1) < 1e-3                   # the likelihood is a proper density
    p_up = cdfs[1][-1] / total
    assert abs(ch.mean() - p_up) < 4 * np.sqrt(p_up * (1 - p_up) / n)
    for c in (0, 1):
        cdf = cdfs[c] / cdfs[c][-1]
        assert st.kstest(rt[ch == c], lambda x: np.interp(x, grid, cdf)).pvalue > 1e-4  # noqa: B023  (16 KS tests: alpha < 0.002)


def test_hierarchical_fit_recovers_condition_drifts():
    """Simulate with drift by condition, fit MAP per subject, recover the drifts.

    (Unpooled: the joint mode of a hierarchical model sits at sigma -> 0, so MAP with partial
    pooling shrinks every subject to the group mean; NUTS is exercised by the notebook.)"""
    model = cogfit.models.get("ddm")
    design = cogfit.random_design(model, n_subjects=6, n_trials=150, seed=0)
    design["condition"] = np.where(design["trial"] % 2 == 0, "word", "nonword")
    data = cogfit.TrialData.from_table(design, model, responses=False)
    rng = np.random.default_rng(1)
    true_v = {"nonword": rng.normal(-1.5, 0.3, 6), "word": rng.normal(2.0, 0.3, 6)}
    params = {"v": np.stack([true_v[c] for c in data.conditions], -1),
              "a": rng.normal(1.5, 0.1, 6), "z": rng.normal(0.5, 0.02, 6), "t": rng.normal(0.35, 0.02, 6)}
    table = cogfit.simulate(model, design, params, seed=2, by_condition=("v",))
    data = cogfit.TrialData.from_table(table, model)
    fit = cogfit.fit(model, data, method=cogfit.MAP(steps=2000, laplace=False), seed=0, progress=False,
                     hierarchy=cogfit.Hierarchy(pooling="none", by_condition=("v",)))
    sp = fit.subject_params()
    for c in ("word", "nonword"):
        est = sp[(sp["param"] == "v") & (sp["condition"] == c)].set_index("subject")["mean"]
        np.testing.assert_allclose(est.loc[np.arange(6)].to_numpy(), true_v[c], atol=0.6)
    est_a = sp[sp["param"] == "a"].set_index("subject")["mean"].loc[np.arange(6)].to_numpy()
    np.testing.assert_allclose(est_a, params["a"], atol=0.25)
    est_t = sp[sp["param"] == "t"].set_index("subject")["mean"].loc[np.arange(6)].to_numpy()
    np.testing.assert_allclose(est_t, params["t"], atol=0.05)
