"""Posterior predictive pictures (cogfit.ppc): one per family, observed statistics computed as a
reader would compute them from the trials table."""

import dataclasses

import matplotlib
import numpy as np
import pytest
from family_fits import family_fit

import cogfit
from cogfit.ppc import kinds, plot_ppc

matplotlib.use("Agg")

FAMILIES = {"cpt_linear": ("choice",), "bandit_dual": ("learner",), "twostep_hybrid4": ("twostep",),
            "ddm": ("rt",), "rlddm": ("learner", "rt")}


@pytest.mark.parametrize("name", list(FAMILIES))
def test_one_picture_per_family(name):
    fit = family_fit(name)
    assert kinds(fit.model) == FAMILIES[name]
    fig = fit.plot_ppc(n_draws=40)
    axes = fig.axes
    assert len(axes) == sum(2 if k in ("learner", "rt") else 1 for k in FAMILIES[name])
    for ax in axes:
        assert ax.get_xlabel() or ax.get_xticklabels() and ax.get_ylabel() and ax.get_title()
    labels = [t.get_text() for t in axes[-1].get_legend().get_texts()]
    assert any("human: observed" in t for t in labels) and any("llm: predicted" in t for t in labels)


def _observed(ax, label):
    """The y values of the observed markers of one series."""
    for line in ax.get_lines():
        if line.get_label() == f"{label}: observed":
            return np.asarray(line.get_ydata(), float)
    raise AssertionError(f"no observed series {label!r}")


def test_observed_statistics_match_the_table():
    """Win-stay / lose-shift and two-step stay probabilities drawn as observed equal the pandas ones."""
    fit = family_fit("bandit_dual")
    fig = fit.plot_ppc(n_draws=20)
    t = fit.data.to_table()
    t["population"] = np.repeat(fit.data.subject_populations, fit.data.n_trials)
    t["stay"] = t.groupby("subject")["choice"].shift() == t["choice"]
    t["prev_win"] = t.groupby("subject")["reward"].shift() > 0
    t = t[t.groupby("subject").cumcount() > 0]
    human = t[t.population == "human"]
    expected = [human[human.prev_win].stay.mean(), 1 - human[~human.prev_win].stay.mean()]
    np.testing.assert_allclose(_observed(fig.axes[1], "human"), expected)

    fit = family_fit("twostep_hybrid4")
    fig = fit.plot_ppc(n_draws=20)
    t = fit.data.to_table()
    t["population"] = np.repeat(fit.data.subject_populations, fit.data.n_trials)
    g = t.groupby("subject")
    t["stay"] = g["choice"].shift() == t["choice"]
    t["won"] = g["reward"].shift() > 0
    t["common"] = (g["state2"].shift() == g["choice"].shift())
    t = t[g.cumcount() > 0]
    llm = t[t.population == "llm"]
    cells = [(True, True), (True, False), (False, True), (False, False)]
    expected = [llm[(llm.won == w) & (llm.common == c)].stay.mean() for w, c in cells]
    np.testing.assert_allclose(_observed(fig.axes[0], "llm"), expected)


def test_rt_quantiles_are_the_data_quantiles_at_defective_heights():
    fit = family_fit("ddm")
    fig = fit.plot_ppc(n_draws=20)
    t = fit.data.to_table()
    t["population"] = np.repeat(fit.data.subject_populations, fit.data.n_trials)
    human = t[t.population == "human"]
    for r, ax in enumerate(fig.axes):
        line = next(ln for ln in ax.get_lines() if ln.get_label() == "human: observed")
        rts = human.rt[human.choice == r]
        np.testing.assert_allclose(line.get_xdata(), np.quantile(rts, [0.1, 0.3, 0.5, 0.7, 0.9]))
        np.testing.assert_allclose(line.get_ydata(), (human.choice == r).mean() * np.array([0.1, 0.3, 0.5, 0.7, 0.9]))


def test_prob_must_be_a_probability():
    with pytest.raises(ValueError, match="prob"):
        plot_ppc(family_fit("cpt_linear"), prob=90)


def test_learner_predictions_need_the_payoff_schedule():
    fit = family_fit("bandit_dual")
    table = fit.data.to_table().drop(columns=["payoff_1", "payoff_2"])
    bare = dataclasses.replace(fit, data=cogfit.TrialData.from_table(table, fit.model))
    with pytest.raises(ValueError, match="payoff_1..payoff_K"):
        plot_ppc(bare)
