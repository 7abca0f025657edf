"""The hierarchical engine and its outputs: masking, determinism, save/load, methods, groups."""

import dataclasses
import warnings

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import cogfit
from cogfit._hierarchy import per_trial_theta, trial_loglik

MODEL = cogfit.models.get("prospect_ra")


def ra_table(n_subjects=6, n_trials=30, seed=0, ragged=True):
    design = cogfit.random_design(MODEL, n_subjects=n_subjects, n_trials=n_trials, seed=seed,
                                  populations=["P", "Q"])
    if ragged:  # subject 1 has only 10 trials, subject 2 only 1
        cut = ((design.subject == 1) & (design.trial >= 10)) | ((design.subject == 2) & (design.trial >= 1))
        design = design[~cut]
    rng = np.random.default_rng(seed)
    params = pd.DataFrame({"subject": range(n_subjects), "rho": rng.uniform(0.7, 1.1, n_subjects),
                           "lam": np.where(np.arange(n_subjects) % 2, 2.5, 1.2), "tau": 1.0})
    return cogfit.simulate(MODEL, design, params, seed=seed + 1), params


@pytest.fixture(scope="module")
def small():
    table, _ = ra_table()
    return cogfit.TrialData.from_table(table, MODEL)


@pytest.fixture(scope="module")
def nuts_fit(small):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cogfit.fit(MODEL, small, method=cogfit.NUTS(draws=60, tune=60, chains=2), seed=3, progress=False,
                          log_likelihood=True, posterior_predictive=True)


def test_masked_trials_contribute_exactly_zero(small):
    values = {"rho": jnp.full(6, 0.8), "lam": jnp.full(6, 1.7), "tau": jnp.full(6, 0.9)}
    theta = per_trial_theta(MODEL, values, jnp.asarray(small.condition), ())
    padded = np.asarray(trial_loglik(MODEL, theta, jax.tree.map(jnp.asarray, small.fields)))
    i = small.subjects.index(2)
    assert (padded[i, 1:] == 0).all() and padded[i, 0] != 0
    # each subject alone, unpadded, gives the same total
    table = small.to_table()
    for s in small.subjects:
        one = cogfit.TrialData.from_table(table[table.subject == s], MODEL)
        th = per_trial_theta(MODEL, {k: v[:1] for k, v in values.items()}, jnp.asarray(one.condition), ())
        alone = float(jnp.sum(trial_loglik(MODEL, th, jax.tree.map(jnp.asarray, one.fields))))
        assert alone == pytest.approx(float(padded[small.subjects.index(s)].sum()), rel=1e-6)


def test_posterior_dims_coords_and_natural_scale(nuts_fit, small):
    post = nuts_fit.posterior
    assert post["lam"].dims == ("chain", "draw", "subject")
    assert post["lam_mu"].dims == ("chain", "draw", "population")
    assert list(post.population.values) == ["P", "Q"]
    assert list(post.subject.values) == list(small.subjects)
    np.testing.assert_allclose(post["lam_group"].values, 5 * jax.nn.sigmoid(post["lam_mu"].values), rtol=1e-5)
    assert (post["lam"].values > 0).all() and (post["lam"].values < 5).all()
    assert nuts_fit.meta["precision"] == "float32"
    assert "diverging" in nuts_fit.tree["sample_stats"]


def test_same_seed_same_draws(nuts_fit, small):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = cogfit.fit(MODEL, small, method=cogfit.NUTS(draws=60, tune=60, chains=2), seed=3, progress=False)
        other = cogfit.fit(MODEL, small, method=cogfit.NUTS(draws=60, tune=60, chains=2), seed=4, progress=False)
    np.testing.assert_array_equal(again.posterior["lam"].values, nuts_fit.posterior["lam"].values)
    assert not np.array_equal(other.posterior["lam"].values, nuts_fit.posterior["lam"].values)


def test_save_load_roundtrip_is_lossless(nuts_fit, tmp_path):
    path = nuts_fit.save(tmp_path / "fit.nc")
    back = cogfit.load(path)
    for group in ("posterior", "sample_stats", "observed_data", "constant_data", "log_likelihood",
                  "posterior_predictive"):
        xr.testing.assert_identical(nuts_fit.tree[group].to_dataset(), back.tree[group].to_dataset())
    assert back.meta == nuts_fit.meta
    assert back.data.subjects == nuts_fit.data.subjects
    assert back.data.populations == nuts_fit.data.populations
    for k in nuts_fit.data.fields:
        np.testing.assert_array_equal(back.data.fields[k], nuts_fit.data.fields[k])
    pd.testing.assert_frame_equal(back.subject_params(), nuts_fit.subject_params())


