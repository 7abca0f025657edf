"""The result of :func:`cogfit.align`: a tidy table, per-draw values, a text summary, figures."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from cogfit.alignment.divergences import UNITS
from cogfit.alignment.populations import ParamDraws

UNITS = {**UNITS, "shift": "reference sds (unconstrained scale)", "energy": "reference sds (all parameters)"}
NAMES = {"w1": "W1", "js": "JS", "kl_ref_pop": "KL(ref||pop)", "kl_pop_ref": "KL(pop||ref)",
         "overlap": "overlap", "shift": "shift", "energy": "energy distance"}
MEMBERS = "all (members)"


def _distance(measure: str, v: np.ndarray) -> np.ndarray:
    """The value as a distance (larger = less alike): ``1 - overlap`` (the total variation
    distance), ``|shift|``, the others as they are."""
    if measure == "overlap":
        return 1.0 - v
    if measure == "shift":
        return np.abs(v)
    return v


def _row(measure: str, v: np.ndarray, c: np.ndarray, prob: float) -> dict:
    q = [(1 - prob) / 2, 0.5, (1 + prob) / 2]
    lo, med, hi = np.quantile(v, q)
    clo, cmed, chi = np.quantile(c, q)
    dv, dc = _distance(measure, v), _distance(measure, c)
    denom = np.median(dc)
    return dict(measure=measure, units=UNITS[measure], median=med, lo=lo, hi=hi, ceiling=cmed,
                ceiling_lo=clo, ceiling_hi=chi,
                ratio=np.median(dv) / denom if denom > 0 else np.inf,
                p_above=float(np.mean(dv > dc)))


def summarise(ds: xr.Dataset, draws: list[ParamDraws], order: list[str], reference: str, prob: float) -> pd.DataFrame:
    """The tidy table of :class:`Alignment` (see :meth:`Alignment.to_pandas`)."""
    r = order.index(reference)
    rows = []
    for i, pd_ in enumerate(draws):
        typical = np.median(np.asarray(pd_.transform.forward(pd_.mu)), axis=0)       # (populations,)
        for j, pop in enumerate(ds["population"].values):
            base = dict(param=pd_.label, population=pop, reference=reference, level="group",
                        ref_value=float(typical[r]), pop_value=float(typical[order.index(pop)]))
            for m in [v for v in ds.data_vars if v.endswith("_ceiling") and v != "energy_ceiling"]:
                m = m.removesuffix("_ceiling")
                rows.append({**base, **_row(m, ds[m].values[i, j], ds[f"{m}_ceiling"].values[i, j], prob)})
    for j, pop in enumerate(ds["population"].values):
        rows.append(dict(param=MEMBERS, population=pop, reference=reference, level="members",
                         ref_value=np.nan, pop_value=np.nan,
                         **_row("energy", ds["energy"].values[j], ds["energy_ceiling"].values[j], prob)))
    return pd.DataFrame(rows)


def _g(x: float) -> str:
    return f"{x:.2g}" if abs(x) < 1 else f"{x:.3g}"


RATIO_CAP = 1000.0     # ratios to the ceiling are written as ">1000x" beyond this (a ceiling near 0)


def times(ratio: float) -> str:
    """A divergence / ceiling ratio as text: ``"3.1x"``, or ``">1000x"`` when the ceiling is so
    small (people who hardly differ in a parameter) that the ratio's size says nothing more."""
    return f">{RATIO_CAP:g}x" if ratio > RATIO_CAP else f"{ratio:.2g}x"


