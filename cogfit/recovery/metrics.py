"""Per-dataset posterior summaries against the truth, and the recovery metrics over datasets.

:func:`estimates` turns draws into one tidy row per dataset, level and value (a subject's
parameter, or a population's ``<p>_mu``, ``<p>_sigma``, ``<p>_group``): the true value, the
posterior mean, median, sd, central 50/90/95% intervals and the SBC rank of the truth among
thinned draws. :func:`metrics` reduces such rows per level and parameter: correlation of the
posterior mean with the truth, bias, RMSE, interval coverage, posterior contraction and the
share of fits with warnings.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import numpy as np
import pandas as pd

from cogfit._model import Model
from cogfit._transforms import Interval, Positive
from cogfit.recovery.truth import Truth, prior

PROBS = (0.5, 0.9, 0.95)
# Group-level sites: suffix -> where its truth comes from (natural-scale group = transform(mu)).
GROUP_SITES = ("_mu", "_sigma", "_group")


def interval_columns(prob: float) -> tuple[str, str]:
    """Names of the lower and upper bound columns of the central ``prob`` interval."""
    pct = f"{round(prob * 100):d}"
    return f"lo{pct}", f"hi{pct}"


def thin_index(n: int, n_rank: int) -> np.ndarray:
    """``n_rank`` evenly spaced draw indices out of ``n`` (all of them when ``n <= n_rank``)."""
    return np.unique(np.linspace(0, n - 1, min(n, n_rank)).round().astype(int))


def unconstrain(transform, x: np.ndarray) -> np.ndarray:
    """``transform.inverse`` in float64 numpy (values on a bound give +-inf)."""
    x = np.asarray(x, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if isinstance(transform, Positive):
            return np.log(x)
        if isinstance(transform, Interval):
            return np.log(x - transform.low) - np.log(transform.high - x)
    return x


def summarise(draws: np.ndarray, truth: np.ndarray, n_rank: int, transform=None) -> dict[str, np.ndarray]:
    """Posterior summaries of ``draws`` ``(D, C, N, *units)`` against ``truth`` ``(D, *units)``.

    ``rank`` counts the thinned draws below the truth (``0..n_rank``; ``L`` draws out of ``C*N``,
    flattened chain-major) as in Talts et al. (2018). ``sd_u`` is the sd on the unconstrained
    scale of ``transform`` (the site's own scale without one): heavy-tailed natural-scale
    posteriors (a loss aversion of 50) make a natural-scale sd useless for contraction.
    """
    D = draws.shape[0]
    flat = draws.reshape(D, -1, *draws.shape[3:])
    qs = [0.5] + [q for p in PROBS for q in ((1 - p) / 2, (1 + p) / 2)]
    quant = np.quantile(flat, qs, axis=1)
    out = {"mean": flat.mean(1), "median": quant[0], "sd": flat.std(1, ddof=1)}
    u = unconstrain(transform, flat) if transform is not None else flat
    out["sd_u"] = np.nanstd(np.where(np.isfinite(u), u, np.nan), axis=1, ddof=1)
    for i, p in enumerate(PROBS):
        lo, hi = interval_columns(p)
        out[lo], out[hi] = quant[1 + 2 * i], quant[2 + 2 * i]
    idx = thin_index(flat.shape[1], n_rank)
    out["rank"] = (flat[:, idx] < truth[:, None]).sum(1)
    out["n_ranked"] = np.full(truth.shape, len(idx))
    return out


def estimates(model: Model, samples: Mapping[str, np.ndarray], truth: Truth, datasets: np.ndarray,
              populations: tuple[str, ...], warning: np.ndarray, n_rank: int = 99) -> pd.DataFrame:
    """One row per dataset and value: ``dataset``, ``level`` (subject/group), ``param`` (the site,
    e.g. ``lam`` or ``lam_mu``), ``parameter`` (``lam``), ``unit`` (subject position or
    population label), ``truth`` and the columns of :func:`summarise`, plus ``warning`` (the fit
    of that dataset raised one).

    ``samples[site]`` is ``(D, chain, draw, S)`` for subject sites and ``(D, chain, draw, G)``
    for group sites (fits without a population level have none).
    """
    frames = []
    for p in model.params:
        sites = [(p.name, "subject", truth.subject[p.name], p.transform)]
        if f"{p.name}_mu" in samples:
            mu = truth.mu[p.name]
            sites += [(p.name + "_mu", "group", mu, None), (p.name + "_sigma", "group", truth.sigma[p.name], None),
                      (p.name + "_group", "group", np.asarray(p.transform.forward(mu), np.float64), p.transform)]
        for site, level, true, transform in sites:
            draws = np.asarray(samples[site], np.float64)
            if draws.shape[:1] + draws.shape[3:] != true.shape:
                raise ValueError(f"site {site!r}: draws {draws.shape} do not match the truth {true.shape}")
            stats = summarise(draws, true, n_rank, transform)
            units = np.arange(true.shape[1]) if level == "subject" else np.asarray(populations)
            table = pd.DataFrame({k: v.ravel() for k, v in stats.items()})
            table.insert(0, "truth", true.ravel())
            table.insert(0, "unit", np.tile(units.astype(str), len(datasets)))
            table.insert(0, "parameter", p.name)
            table.insert(0, "param", site)
            table.insert(0, "level", level)
            table.insert(0, "dataset", np.repeat(datasets, true.shape[1]))
            table["warning"] = np.repeat(np.asarray(warning, bool), true.shape[1])
            frames.append(table)
    return pd.concat(frames, ignore_index=True)


def prior_sd(model: Model, key, hierarchical: bool = True, n: int = 4000) -> dict[str, float]:
    """Prior sd of every site :func:`estimates` reports, on the scale of its ``sd_u`` (Monte
    Carlo, ``n`` draws of the fitted model's prior): a subject's unconstrained value (marginal
    over the population), and ``mu`` (also for ``group``) and ``sigma`` of a population. The
    denominator of posterior contraction."""
    keys = jax.random.split(key, n)
    t = prior(model, keys, np.zeros(1, np.int32), 1, hierarchical)
    out = {}
    for p in model.params:
        u = unconstrain(p.transform, t.subject[p.name])
        out[p.name] = float(np.std(u[np.isfinite(u)]))
        if hierarchical:
            out[p.name + "_mu"] = out[p.name + "_group"] = float(np.std(t.mu[p.name]))
            out[p.name + "_sigma"] = float(np.std(t.sigma[p.name]))
    return out


def metrics(table: pd.DataFrame, prior_sd: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Recovery metrics per ``level`` and ``param`` over the rows of :func:`estimates`.

    Columns: ``n`` (values), ``datasets``, ``correlation`` (Pearson, posterior mean vs truth),
    ``bias`` (mean of mean - truth), ``rmse``, ``coverage50/90/95`` (share of truths inside the
    central interval), ``contraction`` (mean of ``1 - sd_u**2 / prior_sd**2``, unconstrained
    scale for subject and ``group`` values; NaN without ``prior_sd``) and ``warnings`` (share of
    datasets whose fit raised a warning). Rows with a non-finite truth (group sites when the
    truth was not drawn from the prior) are left out.
    """
    rows = []
    keyed = table[np.isfinite(table["truth"].to_numpy(float))]
    for (level, param), g in keyed.groupby(["level", "param"], sort=False):
        err = g["mean"].to_numpy() - g["truth"].to_numpy()
        row = dict(level=level, param=param, parameter=g["parameter"].iloc[0], n=len(g),
                   datasets=g["dataset"].nunique(),
                   correlation=_pearson(g["mean"].to_numpy(), g["truth"].to_numpy()),
                   bias=err.mean(), rmse=np.sqrt(np.mean(err ** 2)))
        for p in PROBS:
            lo, hi = interval_columns(p)
            row[f"coverage{lo[2:]}"] = np.mean((g[lo] <= g["truth"]) & (g["truth"] <= g[hi]))
        psd = (prior_sd or {}).get(param, np.nan)
        row["contraction"] = float(np.nanmean(1.0 - g["sd_u"].to_numpy() ** 2 / psd ** 2)) if psd > 0 else np.nan
        row["warnings"] = g.groupby("dataset")["warning"].first().mean()
        rows.append(row)
    return pd.DataFrame(rows)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return np.nan
    return float(np.corrcoef(x, y)[0, 1])