def test_log_likelihood_has_one_entry_per_real_trial_and_loo_runs(nuts_fit, small):
    ll = nuts_fit.tree["log_likelihood"]["choice"]
    assert ll.sizes["obs"] == int(small.mask.sum())
    assert np.isfinite(ll.values).all() and (ll.values <= 0).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loo = az.loo(nuts_fit.tree)
    assert np.isfinite(loo.elpd) and loo.elpd < 0


def test_posterior_predictive_simulates_the_design(nuts_fit, small):
    pp = nuts_fit.tree["posterior_predictive"]["choice"]
    assert pp.dims == ("chain", "draw", "obs") and pp.sizes["obs"] == int(small.mask.sum())   # real trials only
    assert set(np.unique(pp.values)) <= {0, 1}


def test_summary_subject_params_and_check(nuts_fit):
    s = nuts_fit.summary()
    assert "lam_group[P]" in s.index and "r_hat" in s.columns
    sp = nuts_fit.subject_params()
    assert set(sp.columns) >= {"subject", "population", "param", "mean", "median", "sd", "lo", "hi"}
    assert ((sp.lo <= sp["median"]) & (sp["median"] <= sp.hi)).all()
    assert len(sp) == 6 * 3 and (sp.lo <= sp["mean"]).all() and (sp["mean"] <= sp.hi).all()
    diag = nuts_fit.check()
    assert set(diag) == {"max_rhat", "min_ess_bulk", "divergences", "ok"}


def test_short_chains_warn_with_a_hint(small):
    with pytest.warns(cogfit.ConvergenceWarning, match="ESS"):
        cogfit.fit(MODEL, small, method=cogfit.NUTS(draws=20, tune=20, chains=2), seed=0, progress=False)


@pytest.mark.parametrize("pooling,site", [("none", "lam_u"), ("complete", "lam_mu")])
def test_pooling_modes(small, pooling, site):
    f = cogfit.fit(MODEL, small, method=cogfit.MAP(laplace=False, steps=300),
                   hierarchy=cogfit.Hierarchy(pooling=pooling), progress=False)
    post = f.posterior
    assert post["lam"].sizes["subject"] == 6
    if pooling == "complete":
        lam = post["lam"].values[0, 0]
        assert np.allclose(lam[small.population == 0], lam[small.population == 0][0])
        assert "lam_sigma" not in post
    else:
        assert "lam_mu" not in post and site in post


@pytest.mark.parametrize("method,pooling", [(cogfit.SVI(guide="normal", steps=400, draws=50), "partial"),
                                            (cogfit.SVI(guide="lowrank", steps=400, draws=50), "partial"),
                                            (cogfit.MAP(laplace=True, steps=400, draws=50), "none")])
def test_svi_and_map_give_draws(small, method, pooling):
    f = cogfit.fit(MODEL, small, method=method, hierarchy=cogfit.Hierarchy(pooling=pooling), seed=1, progress=False)
    post = f.posterior
    assert post.sizes["chain"] == 1 and post.sizes["draw"] == 50
    assert post["lam"].std("draw").min() > 0  # genuine draws, not a point
    assert np.isfinite(post["lam"].values).all()


def test_hierarchical_map_warns_about_collapse(small):
    with pytest.warns(UserWarning, match="MAP of a hierarchical model"):
        cogfit.fit(MODEL, small, method=cogfit.MAP(laplace=False, steps=50), progress=False)


def test_by_condition_gives_each_condition_its_own_parameter():
    table, _ = ra_table(ragged=False)
    table["condition"] = np.where(table.trial % 2 == 0, "even", "odd")
    data = cogfit.TrialData.from_table(table, MODEL)
    f = cogfit.fit(MODEL, data, method=cogfit.MAP(laplace=False, steps=200),
                   hierarchy=cogfit.Hierarchy(by_condition=("tau",)), progress=False)
    assert f.posterior["tau"].dims == ("chain", "draw", "subject", "condition")
    assert f.posterior["tau_mu"].dims == ("chain", "draw", "population", "condition")
    assert "condition" in f.subject_params().columns
    with pytest.raises(ValueError, match="condition"):
        cogfit.fit(MODEL, cogfit.TrialData.from_table(ra_table()[0], MODEL), method="map",
                   hierarchy=cogfit.Hierarchy(by_condition=("tau",)), progress=False)