@dataclasses.dataclass(frozen=True, eq=False)
class Alignment:
    """How human-like (reference-like) each population's cognitive parameters are.

    Attributes
    ----------
    table
        The tidy table (:meth:`to_pandas`).
    draws
        Per-draw values: every group measure ``<m>`` and its ``<m>_ceiling`` with dims (param,
        population, draw); ``energy`` and ``energy_ceiling`` with dims (population, draw).
    reference, prob, order
        The reference population, the interval probability, all populations in data order.
    params
        The population distributions compared (:class:`~cogfit.alignment.populations.ParamDraws`).
    parts
        ``(label, population) -> (loc, scale)``, each ``(draws,)``: the size-matched reference
        parts of the ceiling (unconstrained scale), for the ceiling band of the density figure.
    split_size
        Members in each population's size-matched reference part.
    ceiling
        Where the group-level ceiling's parts came from: ``"members"`` or ``"refit"``.
    """

    table: pd.DataFrame
    draws: xr.Dataset
    reference: str
    prob: float
    params: tuple[ParamDraws, ...]
    order: tuple[str, ...]
    parts: dict
    split_size: dict
    ceiling: str = "members"

    def to_pandas(self) -> pd.DataFrame:
        """One row per parameter, compared population and measure.

        Columns: ``param`` (``"all (members)"`` for the member-level energy distance),
        ``population``, ``reference``, ``level`` (``group``: the population distributions;
        ``members``: the fitted members), ``ref_value`` and ``pop_value`` (posterior median of the
        typical member, natural scale), ``measure``, ``units``, ``median``, ``lo``, ``hi`` (the
        ``prob`` interval), ``ceiling``, ``ceiling_lo``, ``ceiling_hi`` (the same for the split
        halves of the reference), ``ratio`` (median divergence / median ceiling; for the overlap,
        a similarity, of ``1 - overlap``; for the signed ``shift``, of ``|shift|``) and ``p_above``
        (share of draws whose divergence exceeds that draw's ceiling, on the same scale).
        """
        return self.table.copy()

    def summary(self, measure: str = "w1") -> str:
        """One line per parameter and population, e.g. ``lam: llm 1.9 vs human 1.3; W1 0.6 [0.4,
        0.8], 3.1x the split-half ceiling, P > ceiling 0.99``; then the member-level line."""
        t = self.table
        if measure not in set(t["measure"]):
            raise ValueError(f"measure must be one of {sorted(set(t['measure']) - {'energy'})}, not {measure!r}")
        how = ", group level refitted per split" if self.ceiling == "refit" else ""
        lines = [f"alignment with {self.reference!r} ({self.prob:.0%} intervals; ceiling: size-matched "
                 f"random parts of {self.reference!r}{how})"]
        for r in t[(t["measure"] == measure) | (t["level"] == "members")].itertuples():
            name = r.param if r.level == "group" else "all parameters (members)"
            values = (f"{r.population} {_g(r.pop_value)} vs {self.reference} {_g(r.ref_value)}; "
                      if r.level == "group" else f"{r.population} vs {self.reference}: ")
            lines.append(f"{name}: {values}{NAMES[r.measure]} {_g(r.median)} [{_g(r.lo)}, {_g(r.hi)}], "
                         f"{times(r.ratio)} the split-half ceiling, P > ceiling {r.p_above:.2f}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"Alignment(reference={self.reference!r}, populations={list(self.draws['population'].values)}, "
                f"params={[p.label for p in self.params]}, draws={self.draws.sizes['draw']})")

    # --- figures (cogfit.alignment.plots) ----------------------------------------------------

    def plot_densities(self, **kwargs):
        """Per-parameter densities of a new member, each population against the reference, with the
        ceiling band; returns the matplotlib Figure."""
        from cogfit.alignment.plots import densities
        return densities(self, **kwargs)

    def plot_heatmap(self, measure: str = "w1", **kwargs):
        """Populations x parameters: divergence relative to its ceiling; returns the Figure."""
        from cogfit.alignment.plots import heatmap
        return heatmap(self, measure=measure, **kwargs)

    def plot_forest(self, **kwargs):
        """Standardised shifts of the typical member with intervals and ceiling bands; returns the Figure."""
        from cogfit.alignment.plots import forest
        return forest(self, **kwargs)

    def save(self, out: str | Path, *, measure: str = "w1", likelihood: pd.DataFrame | None = None) -> list[Path]:
        """Write ``alignment.csv`` (the table), ``alignment_draws.csv`` (per-draw values), the three
        figures (PNG) and ``alignment.md`` (a short report) into the folder ``out``; with
        ``likelihood`` (:func:`cogfit.alignment.predictive`'s table) also ``alignment_likelihood.csv``."""
        from cogfit.alignment.plots import save_report
        return save_report(self, Path(out), measure=measure, likelihood=likelihood)
