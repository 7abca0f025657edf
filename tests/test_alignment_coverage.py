"""Issue 31: the interval of the mean difference between two populations covers the true shift at
its nominal rate, and a wrong truth is caught.

``benchmarks/bench_alignment_coverage.py`` simulates ``REPS`` data sets of 8 ``human`` and 8
``llm`` subjects x 40 trials of ``prospect_ra`` with only loss aversion ``lam`` free; the LLM
population's group mean ``mu`` (unconstrained) sits 0.5 above the human one (truth "fixed": lam
1.34 -> 1.89, subjects' sd 0.5). All data sets are fitted in one vectorised NUTS program
(``cogfit.fit_batch``, 2 non-centred chains of 100 + 100) and each fit's
``Fit.differences(reference="human")`` interval (natural scale) is scored against the truth.

Bound: the count of covering intervals must be one a two-sided 1% binomial test accepts under
Binomial(REPS, prob), for prob 0.9 and 0.5 (``binomial_range``: 22-30 and 8-22 of 30). The same
intervals scored against a truth shifted by a further 1.0 (unconstrained) must fall below the 90%
range: the check has the power to fail. The benchmark runs 200 data sets
(``benchmarks/RESULTS.md``).
"""

import importlib.util
from pathlib import Path

import pytest

REPS, DRAWS, TUNE, SEED = 30, 100, 100, 0


def _bench():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_alignment_coverage.py"
    spec = importlib.util.spec_from_file_location("bench_alignment_coverage", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def scored():
    b = _bench()
    datasets, mus = b.make_datasets(REPS, truth="fixed", seed=SEED)
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