def test_soft_labels_use_cross_entropy():
    """With soft labels q, each trial contributes sum_k q_k log p_k."""
    table, _ = ra_table(n_subjects=2, ragged=False)
    table["choice_prob_1"], table["choice_prob_2"] = 0.25, 0.75
    data = cogfit.TrialData.from_table(table, MODEL)
    values = {"rho": jnp.full(2, 0.9), "lam": jnp.full(2, 1.5), "tau": jnp.full(2, 0.7)}
    theta = per_trial_theta(MODEL, values, jnp.asarray(data.condition), ())
    fields = jax.tree.map(jnp.asarray, data.fields)
    soft = np.asarray(trial_loglik(MODEL, theta, fields))
    hard = [np.asarray(_hard(theta, fields, k)) for k in (0, 1)]
    np.testing.assert_allclose(soft, 0.25 * hard[0] + 0.75 * hard[1], rtol=1e-6)


def _hard(theta, fields, k):
    f = {name: v for name, v in fields.items() if name != "choice_prob"}
    f["choice"] = jnp.full_like(fields.choice, k)
    return trial_loglik(MODEL, theta, cogfit.Record(f))


def test_unknown_model_and_options_are_clear_errors(small):
    with pytest.raises(KeyError, match="available"):
        cogfit.models.get("no_such_model")
    with pytest.raises(ValueError, match="pooling"):
        cogfit.Hierarchy(pooling="some")
    with pytest.raises(ValueError, match="method"):
        cogfit.fit(MODEL, small, method="abc", progress=False)


def test_variants_with_fixed_parameters_fit_and_simulate(small):
    """Model.fixed constants reach the vmapped likelihood and simulator as per-subject arrays."""
    nola = cogfit.models.get("prospect_ra_nola")
    f = cogfit.fit(nola, small, method=cogfit.SVI(steps=100, draws=20), progress=False)
    assert "lam" not in f.posterior and np.isfinite(f.posterior["rho"].values).all()
    f = f.with_posterior_predictive(n_draws=4)
    assert len(set(f.tree["posterior_predictive"]["obs_subject"].values)) == small.n_subjects


def test_convergence_warnings_name_the_worst_subject():
    from cogfit._fit import _worst
    stat = xr.Dataset({"t": ("subject", [1.0, 1.2, np.nan]), "t_mu": ((), 1.05)},
                      coords={"subject": ["s1", "s64", "s3"]})
    assert _worst(stat, ["t_mu", "t"], max) == "t[subject=s64]"
    assert _worst(stat, ["t_mu", "t"], min) == "t[subject=s1]"
    assert _worst(stat, ["t_mu"], max) == "t_mu"


def test_log_likelihood_matches_each_subjects_own_loglik(nuts_fit, small):
    """Per-trial values (computed in length buckets) equal loglik on each subject's own trials."""
    ll = nuts_fit.tree["log_likelihood"]["choice"].values[1, 7]           # chain 1, draw 7
    post = nuts_fit.posterior
    obs_subject = nuts_fit.tree["log_likelihood"]["choice"]["obs_subject"].values
    for s, sid in enumerate(small.subjects):
        n = int(small.n_trials[s])
        theta = MODEL.theta({p: jnp.asarray(post[p].values[1, 7, s]) for p in MODEL.param_names})
        trials = cogfit.Record({k: jnp.asarray(np.asarray(v)[s, :n]) for k, v in small.fields.items()})
        expected = np.asarray(MODEL.loglik(theta, trials))
        np.testing.assert_allclose(ll[obs_subject.astype(str) == str(sid)], expected, rtol=1e-5, atol=1e-6)


def test_split_chains_tells_separate_modes_from_slow_mixing():
    from cogfit._diagnose import split_chains
    rng = np.random.default_rng(0)
    same = rng.normal(size=(4, 400, 3))
    assert not split_chains(same).any()
    apart = same.copy()
    apart[3, :, 1] += 6.0                              # chain 3 sits in another mode for value 1
    assert split_chains(apart).tolist() == [False, True, False]
    assert split_chains(np.exp(apart)).tolist() == [False, True, False]   # scale-free
    visits = same.copy()
    visits[3, ::4, 1] += 6.0                           # chain 3 visits the other mode now and then
    assert not split_chains(visits).any()
    visits[3, 1::4, 1] += 6.0
    visits[3, 2::4, 1] += 6.0                          # ... but spends most of its draws there
    assert split_chains(visits).tolist() == [False, True, False]
    shifted = same.copy()
    shifted[3] += 0.5                                  # slow mixing, same region: not split
    assert not split_chains(shifted).any()
    # unimodal chains that drift slowly (AR(1), lag-1 autocorrelation 0.97, ~8 effective draws per
    # chain): their medians often fall outside each other's IQR, which Monte-Carlo error explains
    rho, n = 0.97, 400
    slow = np.zeros((4, 500, n))
    slow[:, 0] = rng.normal(size=(4, n))
    for t in range(1, 500):
        slow[:, t] = rho * slow[:, t - 1] + np.sqrt(1 - rho**2) * rng.normal(size=(4, n))
    lo, med, hi = np.quantile(slow, [0.25, 0.5, 0.75], axis=1)
    out = (med[:, None] < lo[None]) | (med[:, None] > hi[None])
    assert np.any(out & np.swapaxes(out, 0, 1), axis=(0, 1)).mean() > 0.3   # the IQR rule alone
    assert split_chains(slow).mean() < 0.01
    fast = rng.normal(size=(4, 60, 5))                  # 60 independent draws per chain, one chain
    fast[2, :, 0] += 5.0                                # 5 sd away: short, but clearly split
    assert split_chains(fast).tolist() == [True, False, False, False, False]


