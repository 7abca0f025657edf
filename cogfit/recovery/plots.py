"""Figures of recovery studies (matplotlib): true vs estimated, coverage, SBC ECDF bands,
confusion matrices and design sweeps. Each function returns the figure."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cogfit.recovery import sbc
from cogfit.recovery.metrics import PROBS, interval_columns


def _grid(n: int, ncols: int = 4, size: float = 3.2):
    import matplotlib.pyplot as plt

    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()[:n]


def _sites(table: pd.DataFrame, level: str) -> list[str]:
    sites = list(dict.fromkeys(table.loc[table["level"] == level, "param"]))
    if not sites:
        raise ValueError(f"no {level}-level values in the table (levels: {sorted(set(table['level']))})")
    return sites


def _wide(*arrays) -> bool:
    """Positive values spanning more than two orders of magnitude: plot on log axes."""
    v = np.concatenate([np.ravel(a) for a in arrays])
    v = v[np.isfinite(v)]
    return bool(len(v) and v.min() > 0 and v.max() / v.min() > 100)


def true_vs_estimated(table: pd.DataFrame, *, level: str = "subject", prob: float = 0.9, max_points: int = 400,
                      seed: int = 0):
    """Posterior median against the true value per site, with the central ``prob`` interval and
    the identity line; at most ``max_points`` values per panel (a random subset). The title
    gives the correlation of the posterior mean with the truth and the interval's coverage."""
    lo, hi = interval_columns(prob)
    sites = _sites(table, level)
    fig, axes = _grid(len(sites))
    rng = np.random.default_rng(seed)
    for ax, site in zip(axes, sites):
        g = table[(table["param"] == site) & np.isfinite(table["truth"])]
        r = np.corrcoef(g["mean"], g["truth"])[0, 1] if len(g) > 1 else np.nan
        cover = np.mean((g[lo] <= g["truth"]) & (g["truth"] <= g[hi]))
        if len(g) > max_points:
            g = g.iloc[np.sort(rng.choice(len(g), max_points, replace=False))]
        x, y = g["truth"].to_numpy(), g["median"].to_numpy()
        color = np.where(g["warning"], "tab:red", "tab:blue")
        ax.errorbar(x, y, yerr=[y - g[lo], g[hi] - y], fmt="none", ecolor="0.7", lw=0.7, zorder=1)
        ax.scatter(x, y, s=10, c=color, zorder=2)
        both = np.concatenate([x, g[lo], g[hi]])
        span = [np.nanmin(both), np.nanmax(both)]
        ax.plot(span, span, color="k", lw=0.8, ls="--", label="identity")
        if _wide(x, g[lo], g[hi]):
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_xlabel(f"true {site}")
        ax.set_ylabel(f"estimated {site} (median, {prob:.0%} int.)")
        ax.set_title(f"{site}: r = {r:.2f}, {prob:.0%} coverage {cover:.2f}", fontsize=9)
    axes[0].legend(loc="upper left", fontsize=8)
    fig.suptitle(f"Parameter recovery, {level} level (red: fit with a warning)", fontsize=10)
    fig.tight_layout()
    return fig


