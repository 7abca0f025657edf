"""Regressions per parameter (Hierarchy(formulas=...), issue 35): the cavanagh-style model stated in
one call recovers its truth, a group regression slope of another family is recovered, a formula of
only ``1 + (1|subject)`` is today's partial pooling, and bad formulas and covariates say what is wrong."""

import warnings

import jax
import numpy as np
import pytest
from numpyro.infer.util import constrain_fn, initialize_model, log_density

import cogfit
from cogfit._formula import SLOPE_PRIOR
from cogfit._hierarchy import build, model_args

DDM = cogfit.models.get("ddm")
COMMON = {"a": "complete", "z": "complete", "t": "complete"}
CAVANAGH = cogfit.Hierarchy(pooling=COMMON, formulas={"v": "1 + theta + (1|subject)"})
SLOPE = 0.6                                    # true effect of theta on v (1/s per unit theta)


@pytest.fixture(scope="module")
def cavanagh():
    """10 subjects x 100 trials: v = v_s + 0.6 theta (theta a standard normal trial covariate), a, z, t common."""
    rng = np.random.default_rng(0)
    design = cogfit.random_design(DDM, n_subjects=10, n_trials=100, seed=0)
    design["theta"] = rng.normal(0.0, 1.0, len(design))
    v = rng.normal(0.8, 0.5, 10)
    table = cogfit.simulate(DDM, design, {"v": v, "a": 1.4, "z": 0.5, "t": 0.3}, seed=1,
                            formulas={"v": "1 + theta"}, coefficients={"v": {"theta": SLOPE}})
    return table, cogfit.TrialData.from_table(table, DDM, covariates=("theta",)), v


@pytest.fixture(scope="module")
def cavanagh_fit(cavanagh):
    """The cavanagh-style model in one call, NUTS 2 x (150 + 150). ``centered=None`` (by trial count: every
    subject's 100 trials centre ``v``, the mask the pilot picks here) spares the 5,000-step DDM pilot."""
    _, data, _ = cavanagh
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cogfit.fit(DDM, data, hierarchy=CAVANAGH, seed=1, progress=False,
                          method=cogfit.NUTS(draws=150, tune=150, chains=2, centered=None))


def test_cavanagh_model_recovers_the_truth(cavanagh, cavanagh_fit):
    _, _, v = cavanagh
    post = cavanagh_fit.posterior
    assert post["v_beta"].dims[2:] == ("population", "v_coef") and list(post["v_coef"].values) == ["theta"]
    lo, hi = np.quantile(post["v_beta"].values, [0.005, 0.995])
    assert lo < SLOPE < hi and hi - lo < 0.5, (lo, hi)
    for p, truth in (("a", 1.4), ("z", 0.5), ("t", 0.3)):
        lo, hi = np.quantile(post[f"{p}_group"].values, [0.005, 0.995])
        assert lo < truth < hi, (p, lo, hi)
        assert f"{p}_sigma" not in post                                    # common: complete pooling
    assert np.corrcoef(post["v"].mean(("chain", "draw")).values, v)[0, 1] > 0.8
    assert "v_beta[all, theta]" in cavanagh_fit.summary().index            # a name a reader understands
    assert cavanagh_fit.check()["divergences"] == 0


