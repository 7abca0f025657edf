"""Pooling per parameter (cogfit.Hierarchy(pooling={...})): a drift rate that varies by subject
while boundary, bias and non-decision time are common to the population."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer.util import constrain_fn, initialize_model, log_density

import cogfit
from cogfit._hierarchy import build, model_args

DDM = cogfit.models.get("ddm")
COMMON = {"a": "complete", "z": "complete", "t": "complete"}


@pytest.fixture(scope="module")
def ddm_data():
    """12 subjects x 120 trials: v differs by subject (sd 0.8), a, z, t are the same for all."""
    rng = np.random.default_rng(0)
    v = rng.normal(1.0, 0.8, 12)
    design = cogfit.random_design(DDM, n_subjects=12, n_trials=120, seed=0)
    table = cogfit.simulate(DDM, design, {"v": v, "a": 1.4, "z": 0.5, "t": 0.3}, seed=1)
    return cogfit.TrialData.from_table(table, DDM), v


def test_each_parameter_gets_its_own_pooling(ddm_data):
    data, _ = ddm_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = cogfit.fit(DDM, data, method=cogfit.SVI(steps=50, draws=20), hierarchy=cogfit.Hierarchy(pooling=COMMON),
                         progress=False)
    post = fit.posterior
    assert "v_sigma" in post and not any(f"{p}_sigma" in post for p in COMMON)
    for p in COMMON:            # one value per population, shared by every subject
        np.testing.assert_allclose(post[p].values, np.broadcast_to(post[f"{p}_group"].values, post[p].shape))
    assert float(post["v"].std("subject").mean()) > 0
    assert fit.hierarchy == cogfit.Hierarchy(pooling=COMMON)


def test_a_mapping_of_partial_everywhere_is_the_partial_model(ddm_data):
    """Same log density at a random point, to float32 rounding."""
    data, _ = ddm_data
    args = model_args(data)
    whole = build(DDM, data, pooling="partial")
    each = build(DDM, data, pooling={p: "partial" for p in DDM.param_names})
    params = initialize_model(jax.random.key(0), whole, model_args=args).param_info.z
    point = jax.tree.map(lambda x: x + 0.1, params)
    lp_a, _ = log_density(whole, args, {}, constrain_fn(whole, args, {}, point))
    lp_b, _ = log_density(each, args, {}, constrain_fn(each, args, {}, point))
    np.testing.assert_allclose(float(lp_a), float(lp_b), rtol=1e-6)
    assert jnp.isfinite(lp_a)


def test_common_boundary_and_varying_drift_are_recovered(ddm_data):
    """The truth (a 1.4, z 0.5, t 0.3; each subject's v) from 12 x 120 simulated trials, NUTS (2 x 200 + 200).
    ``centered=None`` (by trial count: v centred for every 120-trial subject, the mask the pilot picks
    here) spares the 5,000-step DDM centring pilot."""
    data, v = ddm_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = cogfit.fit(DDM, data, method=cogfit.NUTS(draws=200, tune=200, chains=2, centered=None), seed=1,
                         hierarchy=cogfit.Hierarchy(pooling=COMMON), progress=False)
    post = fit.posterior
    for p, truth in (("a", 1.4), ("z", 0.5), ("t", 0.3)):
        lo, hi = np.quantile(post[f"{p}_group"].values, [0.005, 0.995])
        assert lo < truth < hi, (p, lo, hi)
    est = post["v"].mean(("chain", "draw")).values
    assert np.corrcoef(est, v)[0, 1] > 0.9
    assert fit.check()["divergences"] == 0


def test_pooling_mappings_are_checked(ddm_data):
    data, _ = ddm_data
    with pytest.raises(ValueError, match="pooling must be one of"):
        cogfit.Hierarchy(pooling={"a": "some"})
    with pytest.raises(KeyError, match="not parameters"):
        cogfit.fit(DDM, data, hierarchy=cogfit.Hierarchy(pooling={"b": "complete"}))
    with pytest.raises(ValueError, match="needs pooling='partial' for some parameter"):
        cogfit.fit(DDM, data, hierarchy=cogfit.Hierarchy(pooling={p: "complete" for p in DDM.param_names},
                                                            population="student_t"))
    with pytest.raises(ValueError, match="jumps='auto'"):
        cogfit.fit(DDM, data, method=cogfit.NUTS(jumps="auto"), hierarchy=cogfit.Hierarchy(pooling=COMMON))
    with pytest.raises(ValueError, match="pooling='complete' has none"):   # centered=False: no pilot before the check
        cogfit.fit(DDM, data, method=cogfit.NUTS(jumps={data.subjects[0]: {"a": 1.0}}, draws=5, tune=5, centered=False),
                   hierarchy=cogfit.Hierarchy(pooling=COMMON), progress=False)
