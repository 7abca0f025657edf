"""blocks="population": NUTS on each population alone, joined into one fit."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from numpyro.infer.util import log_density

import cogfit
from cogfit._hierarchy import build, model_args, subject_sites
from cogfit.inference import blocks

MODEL = cogfit.models.get("prospect_ra")


@pytest.fixture(scope="module")
def data():
    design = cogfit.random_design(MODEL, n_subjects=5, n_trials=20, seed=0, populations=["P", "Q"])
    design = design[~((design.subject == 3) & (design.trial >= 12))]          # ragged: Q's longest is shorter
    rng = np.random.default_rng(0)
    params = {"subject": range(5), "rho": rng.uniform(0.7, 1.1, 5), "lam": [1.2, 1.5, 1.3, 6.0, 1.4], "tau": 1.0}
    table = cogfit.simulate(MODEL, design, pd.DataFrame(params), seed=1)
    return cogfit.TrialData.from_table(table, MODEL)


def _point(data, mask, rng):
    point = {}
    for j, p in enumerate(MODEL.params):
        point[f"{p.name}_mu"] = rng.normal(0, 0.5, len(data.populations))
        point[f"{p.name}_sigma"] = rng.uniform(0.3, 2.0, len(data.populations))
        for site, _, idx in subject_sites(p.name, mask[:, j]):
            point[site] = rng.normal(0, 1.5, len(idx))
    return point


@pytest.mark.parametrize("population, nu", [("normal", None), ("student_t", 4.0)])
def test_the_log_density_is_the_sum_of_the_populations(data, population, nu):
    """The joint log density at a point equals the sum of each population's own model at that
    population's part of the point: the posterior factorises, so sampling the blocks alone
    samples the joint posterior."""
    S = data.n_subjects
    mask = np.arange(S * 3).reshape(S, 3) % 2 == 0                  # mixed centring
    point = _point(data, mask, np.random.default_rng(2))
    joint, _ = log_density(build(MODEL, data, centered=mask, population=population, nu=nu), model_args(data), {},
                           {k: jnp.asarray(v, jnp.float32) for k, v in point.items()})
    parts = blocks.members(data)
    assert [list(i) for i in parts] == [[0, 2, 4], [1, 3]]
    total = 0.0
    for g, idx in enumerate(parts):
        sub = blocks.subset(data, idx, g)
        assert sub.max_trials == int(data.n_trials[idx].max()) and sub.populations == (data.populations[g],)
        part_point = {}
        for j, p in enumerate(MODEL.params):
            part_point[f"{p.name}_mu"] = point[f"{p.name}_mu"][g:g + 1]
            part_point[f"{p.name}_sigma"] = point[f"{p.name}_sigma"][g:g + 1]
            raw = np.empty(S)                        # each subject's latent value, whatever its site's name
            for site, _, whole_idx in subject_sites(p.name, mask[:, j]):
                raw[whole_idx] = point[site]
            for site, _, sub_idx in subject_sites(p.name, mask[idx, j]):
                part_point[site] = raw[idx[sub_idx]]
        lp, _ = log_density(build(MODEL, sub, centered=mask[idx], population=population, nu=nu), model_args(sub), {},
                            {k: jnp.asarray(v, jnp.float32) for k, v in part_point.items()})
        total += float(lp)
    np.testing.assert_allclose(total, float(joint), rtol=1e-5)


def test_the_joined_fit_holds_each_population_fit_in_data_order(data):
    """The joined draws are exactly those of each population fitted alone with its block seed:
    subject variables back in data order, population variables in population order, and the
    sampler statistics per population (``diverging`` any, ``lp`` summed)."""
    nuts = cogfit.NUTS(draws=20, tune=30, chains=2, chain_method="sequential", centered=None)   # by trials
    settings = dict(progress=False, warn=False)
    whole = cogfit.fit(MODEL, data, method=dataclasses.replace(nuts, blocks="population"), seed=3, **settings)
    assert whole.meta["blocks"] == "population" and whole.posterior.sizes["subject"] == 5
    assert list(whole.posterior.subject.values) == list(data.subjects)
    stats = whole.tree["sample_stats"]
    diverging, lp = np.zeros((2, 20), bool), np.zeros((2, 20))
    per_population = stats["diverging_population"].values
    for g, idx in enumerate(blocks.members(data)):
        alone = cogfit.fit(MODEL, blocks.subset(data, idx, g), method=nuts, seed=blocks.block_seed(3, g), **settings)
        for p in MODEL.param_names:
            np.testing.assert_array_equal(whole.posterior[p].values[:, :, idx], alone.posterior[p].values)
            np.testing.assert_array_equal(whole.posterior[f"{p}_mu"].values[:, :, g],
                                          alone.posterior[f"{p}_mu"].values[:, :, 0])
        alone_stats = alone.tree["sample_stats"]
        np.testing.assert_array_equal(stats["n_steps"].values[..., g], alone_stats["n_steps"].values)
        diverging |= alone_stats["diverging"].values
        np.testing.assert_array_equal(per_population[..., g], alone_stats["diverging"].values)
        lp += alone_stats["lp"].values
    np.testing.assert_array_equal(stats["diverging"].values, diverging)
    assert whole.check()["divergences"] == int(per_population.sum())
    np.testing.assert_allclose(stats["lp"].values, lp, rtol=1e-6)
    assert whole.meta["centered_mask"]["lam"] == "".join("1" if n >= 100 else "0" for n in data.n_trials)


def test_blocks_need_populations_that_share_no_parameter(data):
    with pytest.raises(ValueError, match="fixed nu"):
        cogfit.fit(MODEL, data, method=cogfit.NUTS(blocks="population"),
                   hierarchy=cogfit.Hierarchy(population="student_t"))
    with pytest.raises(ValueError, match="blocks must be one of"):
        cogfit.NUTS(blocks="subject")


def test_centring_and_jumps_are_cut_to_each_population(data):
    parts = blocks.members(data)
    mask = np.arange(10).reshape(5, 2)
    cut = blocks.per_block(mask, data, parts)
    np.testing.assert_array_equal(cut[0], mask[[0, 2, 4]])
    np.testing.assert_array_equal(cut[1], mask[[1, 3]])
    assert blocks.per_block("auto", data, parts) == ["auto", "auto"]
    assert blocks.per_block({"3": {"lam": 1.0}}, data, parts) == [None, {"3": {"lam": 1.0}}]
    with pytest.raises(KeyError, match="7"):
        blocks.per_block({7: {"lam": 1.0}}, data, parts)


def test_an_empty_population_is_named():
    design = cogfit.random_design(MODEL, n_subjects=2, n_trials=5, seed=0, populations=["P"])
    table = cogfit.simulate(MODEL, design, pd.DataFrame({"subject": [0, 1], "rho": 0.9, "lam": 1.5, "tau": 1.0}))
    data = cogfit.TrialData.from_table(table, MODEL, populations=["P", "Empty"])
    with pytest.raises(ValueError, match="Empty"):
        blocks.members(data)


def test_divergences_count_each_population_when_they_coincide():
    """Two populations diverging at the same draw are two divergences, not one ``any`` flag."""
    import xarray as xr

    from cogfit._fit import _divergences

    per_population = np.zeros((2, 5, 3), bool)
    per_population[0, 1, [0, 2]] = True                      # two populations at one draw
    per_population[1, 4, 1] = True
    stats = xr.Dataset({"diverging": (("chain", "draw"), per_population.any(-1)),
                        "diverging_population": (("chain", "draw", "population"), per_population)})
    assert _divergences(xr.DataTree.from_dict({"sample_stats": stats})) == 3
    assert _divergences(xr.DataTree.from_dict({"sample_stats": stats.drop_vars("diverging_population")})) == 2
