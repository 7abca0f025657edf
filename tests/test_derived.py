"""Derived quantities (Model.derived): a beta_h learner reports its inverse temperature beta,
checked against numpy on synthetic posteriors."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import cogfit
from cogfit import Derived, Model
from cogfit._fit import assemble, derive

MODEL = cogfit.models.get("bandit_dual_rep_h_blocks")
C, D = 2, 50


def beta_ref(alpha_pos, alpha_neg, beta_h, horizon=20):
    """beta = beta_h / (1 - (1 - mean alpha)^horizon), in float64 numpy."""
    a = (np.asarray(alpha_pos, np.float64) + np.asarray(alpha_neg, np.float64)) / 2
    return np.asarray(beta_h, np.float64) / (1 - (1 - a) ** horizon)


@pytest.fixture(scope="module")
def fit():
    rng = np.random.default_rng(0)
    rows = []
    for s, pop in enumerate(["H", "H", "D", "D", "D"]):
        n = 30
        rows.append(pd.DataFrame({"subject": f"s{s}", "trial": np.arange(n), "choice": rng.integers(0, 2, n),
                                  "reward": rng.integers(0, 2, n).astype(float), "block": np.arange(n) // 15,
                                  "population": pop}))
    data = cogfit.TrialData.from_table(pd.concat(rows, ignore_index=True), MODEL, populations=["H", "D"])
    S, P = data.n_subjects, len(data.populations)
    samples = {}
    for p in MODEL.param_names:
        for suffix, n in (("", S), ("_group", P)):
            u = rng.normal(0, 1.5, (C, D, n))
            value = {"beta_c": u, "beta_h": np.exp(u)}.get(p, 1 / (1 + np.exp(-u)))
            samples[p + suffix] = value.astype(np.float32)
    return assemble(MODEL, data, samples, {}, attrs=dict(by_condition=[], method="nuts", pooling="partial",
                                                         precision="float32"))


def test_beta_of_subjects_and_of_the_typical_member(fit):
    q, post = fit.quantities(), fit.posterior
    assert "beta" not in post and {"beta", "beta_group"} <= set(q)
    assert q["beta"].dims == ("chain", "draw", "subject")
    assert q["beta_group"].dims == ("chain", "draw", "population")
    for name in ("beta", "beta_group"):
        suffix = name[4:]
        ref = beta_ref(post["alpha_pos" + suffix], post["alpha_neg" + suffix], post["beta_h" + suffix])
        np.testing.assert_allclose(q[name].values, ref, rtol=2e-5)


def test_differences_and_subject_params_include_beta(fit):
    df = fit.differences(prob=0.9)
    assert list(df.param.unique()) == ["alpha_pos", "alpha_neg", "beta_h", "beta_c", "beta"]
    post = fit.posterior
    g = beta_ref(post["alpha_pos_group"], post["alpha_neg_group"], post["beta_h_group"])
    row = df[(df.param == "beta")].iloc[0]
    assert row.contrast == "D - H"
    d = g[..., 1] - g[..., 0]
    assert row["mean"] == pytest.approx(d.mean(), rel=1e-4)
    assert (row.lo, row.hi) == pytest.approx(tuple(np.quantile(d, [0.05, 0.95])), rel=1e-4)
    members = fit.differences(["beta"], summary="members", exclude=["s4"])
    b = beta_ref(post["alpha_pos"], post["alpha_neg"], post["beta_h"])
    want = b[..., 2:4].mean(-1) - b[..., 0:2].mean(-1)
    assert members.iloc[0]["mean"] == pytest.approx(want.mean(), rel=1e-4)

    table = fit.subject_params()
    one = table[(table.param == "beta") & (table.subject == "s3")].iloc[0]
    assert one.population == "D"
    assert one["mean"] == pytest.approx(b[..., 3].mean(), rel=1e-4)
    assert one["median"] == pytest.approx(np.median(b[..., 3]), rel=1e-4)


def test_check_and_flags_diagnose_derived_quantities(fit):
    """Chains that agree on every parameter's marginal but not on how alpha and beta_h go
    together disagree on beta: check() and flags() must see it."""
    rng = np.random.default_rng(2)
    S, P = fit.data.n_subjects, len(fit.data.populations)
    samples = {}
    for suffix, n in (("", S), ("_group", P)):
        u = rng.normal(0, 1, (C, 20 * D, n))                        # slow learners: alpha ~ 0.002-0.3
        sign = np.array([1.0, -1.0])[:, None, None]                 # chain 1: beta_h high where alpha is low
        alpha = 1 / (1 + np.exp(3 - u))
        samples |= {"alpha_pos" + suffix: alpha, "alpha_neg" + suffix: alpha, "beta_h" + suffix: np.exp(sign * u),
                    "beta_c" + suffix: rng.normal(size=(C, 20 * D, n))}
    odd = assemble(MODEL, fit.data, samples, {}, attrs=dict(by_condition=[], method="nuts", pooling="partial",
                                                           precision="float64"))
    flags = odd.flags()
    assert set(flags.variable) <= {"beta", "beta_group"} and {"beta", "beta_group"} <= set(flags.variable)
    assert set(flags[flags.variable == "beta_group"].population) <= {"H", "D"}
    assert odd.check()["max_rhat"] == pytest.approx(flags.r_hat.max()) and odd.check()["max_rhat"] > 1.1
    every = fit.flags(rhat_max=0.0)                                  # every value, derived ones too
    assert set(every.variable) == set(MODEL.param_names) | {p + "_group" for p in MODEL.param_names} | {
        "beta", "beta_group"}


def test_saved_fits_give_the_same_derived_values(fit, tmp_path):
    loaded = cogfit.load(fit.save(tmp_path / "fit.nc"))
    xr.testing.assert_allclose(loaded.quantities()["beta_group"], fit.quantities()["beta_group"])


def test_models_without_derived_quantities_add_nothing(fit):
    plain = cogfit.models.get("bandit_dual_rep_blocks")
    assert plain.derived == () and derive(plain, fit.posterior).data_vars.keys() == set()
    assert "beta_h" in MODEL.param_names and MODEL.derived_names == ("beta",)


def test_derived_values_broadcast_over_conditions_and_use_constants():
    p = cogfit.Param("a")
    model = Model("toy", (p, cogfit.Param("b")), loglik=None, simulate=None, fixed={"k": 3.0},
                  derived=(Derived("ab", lambda th: th["a"] * th["b"] + th["k"], "a b + k"),))
    rng = np.random.default_rng(1)
    a = rng.normal(size=(2, 4, 3, 2))
    b = rng.normal(size=(2, 4, 3))
    post = xr.Dataset({"a": (("chain", "draw", "subject", "condition"), a),
                       "b": (("chain", "draw", "subject"), b)})
    out = derive(model, post)["ab"]
    assert out.dims == ("chain", "draw", "subject", "condition") and "ab_group" not in derive(model, post)
    np.testing.assert_allclose(out.values, a * b[..., None] + 3.0, rtol=1e-5)
    assert "ab" in cogfit.describe(model)


def test_a_derived_name_may_not_repeat_a_parameter():
    with pytest.raises(ValueError, match="duplicate parameter or derived names"):
        Model("bad", (cogfit.Param("a"),), loglik=None, simulate=None, derived=(Derived("a", lambda th: th["a"]),))
