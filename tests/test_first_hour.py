"""A new user's first hour (issue 36): each friction found, guarded by a test."""

import dataclasses
import json

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import cogfit
from cogfit._demo import DEMO_CSV

MODEL = "cpt_linear"


@pytest.fixture(scope="module")
def demo():
    """The embedded demo table, 4 subjects of each population, 30 trials each (ragged: the
    last subject keeps 20), so packed arrays have padded slots."""
    table = pd.read_csv(DEMO_CSV)
    keep = table["subject"].drop_duplicates().iloc[:8]
    table = table[table["subject"].isin(keep) & (table["trial"] < 30)]
    last = keep.iloc[-1]
    return table[(table["subject"] != last) | (table["trial"] < 20)].reset_index(drop=True)


def _svi(data, *, steps=300, draws=50, seed=0):
    return cogfit.fit(MODEL, data, method=cogfit.SVI(steps=steps, draws=draws), seed=seed, progress=False,
                      warn=False)


# --- 2. human and LLM tables combine when their subject ids differ in type ---------------------

def test_mixed_subject_id_types(demo):
    human = demo[demo["population"].str.startswith("human")].copy()
    llm = demo[demo["population"].str.startswith("llm")].copy()
    human["subject"] = human["subject"].str[3:].astype(int)            # 0, 2, 4, ...
    llm["subject"] = "gpt-" + llm["subject"]
    both = pd.concat([human, llm], ignore_index=True)
    data = cogfit.TrialData.from_table(both, MODEL)
    assert data.subjects == tuple(pd.unique(both["subject"]))          # order of first appearance
    assert {type(s) for s in data.subjects} == {int, str}
    back = data.to_table()
    for s in data.subjects:                                             # each subject's own trials
        want = both[both["subject"] == s].sort_values("trial")
        got = back[back["subject"] == s]
        np.testing.assert_array_equal(got["choice"].to_numpy(), want["choice"].to_numpy())
        np.testing.assert_array_equal(got["x_a_1"].to_numpy(), want["x_a_1"].to_numpy())
    one = [t[t["subject"] == t["subject"].iloc[0]] for t in (human, llm)]
    clash = pd.concat([one[0].assign(subject=1), one[1].assign(subject="1")], ignore_index=True)
    with pytest.raises(cogfit.DataError, match="ids 1 and '1' differ only in type"):
        cogfit.TrialData.from_table(clash, MODEL)


# --- 3. validation holes ----------------------------------------------------------------------

def _four_outcomes(demo):
    """The demo lotteries as four-outcome lotteries (two outcomes of probability 0 added)."""
    t = demo.copy()
    for side in "ab":
        t[f"x_{side}_3"], t[f"x_{side}_4"] = 0.0, 0.0
        t[f"p_{side}_3"], t[f"p_{side}_4"] = 0.0, 0.0
    return t


def test_missing_numbered_column_is_named(demo):
    t = _four_outcomes(demo)
    cogfit.TrialData.from_table(t, MODEL)                                # complete: fine
    with pytest.raises(cogfit.DataError, match=r"column x_b_2 missing"):
        cogfit.TrialData.from_table(t.drop(columns="x_b_2"), MODEL)
    with pytest.raises(cogfit.DataError, match=r"x_b: 3.*missing x_b_4 \(have x_b_1, x_b_2, x_b_3\)"):
        cogfit.TrialData.from_table(t.drop(columns="x_b_4"), MODEL)


def test_row_means_the_table_index(demo, tmp_path):
    t = demo.copy()
    t.loc[7, "choice"] = 5
    path = tmp_path / "trials.csv"
    t.to_csv(path, index=False)
    with pytest.raises(cogfit.DataError, match=r"row 7\b") as err:
        cogfit.TrialData.from_table(pd.read_csv(path), MODEL)
    assert err.value.index == 7
    assert path.read_text().splitlines()[7 + 1].split(",")[demo.columns.get_loc("choice")] == "5"  # line 9


