"""A slice of the robustness suite (benchmarks/robustness.py, issue 30) with cogfit.fit's defaults
(NUTS 4 x (1000 + 1000), centring chosen by the pilot): the textbook 20 x 100 bandit design that
the 100-trial centring rule broke, and an LLM-like population with almost no spread."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
import robustness as R  # noqa: E402


@pytest.mark.parametrize("cell", [R.Cell("bandit_rw", 20, 100, False, "typical"),
                                  R.Cell("bandit_rw", 20, 100, False, "narrow")], ids=R.Cell.label)
def test_defaults_converge_on_a_slice_of_the_suite(cell):
    row = R.run_cell(cell, method=R.parse_nuts([], None))
    assert (row["draws"], row["chains"]) == (1000, 4)
    assert row["divergences"] == 0, row
    assert row["max_rhat"] <= 1.01, row


def test_remedy_follows_the_warnings():
    row = dict(divergences=3, target_accept=0.9, max_rhat=1.005, min_ess_bulk=900.0, draws=1000, chains=4)
    assert R.remedy(row) == dict(target_accept=0.95)
    assert R.remedy(dict(row, target_accept=0.95)) == dict(target_accept=0.99)
    assert R.remedy(dict(row, divergences=0, max_rhat=1.02)) == dict(draws=2000, tune=2000)
    assert R.remedy(dict(row, divergences=0, min_ess_bulk=150.0, draws=500)) == dict(draws=1000, tune=1000)
    assert R.remedy(dict(row, max_rhat=1.02)) == dict(target_accept=0.95, draws=2000, tune=2000)
    assert R.converged(dict(row, divergences=0)) and not R.converged(row)
