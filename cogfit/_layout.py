"""Length buckets: subjects with similar trial counts are packed together for the likelihood.

``TrialData`` pads every subject to the longest subject's trial count. When lengths differ a
lot (spektor2024lossaversion: 185 subjects with 98 trials, 40 with 352, 57 with 720) most of the
padded slots are waste: 203k slots for 73k trials. The likelihood is therefore evaluated on a
few buckets, each ``(subjects_in_bucket, its own max_trials)``, and the per-bucket sums added.
Subjects stay whole (learners scan over their own trials) and each bucket stays a dense
``(subjects, trials)`` block, so there is no scatter over trials.

Bucket boundaries minimise the padded slots for at most ``max_buckets`` buckets (an exact
dynamic programme over the distinct trial counts); the fewest buckets within ``tolerance`` of
that minimum are used, since every bucket adds one more traced copy of the likelihood.
"""

from __future__ import annotations

import numpy as np

MAX_BUCKETS = 4
TOLERANCE = 0.15
_MAX_DISTINCT = 512


def _min_cost(lengths: np.ndarray, counts: np.ndarray, k: int) -> tuple[float, list[int]]:
    """Fewest padded slots covering sorted distinct ``lengths`` with ``k`` contiguous buckets.

    Returns the cost and the index (into ``lengths``) of the last length of each bucket.
    """
    U = len(lengths)
    csum = np.concatenate([[0], np.cumsum(counts)])
    # cost[i, j]: one bucket holding distinct lengths i..j, padded to lengths[j]
    i, j = np.meshgrid(np.arange(U), np.arange(U), indexing="ij")
    cost = np.where(i <= j, (csum[j + 1] - csum[i]) * lengths[j], np.inf)
    best = cost[0].copy()                      # best[j]: lengths 0..j in at most 1 bucket
    starts = [np.zeros(U, int)]                # starts[l][j]: first length of the last bucket
    for _ in range(1, k):
        # a last bucket i..j after the best split of 0..i-1
        cand = np.concatenate([[np.inf], best[:-1]])[:, None] + cost
        arg = np.argmin(cand, axis=0)
        low = cand[arg, np.arange(U)]
        better = low < best                    # ties keep fewer buckets
        starts.append(np.where(better, arg, starts[-1]))
        best = np.where(better, low, best)
    ends, j, level = [U - 1], U - 1, k - 1
    while level > 0 and starts[level][j] > 0:
        j = starts[level][j] - 1
        ends.append(j)
        level -= 1
    return float(best[-1]), sorted(ends)


def buckets(n_trials: np.ndarray, max_buckets: int = MAX_BUCKETS,
            tolerance: float = TOLERANCE) -> list[np.ndarray]:
    """Group subjects by trial count: a list of subject-index arrays (sorted, covering all).

    ``n_trials`` is the real trial count per subject ``(S,)``. With ``max_buckets=1`` every
    subject is in one bucket (the plain packed layout).
    """
    n_trials = np.asarray(n_trials)
    lengths, counts = np.unique(n_trials, return_counts=True)
    if len(lengths) > _MAX_DISTINCT:           # bucket ends on quantiles (keeps the DP small)
        ends = np.unique(np.quantile(lengths, np.linspace(0, 1, _MAX_DISTINCT), method="higher"))
        counts = np.bincount(np.searchsorted(ends, n_trials), minlength=len(ends))
        lengths = ends
    k_max = max(1, min(max_buckets, len(lengths)))
    costs = [_min_cost(lengths, counts, k) for k in range(1, k_max + 1)]
    floor = costs[-1][0]
    _, ends = next(c for c in costs if c[0] <= floor * (1 + tolerance))
    out, lo = [], -np.inf
    for e in ends:
        hi = lengths[e]
        out.append(np.flatnonzero((n_trials > lo) & (n_trials <= hi)))
        lo = hi
    return out


def padded_slots(n_trials: np.ndarray, groups: list[np.ndarray]) -> int:
    """Slots the likelihood evaluates for a bucketing (real trials plus padding)."""
    n_trials = np.asarray(n_trials)
    return int(sum(len(g) * n_trials[g].max() for g in groups))
