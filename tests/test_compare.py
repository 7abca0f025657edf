"""PSIS-LOO model comparison (cogfit.comparison) on two models of every family, at the level where
leaving data out is meaningful."""

import dataclasses

import numpy as np
import pytest
from family_fits import family_fit

import cogfit
from cogfit.comparison import loo, pointwise

# family: (the model data are simulated from, a rival fitted to the same data)
PAIRS = {
    "prospect": ("prospect_ra", "prospect_ra_nola"),
    "bandit": ("bandit_dual", "bandit_rw"),
    "twostep": ("twostep_hybrid4", "twostep_hybrid6"),
    "ddm": ("ddm", "ddm_sdv"),
    "rlddm": ("rlddm", "rlddm_dual"),
}


def _fits(family):
    true_name, rival_name = PAIRS[family]
    return {name: family_fit(true_name, name) for name in (true_name, rival_name)}


@pytest.mark.parametrize("family", list(PAIRS))
def test_compare_runs_on_two_models_of_every_family(family):
    fits = _fits(family)
    result = cogfit.compare(fits)
    expected = "subject" if next(iter(fits.values())).model.stateful else "trial"
    assert result.level == expected and set(result.table.index) == set(fits)
    assert np.isfinite(result.table["elpd"]).all() and result.table["weight"].sum() == pytest.approx(1.0, abs=1e-6)
    n = 6 if expected == "subject" else 6 * 60
    assert all(r.n_data_points == n for r in result.loo.values())
    assert "PSIS-LOO" in str(result)


def test_the_true_model_wins_where_the_data_can_tell():
    """Loss aversion 2.5 in the data: the model without loss aversion predicts held-out trials worse."""
    table = cogfit.compare(_fits("prospect")).table
    assert table.index[0] == "prospect_ra"
    gap = table.loc["prospect_ra", "elpd"] - table.loc["prospect_ra_nola", "elpd"]
    assert gap == pytest.approx(abs(table.loc["prospect_ra_nola", "elpd_diff"]), rel=1e-3)
    assert gap > 2 * table.loc["prospect_ra_nola", "dse"]


def test_subject_level_sums_each_subjects_trials_and_constant_trials_count_exactly():
    fits = _fits("bandit")
    fit = fits["bandit_rw"]
    trial, subject = pointwise(fit, "trial"), pointwise(fit, "subject")
    assert subject.sizes["subject"] == fit.data.n_subjects
    first = subject["subject"].values[0]
    np.testing.assert_allclose(subject.sel(subject=first).values,
                               trial.where(trial["obs_subject"] == first, drop=True).sum("obs").values, rtol=1e-9)
    result = loo(fit, "trial")                # each learner's first choice is a coin flip in every draw
    firsts = np.flatnonzero(np.r_[True, trial["obs_subject"].values[1:] != trial["obs_subject"].values[:-1]])
    np.testing.assert_allclose(result.elpd_i.values[firsts], np.log(0.5), rtol=1e-6)
    assert (result.pareto_k.values[firsts] == 0).all() and result.n_data_points == trial.sizes["obs"]
    assert result.elpd == pytest.approx(result.elpd_i.values.sum())
    assert set(cogfit.compare(fits, level="trial").table.index) == set(fits)


def test_compare_refuses_fits_of_different_data():
    fit = family_fit("prospect_ra")
    fewer = cogfit.TrialData.from_table(fit.data.to_table().query("trial < 30"), fit.model)
    with pytest.raises(ValueError, match="same data"):
        cogfit.compare({"a": fit, "b": dataclasses.replace(fit, data=fewer)})
    with pytest.raises(ValueError, match="at least two"):
        cogfit.compare({"a": fit})