# --- 4. observed data and predictions hold real trials only ------------------------------------

@pytest.fixture(scope="module")
def fitted(demo):
    data = cogfit.TrialData.from_table(demo, MODEL)
    return _svi(data).with_log_likelihood().with_posterior_predictive()


def test_observed_and_predicted_hold_real_trials_only(fitted, demo, tmp_path):
    n = len(demo)
    assert int(fitted.data.mask.size) > n                               # the packed arrays are padded
    obs = fitted.tree["observed_data"]["choice"]
    pp = fitted.tree["posterior_predictive"]["choice"]
    ll = fitted.tree["log_likelihood"]["choice"]
    assert obs.dims == ("obs",) and obs.size == n
    assert pp.dims == ("chain", "draw", "obs") and pp.sizes["obs"] == n
    assert pp.sizes["draw"] == ll.sizes["draw"] == fitted.posterior.sizes["draw"]  # every draw
    for coord in ("obs_subject", "obs_trial"):
        np.testing.assert_array_equal(obs[coord].values, ll[coord].values)
        np.testing.assert_array_equal(pp[coord].values, ll[coord].values)
    table = demo.set_index(["subject", "trial"])["choice"]
    want = table.loc[list(zip(obs["obs_subject"].values, obs["obs_trial"].values))].to_numpy()
    np.testing.assert_array_equal(obs.values, want)
    pit = az.loo_pit(fitted.tree)                                        # needs draws and obs to line up
    assert pit["choice"].shape == (n,) and np.all((pit["choice"] >= 0) & (pit["choice"] <= 1))
    back = cogfit.load(fitted.save(tmp_path / "fit.nc"))
    for k, v in fitted.data.fields.items():
        np.testing.assert_array_equal(back.data.fields[k], v)


def test_load_reads_files_with_padded_slots(fitted, tmp_path):
    """Files written before the change stored observed data as (subject, slot) with padding."""
    old = fitted.tree.copy()
    old["observed_data"] = old["observed_data"].to_dataset().drop_vars(["obs", "obs_subject", "obs_trial"]).assign(
        choice=(("subject", "slot"), np.asarray(fitted.data.fields["choice"])))
    del old["posterior_predictive"]
    path = tmp_path / "old.nc"
    old.to_netcdf(path, engine="h5netcdf")
    back = cogfit.load(path)
    np.testing.assert_array_equal(back.data.fields["choice"], fitted.data.fields["choice"])
    assert back.tree["observed_data"]["choice"].dims == ("obs",)
    np.testing.assert_array_equal(back.tree["observed_data"]["choice"].values,
                                  fitted.tree["observed_data"]["choice"].values)


# --- 5. check() reports what is meaningful for each method --------------------------------------

def test_check_of_svi_and_map(fitted):
    svi = fitted.check()
    assert "max_rhat" not in svi and svi["method"] == "svi"
    assert svi["ok"] and np.isfinite(svi["final_loss"]) and svi["min_sigma"] > 1e-3 and svi["collapsed"] == []
    # A hierarchical MAP whose group spread collapsed, with a singular Laplace Hessian for lam.
    tree = fitted.tree.copy()
    post = tree["posterior"].to_dataset()
    post["alpha_sigma"] = post["alpha_sigma"] * 0 + 1e-5
    post["lam"] = post["lam"].isel(draw=[0]).broadcast_like(post["lam"])
    tree["posterior"] = xr.DataTree(post)
    meta = dict(fitted.meta, method="map")
    tree.attrs["cogfit"] = json.dumps(meta)
    point = dataclasses.replace(fitted, tree=tree)
    with pytest.warns(cogfit.ConvergenceWarning, match="collapsed"):
        got = point.check(warn=True)
    assert got["method"] == "map" and not got["ok"]
    assert got["collapsed"] == ["alpha_sigma"] and got["constant"] == ["lam"]
    assert got["min_sigma"] == pytest.approx(1e-5)
