"""Issue 31: the interval of the mean difference between two populations covers the true shift at
its nominal rate, and a wrong truth is caught.

``benchmarks/bench_alignment_coverage.py`` simulates ``REPS`` data sets of 8 ``human`` and 8
``llm`` subjects x 40 trials of ``prospect_ra`` with only loss aversion ``lam`` free. Truth
"prior": each population's group mean ``mu`` and spread ``sigma`` (unconstrained) are drawn from
the model's own priors, so the LLM population's mean is shifted from the human one by a known
amount that differs between data sets, and a correct posterior covers it at exactly the nominal
rate over data sets (at one fixed truth the rate need not be nominal: see the benchmark's
``--truth fixed`` in ``benchmarks/RESULTS.md``). All data sets are fitted in one vectorised NUTS
program (``cogfit.fit_batch``, 2 non-centred chains of 75 + 75) and each fit's
``Fit.differences(reference="human")`` interval (natural scale) is scored against the truth.

Bound: the count of covering intervals must be one a two-sided 1% binomial test accepts under
Binomial(REPS, prob), for prob 0.9 and 0.5 (``binomial_range``: 17-24 and 6-18 of 24). The same
intervals scored against a wrong truth, the LLM's ``mu`` 1.0 higher (unconstrained), must fall
below the 90% range: the check has the power to fail. The benchmark runs more data sets
(``benchmarks/RESULTS.md``).
"""

import importlib.util
from pathlib import Path

import pytest

REPS, DRAWS, TUNE, SEED = 24, 75, 75, 0


def _bench():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_alignment_coverage.py"
    spec = importlib.util.spec_from_file_location("bench_alignment_coverage", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def scored():
    b = _bench()
    datasets, mus = b.make_datasets(REPS, truth="prior", seed=SEED)
    batch = b.fit(datasets, draws=DRAWS, tune=TUNE, seed=SEED)
    return b, b.coverage(batch, mus, probs=(0.5, 0.9)), b.coverage(batch, mus, probs=(0.9,), offset=1.0)


@pytest.mark.parametrize("prob", [0.5, 0.9])
def test_difference_interval_covers_the_true_shift(scored, prob):
    b, table, _ = scored
    k = int(table[f"in_{round(100 * prob)}"].sum())
    lo, hi = b.binomial_range(REPS, prob)
    assert lo <= k <= hi, (f"{prob:.0%} intervals of lam[llm] - lam[human] covered the truth in {k}/{REPS} data "
                           f"sets; Binomial({REPS}, {prob}) accepts {lo}-{hi} at 1%\n{table.round(3).to_string()}")


def test_a_wrong_truth_fails_the_check(scored):
    b, _, wrong = scored
    k = int(wrong["in_90"].sum())
    lo, _ = b.binomial_range(REPS, 0.9)
    assert k < lo, f"90% intervals covered a truth 1.0 too far in {k}/{REPS} data sets; the check cannot fail"
