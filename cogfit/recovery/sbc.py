"""Simulation-based calibration (Talts et al. 2018) with ECDF bands (Säilynoja et al. 2022).

When truths are drawn from the fitted model's prior and the fit is exact, the rank of each true
value among ``L`` posterior draws is uniform on ``0..L``. :func:`pit` turns ranks into
continuous PIT values (``(rank + u) / (L + 1)``, ``u ~ U(0, 1)`` breaks the discreteness
exactly); :func:`uniformity` tests them per parameter with ArviZ's POT-C test and with the
simultaneous 95% band of the ECDF (``arviz_stats.ecdf_utils.ecdf_pit``).

Values of one dataset are not independent (its subjects share a population), so the tests use
one value per dataset and site: for subject sites the subject ``dataset % S`` (so every
subject position takes a turn), for group sites each population.

References
----------
Talts, Betancourt, Simpson, Vehtari & Gelman (2018). Validating Bayesian inference algorithms
with simulation-based calibration. arXiv:1804.06788.
Säilynoja, Bürkner & Vehtari (2022). Graphical test for discrete uniformity and its applications
in goodness-of-fit evaluation and multiple sample comparison. Statistics and Computing 32, 32.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from arviz_stats.base import array_stats
from arviz_stats.ecdf_utils import ecdf_pit

BAND_PROB = 0.95


def independent(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of an estimates table the tests use: one subject per dataset (``dataset % S``)
    for subject sites, every population for group sites; rows with a non-finite truth dropped."""
    sub = table["level"] == "subject"
    n_sub = table.loc[sub].groupby("param")["unit"].transform("nunique")
    turn = pd.Series(False, index=table.index)
    turn[sub] = table.loc[sub, "unit"].astype(int) == table.loc[sub, "dataset"] % n_sub
    keep = (turn | ~sub) & np.isfinite(table["truth"].to_numpy(float))
    return table[keep]


def pit(rank: np.ndarray, n_ranked: np.ndarray, seed: int = 0) -> np.ndarray:
    """Continuous PIT values ``(rank + u) / (n_ranked + 1)`` of discrete SBC ranks ``0..n_ranked``."""
    u = np.random.default_rng(seed).uniform(size=np.shape(rank))
    return (np.asarray(rank, float) + u) / (np.asarray(n_ranked, float) + 1.0)


def band(values: np.ndarray, prob: float = BAND_PROB, n_simulations: int = 1000, seed: int = 0):
    """ECDF of PIT ``values`` and its simultaneous ``prob`` band under uniformity (Säilynoja et
    al. 2022, simulation method): ``(x, ecdf, lower, upper)``, each ``(n + 1,)``."""
    return ecdf_pit(np.asarray(values, float), prob, n_simulations, rng=np.random.default_rng(seed))


def uniformity(table: pd.DataFrame, prob: float = BAND_PROB, seed: int = 0) -> pd.DataFrame:
    """Per level and site: ``n`` (independent values), ``p_value`` (ArviZ's POT-C uniformity
    test of the PIT values), ``inside_band`` (the ECDF stays inside the simultaneous ``prob``
    band) and ``max_deviation`` (largest ``|ECDF - x|``). Small p-values or an ECDF leaving the
    band say the posterior is miscalibrated for that site: a wrong prior or likelihood, or an
    approximate fit (SVI and MAP/Laplace are not exact)."""
    rows = []
    for (level, param), g in independent(table).groupby(["level", "param"], sort=False):
        u = pit(g["rank"].to_numpy(), g["n_ranked"].to_numpy(), seed)
        p_value = float(array_stats.uniformity_test(u, axis=-1, method="pot_c")[0])
        x, ecdf, lo, hi = band(u, prob, seed=seed)
        rows.append(dict(level=level, param=param, n=len(u), p_value=p_value,
                         inside_band=bool(np.all((ecdf >= lo - 1e-12) & (ecdf <= hi + 1e-12))),
                         max_deviation=float(np.max(np.abs(ecdf - x)))))
    return pd.DataFrame(rows)
