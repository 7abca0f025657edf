"""The result of a recovery study: tidy tables, metrics, SBC and plots."""

from __future__ import annotations

import dataclasses

import pandas as pd

from cogfit.recovery import plots, sbc
from cogfit.recovery.metrics import metrics


@dataclasses.dataclass(frozen=True, eq=False)
class Recovery:
    """Estimates of a recovery study against the truth.

    Attributes
    ----------
    table
        One row per dataset and value (see :func:`cogfit.recovery.metrics.estimates`): subject
        parameters (natural scale) and, with a hierarchy, each population's ``<p>_mu``,
        ``<p>_sigma`` (unconstrained scale) and ``<p>_group`` (natural scale).
    prior_sd
        Prior sd of each reported site (denominator of posterior contraction).
    settings
        The study's settings (model, sizes, method, hierarchy, truth, seed).
    """

    table: pd.DataFrame
    prior_sd: dict
    settings: dict

    def to_pandas(self) -> pd.DataFrame:
        """The tidy estimates table (a copy)."""
        return self.table.copy()

    def summary(self) -> pd.DataFrame:
        """Recovery metrics per level and site: correlation, bias, RMSE, coverage of the 50/90/95%
        intervals, posterior contraction, share of fits with warnings
        (:func:`cogfit.recovery.metrics.metrics`)."""
        return metrics(self.table, self.prior_sd)

    def sbc(self, prob: float = sbc.BAND_PROB) -> pd.DataFrame:
        """Simulation-based calibration per level and site: uniformity p-value, whether the rank
        ECDF stays in its simultaneous ``prob`` band (:func:`cogfit.recovery.sbc.uniformity`).
        Meaningful when the truths were drawn from the fitted model's prior (``truth="prior"``)."""
        return sbc.uniformity(self.table, prob)

    def plot_recovery(self, level: str = "subject", **kwargs):
        """True vs estimated per parameter with the identity line and 90% intervals."""
        return plots.true_vs_estimated(self.table, level=level, **kwargs)

    def plot_coverage(self, **kwargs):
        """Coverage of the 50/90/95% intervals against their nominal level, per site."""
        return plots.coverage(self.summary(), **kwargs)

    def plot_sbc(self, level: str = "subject", **kwargs):
        """ECDF difference of the SBC ranks with simultaneous 95% bands, per site."""
        return plots.sbc_ecdf(self.table, level=level, **kwargs)

    def __repr__(self) -> str:
        s = self.settings
        return (f"Recovery(model={s.get('model')!r}, datasets={self.table['dataset'].nunique()}, "
                f"subjects={s.get('n_subjects')}, trials={s.get('n_trials')}, method={s.get('method')!r})")