def test_formula_fit_round_trips_and_compares(cavanagh, cavanagh_fit, tmp_path):
    """Log-likelihood (per trial, the design's slopes included), predictions, save/load and compare."""
    table, data, _ = cavanagh
    fit = cavanagh_fit.with_log_likelihood()
    back = cogfit.load(fit.save(tmp_path / "fit.nc"))
    assert back.hierarchy == CAVANAGH and back.data.covariates == ("theta",)
    np.testing.assert_array_equal(back.tree["constant_data"]["theta"].values, data.fields["theta"])
    np.testing.assert_allclose(back.with_log_likelihood().tree["log_likelihood"]["choice"].values,
                               fit.tree["log_likelihood"]["choice"].values, rtol=1e-6)
    pred = back.with_posterior_predictive(n_draws=10).tree["posterior_predictive"]
    assert pred["rt"].shape[-1] == len(table) and np.isfinite(pred["rt"].values).all()
    assert {"theta", "rt", "choice"} <= set(back.data.to_table().columns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = cogfit.fit(DDM, data, hierarchy=cogfit.Hierarchy(pooling=COMMON),
                           method=cogfit.SVI(steps=500, draws=100), progress=False)
    table = cogfit.compare({"theta": fit, "no theta": plain}).table
    assert table.index[0] == "theta" and abs(table.loc["no theta", "elpd_diff"]) > 10


def test_one_plus_random_intercept_is_todays_partial_pooling(cavanagh):
    """Same log density at the same unconstrained point; and a zero slope adds only its prior."""
    _, data, _ = cavanagh
    args = model_args(data)

    def lp(numpyro_model, point, args=args):
        return float(log_density(numpyro_model, args, {}, constrain_fn(numpyro_model, args, {}, point))[0])

    today = build(DDM, data, pooling="partial")
    point = jax.tree.map(lambda x: x + 0.1, initialize_model(jax.random.key(0), today, model_args=args).param_info.z)
    ones = cogfit.Hierarchy(formulas={p: "1 + (1|subject)" for p in DDM.param_names})
    np.testing.assert_allclose(lp(ones.build(DDM, ones.prepare(DDM, data)), point), lp(today, point), rtol=1e-6)
    slope = cogfit.Hierarchy(formulas={"v": "1 + theta + (1|subject)"})
    prepared = slope.prepare(DDM, data)
    with_slope = slope.build(DDM, prepared)
    args_s = model_args(prepared)
    at_zero = lp(with_slope, point | {"v_beta": np.zeros((1, 1), np.float32)}, args_s)
    np.testing.assert_allclose(at_zero, lp(today, point) + float(SLOPE_PRIOR.log_prob(0.0)), rtol=1e-6)
    assert lp(with_slope, point | {"v_beta": np.full((1, 1), 0.5, np.float32)}, args_s) != pytest.approx(at_zero)


def test_complete_pooling_formula_is_complete_pooling(cavanagh):
    _, data, _ = cavanagh
    args = model_args(data)
    today = build(DDM, data, pooling=COMMON)
    point = jax.tree.map(lambda x: x - 0.1, initialize_model(jax.random.key(1), today, model_args=args).param_info.z)
    h = cogfit.Hierarchy(pooling=COMMON, formulas={"a": "1", "z": "z ~ 1"})
    assert h.poolings(DDM) == {"v": "partial", **COMMON}
    new = h.build(DDM, h.prepare(DDM, data))
    lps = [float(log_density(m, args, {}, constrain_fn(m, args, {}, point))[0]) for m in (today, new)]
    np.testing.assert_allclose(lps[0], lps[1], rtol=1e-6)


def test_group_regression_slope_of_a_prospect_model():
    """hBayesDM-style: log loss aversion ~ 1 + age + (1|subject), age a subject-level covariate (SVI)."""
    model = cogfit.models.get("cpt_linear")
    rng = np.random.default_rng(3)
    S = 24
    age = rng.normal(0.0, 1.0, S)
    design = cogfit.random_design(model, n_subjects=S, n_trials=80, seed=3)
    design["age"] = age[design["subject"].to_numpy()]
    lam = np.exp(0.3 + 0.15 * rng.normal(size=S))                         # each subject's lam at age 0
    table = cogfit.simulate(model, design, {"alpha": 0.9, "lam": lam, "tau": 1.0}, seed=4,
                            formulas={"lam": "1 + age"}, coefficients={"lam": {"age": 0.5}})
    data = cogfit.TrialData.from_table(table, model, covariates=("age",))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = cogfit.fit(model, data, hierarchy=cogfit.Hierarchy(formulas={"lam": "1 + age + (1|subject)"}),
                         method=cogfit.SVI(steps=1500, draws=200), progress=False)
    slope = float(fit.posterior["lam_beta"].mean())
    assert abs(slope - 0.5) < 0.2, slope


def test_bad_formulas_and_covariates_say_what_is_wrong(cavanagh):
    table, data, _ = cavanagh
    with pytest.raises(KeyError, match=r"\['thet'\], which is not a covariate.*covariates=\('thet',\)"):
        cogfit.fit(DDM, data, hierarchy=cogfit.Hierarchy(formulas={"v": "1 + thet"}))
    with pytest.raises(KeyError, match=r"formulas name \['drift'\], which are not parameters of 'ddm'"):
        cogfit.fit(DDM, data, hierarchy=cogfit.Hierarchy(formulas={"drift": "1 + theta"}))
    with pytest.raises(NotImplementedError, match="random slopes"):
        cogfit.Hierarchy(formulas={"v": "1 + (1 + theta|subject)"})
    with pytest.raises(ValueError, match="only \\(1\\|subject\\)"):
        cogfit.Hierarchy(formulas={"v": "1 + (1|trial)"})
    with pytest.raises(ValueError, match="has no intercept"):
        cogfit.fit(DDM, data, hierarchy=cogfit.Hierarchy(formulas={"v": "0 + theta"}))
    with pytest.raises(ValueError, match="leave it out of pooling"):
        cogfit.fit(DDM, data, hierarchy=cogfit.Hierarchy(pooling={"v": "complete"}, formulas={"v": "1 + (1|subject)"}))
    with pytest.raises(ValueError, match="jumps='auto'"):
        cogfit.fit(DDM, data, method=cogfit.NUTS(jumps="auto"), hierarchy=cogfit.Hierarchy(formulas={"v": "1 + theta"}))
    with pytest.raises(ValueError, match="hierarchy.prepare"):
        build(DDM, data, formulas={"v": "1 + theta"})
    bad = table.copy()
    bad.loc[5, "theta"] = np.nan
    with pytest.raises(cogfit.DataError, match=r"column 'theta', subject 0, row 5: missing value"):
        cogfit.TrialData.from_table(bad, DDM, covariates=("theta",))
    bad["theta"] = bad["theta"].astype(object)
    bad.loc[5, "theta"] = "high"
    with pytest.raises(cogfit.DataError, match=r"column 'theta', subject 0, row 5: not a number"):
        cogfit.TrialData.from_table(bad, DDM, covariates=("theta",))
    with pytest.raises(cogfit.DataError, match="covariate column 'age' is missing"):
        cogfit.TrialData.from_table(table, DDM, covariates=("age",))
    with pytest.raises(cogfit.DataError, match="covariate 'rt'"):
        cogfit.TrialData.from_table(table, DDM, covariates=("rt",))


def test_condition_is_a_categorical_covariate(cavanagh):
    """by_condition written as a formula: 1 + C(condition) gives one named shift per other condition."""
    table, _, _ = cavanagh
    t = table.assign(condition=np.where(table["trial"] % 2 == 0, "easy", "hard"))
    data = cogfit.TrialData.from_table(t, DDM)
    prepared = cogfit.Hierarchy(formulas={"v": "1 + C(condition) + (1|subject)"}).prepare(DDM, data)
    assert prepared.designs == {"v": ("C(condition)[T.hard]",)}
    np.testing.assert_array_equal(prepared.fields["design_v"][..., 0], data.condition == 1)


def test_rts_in_milliseconds_warn(cavanagh):
    table, _, _ = cavanagh
    with pytest.warns(UserWarning, match=r"column 'rt'.*milliseconds.*divide by 1000"):
        cogfit.TrialData.from_table(table.assign(rt=table["rt"] * 1000), DDM)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cogfit.TrialData.from_table(table, DDM)                            # seconds: silent