def coverage(summary: pd.DataFrame):
    """Observed coverage of the central 50/90/95% intervals against the nominal level, one
    line per site, with the identity and the binomial 95% range expected from ``n`` values."""
    import matplotlib.pyplot as plt
    from scipy import stats

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    nominal = np.asarray(PROBS)
    n = int(summary["n"].min())
    lo = stats.binom.ppf(0.025, n, nominal) / n
    hi = stats.binom.ppf(0.975, n, nominal) / n
    ax.fill_between(nominal, lo, hi, color="0.88", label=f"95% range of a calibrated\nposterior, n = {n}")
    ax.plot([0.45, 1.0], [0.45, 1.0], color="k", lw=0.8, ls="--", label="nominal")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (_, row) in enumerate(summary.iterrows()):
        obs = [row[f"coverage{interval_columns(p)[0][2:]}"] for p in PROBS]
        ax.plot(nominal, obs, marker="o" if row["level"] == "subject" else "s", ms=4, lw=1,
                ls="-" if row["level"] == "subject" else ":", color=colors[i % len(colors)],
                label=f"{row['param']} ({row['level']})")
    ax.set_xlabel("nominal coverage of the central interval")
    ax.set_ylabel("share of true values inside")
    ax.set_xlim(0.45, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title("Interval coverage (solid: subjects, dotted: populations)", fontsize=10)
    fig.tight_layout()
    return fig


def sbc_ecdf(table: pd.DataFrame, *, level: str = "subject", prob: float = sbc.BAND_PROB, seed: int = 0):
    """ECDF of the SBC ranks (as PIT values) minus the uniform CDF, per site, with the
    simultaneous ``prob`` band (Säilynoja et al. 2022) and the POT-C p-value in the title."""
    ind = sbc.independent(table)
    sites = _sites(ind, level)
    tests = sbc.uniformity(ind, prob, seed).set_index("param")
    fig, axes = _grid(len(sites))
    for ax, site in zip(axes, sites):
        g = ind[ind["param"] == site]
        u = sbc.pit(g["rank"].to_numpy(), g["n_ranked"].to_numpy(), seed)
        x, ecdf, low, up = sbc.band(u, prob, seed=seed)
        ax.fill_between(x, low - x, up - x, color="0.85", label=f"simultaneous {prob:.0%} band")
        ax.plot(x, ecdf - x, color="tab:blue", lw=1.2, label="ECDF - uniform")
        ax.axhline(0, color="k", lw=0.6)
        ax.set_xlabel(f"fractional rank of true {site}")
        ax.set_ylabel("ECDF difference")
        p = tests.loc[site, "p_value"]
        ax.set_title(f"{site}: n = {len(u)}, " + (f"p = {p:.3f}" if p >= 0.001 else "p < 0.001"), fontsize=9)
    axes[0].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"Simulation-based calibration, {level} level", fontsize=10)
    fig.tight_layout()
    return fig


def confusion(matrix: pd.DataFrame, *, title: str, fmt: str = "{:.2f}"):
    """A matrix of shares (rows: one model, columns: the other) with the numbers printed."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.2 * matrix.shape[1] + 2.5, 1.0 * matrix.shape[0] + 1.8))
    im = ax.imshow(matrix.to_numpy(float), cmap="Blues", vmin=0, vmax=1)
    for (i, j), v in np.ndenumerate(matrix.to_numpy(float)):
        ax.text(j, i, fmt.format(v), ha="center", va="center", color="white" if v > 0.6 else "black", fontsize=9)
    ax.set_xticks(range(matrix.shape[1]), matrix.columns, rotation=30, ha="right")
    ax.set_yticks(range(matrix.shape[0]), matrix.index)
    ax.set_xlabel(matrix.columns.name or "")
    ax.set_ylabel(matrix.index.name or "")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share")
    fig.tight_layout()
    return fig


def sweep(table: pd.DataFrame, *, metrics: tuple[str, ...] = ("rmse", "coverage90"), level: str = "subject"):
    """Design sweep: each metric against trials per subject, one line per number of subjects,
    one panel per site and metric (rows: metrics, columns: sites)."""
    import matplotlib.pyplot as plt

    t = table[table["level"] == level]
    sites = list(dict.fromkeys(t["param"]))
    fig, axes = plt.subplots(len(metrics), len(sites), figsize=(3.2 * len(sites), 2.8 * len(metrics)),
                             squeeze=False)
    for r, metric in enumerate(metrics):
        for c, site in enumerate(sites):
            ax = axes[r, c]
            g = t[t["param"] == site]
            for n_sub, h in g.groupby("n_subjects"):
                h = h.sort_values("n_trials")
                ax.plot(h["n_trials"], h[metric], marker="o", ms=4, label=f"{n_sub} subjects")
            if metric.startswith("coverage"):
                ax.axhline(int(metric[8:]) / 100, color="k", lw=0.7, ls="--")
            ax.set_xlabel("trials per subject")
            ax.set_ylabel(f"{metric} of {site}")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"Recovery against design size, {level} level", fontsize=10)
    fig.tight_layout()
    return fig
