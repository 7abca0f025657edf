"""population="student_t": subjects spread around their population by a Student-t."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from numpyro.infer.util import log_density
from scipy import stats

import cogfit
from cogfit._hierarchy import build, model_args, subject_sites

MODEL = cogfit.models.get("prospect_ra")


@pytest.fixture(scope="module")
def data():
    design = cogfit.random_design(MODEL, n_subjects=5, n_trials=20, seed=0, populations=["P", "Q"])
    rng = np.random.default_rng(0)
    params = {"subject": range(5), "rho": rng.uniform(0.7, 1.1, 5), "lam": [1.2, 1.5, 1.3, 6.0, 1.4], "tau": 1.0}
    table = cogfit.simulate(MODEL, design, pd.DataFrame(params), seed=1)
    return cogfit.TrialData.from_table(table, MODEL)


def _point(data, mask, rng):
    """Random values for every latent site of the student_t build with centring ``mask``."""
    G = len(data.populations)
    point = {}
    for j, p in enumerate(MODEL.params):
        point[f"{p.name}_mu"] = rng.normal(0, 0.5, G)
        point[f"{p.name}_sigma"] = rng.uniform(0.3, 2.0, G)
        point[f"{p.name}_nu"] = rng.uniform(1.5, 30.0)
        for site, centred, idx in subject_sites(p.name, mask[:, j]):
            point[site] = rng.normal(0, 1.5, len(idx))
    return {k: jnp.asarray(v, jnp.float32) for k, v in point.items()}


@pytest.mark.parametrize("centred, fixed_nu", [("none", None), ("all", None), ("mixed", None), ("mixed", 4.0)])
def test_student_t_density_against_scipy(data, centred, fixed_nu):
    """The log density differs from the normal build's at the same point by exactly the Student-t
    minus normal log densities of the subject sites plus the Gamma(2, 0.1) prior of each nu
    (fitted nu), or without a prior term (nu held fixed)."""
    S = data.n_subjects
    mask = {"none": np.zeros((S, 3), bool), "all": np.ones((S, 3), bool),
            "mixed": np.arange(S * 3).reshape(S, 3) % 2 == 0}[centred]
    point = _point(data, mask, np.random.default_rng(1))
    normal_point = {k: v for k, v in point.items() if not k.endswith("_nu")}
    args = model_args(data)
    fn = build(MODEL, data, centered=mask, population="student_t", nu=fixed_nu)
    lt, trace = log_density(fn, args, {}, normal_point if fixed_nu else point)
    assert ("lam_nu" in trace) == (fixed_nu is None)
    ln, _ = log_density(build(MODEL, data, centered=mask), args, {}, normal_point)

    pop = np.asarray(data.population)
    expected = 0.0
    for j, p in enumerate(MODEL.params):
        nu = fixed_nu or float(point[f"{p.name}_nu"])
        mu, sigma = (np.asarray(point[f"{p.name}_{s}"], float) for s in ("mu", "sigma"))
        expected += 0.0 if fixed_nu else stats.gamma.logpdf(nu, 2.0, scale=10.0)
        for site, is_centred, idx in subject_sites(p.name, mask[:, j]):
            x = np.asarray(point[site], float)
            loc, scale = (mu[pop[idx]], sigma[pop[idx]]) if is_centred else (0.0, 1.0)
            expected += np.sum(stats.t.logpdf(x, nu, loc, scale) - stats.norm.logpdf(x, loc, scale))
    assert float(lt - ln) == pytest.approx(expected, rel=1e-4, abs=1e-3)


def test_student_t_fit_records_nu_and_round_trips(data, tmp_path):
    """centered=False: the centring pilot is not what this checks."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = cogfit.fit(MODEL, data, hierarchy=cogfit.Hierarchy(population="student_t"),
                         method=cogfit.NUTS(draws=40, tune=40, chains=2, centered=False), seed=0, progress=False)
    post = fit.posterior
    assert post["lam_nu"].dims == ("chain", "draw")
    assert (post["lam_nu"].values > 0).all() and np.isfinite(post["lam"].values).all()
    assert fit.meta["population"] == "student_t"
    assert "lam_nu" in fit.summary().index
    flags = fit.flags(rhat_max=0.0)                     # every value flagged: nu rows have no population
    nu_rows = flags[flags.variable == "lam_nu"]
    assert len(nu_rows) == 1 and pd.isna(nu_rows.population.iloc[0]) and pd.isna(nu_rows.subject.iloc[0])
    fit.save(tmp_path / "t.nc")
    back = cogfit.load(tmp_path / "t.nc")
    np.testing.assert_array_equal(back.posterior["lam_nu"].values, post["lam_nu"].values)
    assert back.meta["population"] == "student_t"


def test_student_t_gradient_is_finite_in_float32(data):
    """Heavy tails (nu near 1) and far-out subjects keep the gradient finite."""
    fn = build(MODEL, data, centered=np.ones((data.n_subjects, 3), bool), population="student_t")
    args = model_args(data)
    point = _point(data, np.ones((data.n_subjects, 3), bool), np.random.default_rng(2))
    for k in point:
        if k.endswith("_nu"):
            point[k] = jnp.float32(1.01)
        elif k.endswith("_u"):
            point[k] = point[k] * 20.0

    def lp(pt):
        return log_density(fn, args, {}, pt)[0]

    grads = jax.grad(lp)(point)
    assert all(bool(jnp.isfinite(g).all()) for g in jax.tree.leaves(grads))


def test_fixed_nu_fit_records_it(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = cogfit.fit(MODEL, data, hierarchy=cogfit.Hierarchy(population="student_t", nu=4.0),
                         method=cogfit.NUTS(draws=20, tune=20, chains=1, centered=False), seed=0, progress=False)
    assert fit.meta["nu"] == 4.0 and "lam_nu" not in fit.posterior and np.isfinite(fit.posterior["lam"]).all()


def test_student_t_needs_partial_pooling(data):
    with pytest.raises(ValueError, match="needs population='student_t' and nu > 0"):
        cogfit.Hierarchy(nu=4.0)
    with pytest.raises(ValueError, match="nu > 0"):
        cogfit.Hierarchy(population="student_t", nu=0.0)
    with pytest.raises(ValueError, match="population must be"):
        cogfit.Hierarchy(population="cauchy")
    with pytest.raises(ValueError, match="needs pooling='partial'"):
        cogfit.Hierarchy(population="student_t", pooling="none")