def test_flags_lists_failing_values_with_split_chains_first(nuts_fit, small):
    tree = nuts_fit.tree.copy()
    post = tree["posterior"].to_dataset()
    lam = post["lam"].copy()
    lam.values[1, :, 4] += 5.0 * float(lam.values[..., 4].std())   # chain 1 of subject 4: another mode
    tree["posterior"] = xr.DataTree(post.assign(lam=lam))
    fl = dataclasses.replace(nuts_fit, tree=tree).flags()
    assert list(fl.columns) == ["variable", "subject", "population", "condition", "r_hat", "ess_bulk",
                                "split", "chain_medians"]
    top = fl.iloc[0]
    assert (top.variable, top.subject, bool(top.split)) == ("lam", small.subjects[4], True)
    assert top.r_hat > 1.5 and len(top.chain_medians) == 2
    assert top.population == small.populations[small.population[4]]
    assert ((fl.r_hat > 1.01) | (fl.ess_bulk < 400)).all()
    # every failing value of lam is listed once, with the R-hat arviz computes
    rhat = az.rhat(tree, var_names=["lam"])["lam"].values
    ess = az.ess(tree, var_names=["lam"], method="bulk")["lam"].values
    failing = rhat[(rhat > 1.01) | (ess < 400)]
    assert sorted(fl[fl.variable == "lam"].r_hat) == pytest.approx(sorted(failing))
    strict = dataclasses.replace(nuts_fit, tree=tree).flags(rhat_max=10.0, ess_min=0.0)
    assert strict.empty


def test_differences_compare_the_fits_populations(nuts_fit, small):
    df = nuts_fit.differences()
    assert list(df.param) == list(MODEL.param_names) and set(df.contrast) == {"Q - P"}
    g = nuts_fit.posterior["lam_group"]
    d = (g.sel(population="Q") - g.sel(population="P")).values
    assert df.set_index("param").loc["lam", "mean"] == pytest.approx(d.mean())
    first = small.subjects[0]
    members = nuts_fit.differences(["lam"], summary="members", exclude=[first])
    lam = nuts_fit.posterior["lam"].values
    pops = np.asarray(small.populations)[small.population]
    keep = np.arange(small.n_subjects) != 0
    expect = lam[..., keep & (pops == "Q")].mean(-1) - lam[..., keep & (pops == "P")].mean(-1)
    assert members["mean"].item() == pytest.approx(expect.mean())


def test_sd_prior_scale_reaches_the_fit_and_survives_save_load(small, nuts_fit, tmp_path):
    tight = MODEL.with_sd_prior(0.05)
    assert tight.name == MODEL.name and set(tight.sd_scales().values()) == {0.05}
    assert MODEL.sd_scales() == {p: 1.0 for p in MODEL.param_names}          # the zoo's model is unchanged
    assert MODEL.with_sd_prior({"lam": 0.3}).sd_scales() == {"rho": 1.0, "lam": 0.3, "tau": 1.0}
    with pytest.raises(KeyError, match="no parameter"):
        MODEL.with_sd_prior({"alpha": 0.5})
    with pytest.raises(ValueError, match="positive"):
        MODEL.with_sd_prior(0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = cogfit.fit(tight, small, method=cogfit.NUTS(draws=60, tune=60, chains=2), seed=3, progress=False)
    # HalfNormal(0.05) has its 99.9% quantile at 0.16: the spread of lam is held there, unlike the default's
    assert float(fit.posterior["lam_sigma"].quantile(0.9)) < 0.16 < float(nuts_fit.posterior["lam_sigma"].quantile(0.9))
    back = cogfit.load(fit.save(tmp_path / "tight.nc"))
    assert back.model.sd_scales() == tight.sd_scales()
    assert cogfit.load(nuts_fit.save(tmp_path / "default.nc")).model.sd_scales() == MODEL.sd_scales()
