"""Figures and the written report of an :class:`~cogfit.alignment.Alignment` (matplotlib, Agg-safe)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.stats as st

from cogfit._transforms import Interval, Positive
from cogfit.alignment.populations import ParamDraws, unconstrained
from cogfit.alignment.result import MEMBERS, NAMES, _g, times

REF_COLOR = "0.1"
BAND_COLOR = "0.82"


def _pyplot():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _pick(n: int, k: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, k)).astype(int))


def _std_pdf(t: np.ndarray, nu) -> np.ndarray:
    return st.norm.pdf(t) if nu is None else st.t.pdf(t, nu)


def _natural_densities(pd_: ParamDraws, y: np.ndarray, mu: np.ndarray, sigma: np.ndarray, nu) -> np.ndarray:
    """Densities on the natural-scale grid ``y`` of the population ``(mu, sigma)`` per draw: ``(draws, len(y))``."""
    x = unconstrained(pd_.transform, y.astype(np.float64))
    jac = np.abs(np.gradient(x, y))                                       # dx/dy
    nu_ = None if nu is None else np.asarray(nu)[:, None]
    return _std_pdf((x[None] - mu[:, None]) / sigma[:, None], nu_) / sigma[:, None] * jac[None]


def _range(pd_: ParamDraws, cols: list[int], draws: np.ndarray, q: float = 0.01) -> tuple[float, float]:
    t = np.linspace(-1, 1, 3)[None] * (st.norm.isf(q) if pd_.nu is None else st.t.isf(q, np.median(pd_.nu)))
    u = np.concatenate([(pd_.mu[draws][:, [c]] + pd_.sigma[draws][:, [c]] * t).ravel() for c in cols])
    lo, hi = np.quantile(np.asarray(pd_.transform.forward(u)), [0.02, 0.98])
    pad = 0.08 * (hi - lo or 1.0)
    return lo - pad, hi + pad


def densities(al, *, n_draws: int = 300, points: int = 400, measure: str = "w1"):
    """Rows: compared populations; columns: parameters. Each panel: the reference's and the
    population's density of a new member (natural scale, averaged over ``n_draws`` posterior
    draws), and the ceiling band: the pointwise ``al.prob`` range of the densities of the
    size-matched reference parts. A peak that leaves the panel is marked with its height."""
    plt = _pyplot()
    pops = list(al.draws["population"].values)
    P, G = len(al.params), len(pops)
    fig, axes = plt.subplots(G, P, figsize=(3.3 * P + 1.8, 2.6 * G + 0.6), squeeze=False)
    r = al.order.index(al.reference)
    table = al.table.set_index(["param", "population", "measure"])
    q = [(1 - al.prob) / 2, (1 + al.prob) / 2]
    for i, pd_ in enumerate(al.params):
        d = _pick(pd_.mu.shape[0], n_draws)
        nu = None if pd_.nu is None else pd_.nu[d]
        for j, pop in enumerate(pops):
            ax, g = axes[j, i], al.order.index(pop)
            lo, hi = _range(pd_, [r, g], d)
            low, high = _domain(pd_)
            eps = 1e-6 * (hi - lo)
            y = np.linspace(max(lo, low + eps), min(hi, high - eps), points)
            ref = _natural_densities(pd_, y, pd_.mu[d, r], pd_.sigma[d, r], nu).mean(0)
            other = _natural_densities(pd_, y, pd_.mu[d, g], pd_.sigma[d, g], nu).mean(0)
            loc, scale = al.parts[pd_.label, pop]
            band = np.quantile(_natural_densities(pd_, y, loc[d], scale[d], nu), q, axis=0)
            ax.fill_between(y, band[0], band[1], color=BAND_COLOR, lw=0,
                            label=f"ceiling: {al.split_size[pop]} of {al.reference} ({al.prob:.0%})")
            ax.plot(y, ref, color=REF_COLOR, lw=1.6, label=al.reference)
            ax.plot(y, other, color=f"C{j}", lw=1.6, label=pop)
            top = 1.25 * max(ref.max(), band[1].max())
            ax.set_ylim(0, top)
            if other.max() > top:
                k = int(np.argmax(other))
                ax.annotate(f"peak {_g(other.max())}", (y[k], top), xytext=(4, -12), textcoords="offset points",
                            fontsize=7, color=f"C{j}")
            row = table.loc[(pd_.label, pop, measure)]
            ax.set_title(f"{pd_.label}: {NAMES[measure]} {_g(row['median'])} [{_g(row['lo'])}, {_g(row['hi'])}]"
                         f"\n{times(row['ratio'])} ceiling, P > ceiling {row['p_above']:.2f}", fontsize=8)
            ax.tick_params(labelsize=7)
            if j == G - 1:
                ax.set_xlabel(f"{pd_.label} (natural scale)", fontsize=8)
            if i == 0:
                ax.set_ylabel(f"{pop}\ndensity of a new member", fontsize=8)
            if i == P - 1:
                ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle(f"Population distributions against {al.reference!r}", fontsize=10)
    fig.tight_layout()
    return fig


def _domain(pd_: ParamDraws) -> tuple[float, float]:
    tr = pd_.transform
    if isinstance(tr, Interval):
        return tr.low, tr.high
    return (0.0, np.inf) if isinstance(tr, Positive) else (-np.inf, np.inf)


def heatmap(al, *, measure: str = "w1"):
    """Populations x parameters (and all parameters at once: the members' energy distance),
    coloured by divergence / split-half ceiling on a log scale, annotated with the ratio and
    P(divergence > ceiling)."""
    plt = _pyplot()
    from matplotlib.colors import TwoSlopeNorm

    t = al.table
    pops = list(al.draws["population"].values)
    cols = [p.label for p in al.params] + [MEMBERS]
    ratio = np.full((len(pops), len(cols)), np.nan)
    prob = np.full_like(ratio, np.nan)
    for j, pop in enumerate(pops):
        for i, c in enumerate(cols):
            row = t[(t["population"] == pop) & (t["param"] == c) & (t["measure"].isin([measure, "energy"]))].iloc[0]
            ratio[j, i], prob[j, i] = row["ratio"], row["p_above"]
    logr = np.log10(np.clip(ratio, 1e-3, 1e3))
    span = max(1.0, float(np.nanmax(np.abs(logr))))
    fig, ax = plt.subplots(figsize=(1.35 * len(cols) + 2.2, 0.75 * len(pops) + 1.6))
    im = ax.imshow(logr, cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -span, span), aspect="auto")
    for j in range(len(pops)):
        for i in range(len(cols)):
            dark = abs(logr[j, i]) > 0.6 * span
            ax.text(i, j, f"{times(ratio[j, i])}\nP={prob[j, i]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if dark else "black")
    ax.set_xticks(range(len(cols)), [c if c != MEMBERS else "all\n(members)" for c in cols], fontsize=8)
    ax.set_yticks(range(len(pops)), pops, fontsize=8)
    bar = fig.colorbar(im, ax=ax, shrink=0.9)
    ticks = [v for v in (-3, -2, -1, 0, 1, 2, 3) if abs(v) <= span]
    bar.set_ticks(ticks, labels=[f"{10.0 ** v:g}x" for v in ticks])
    bar.set_label("divergence / split-half ceiling", fontsize=8)
    ax.set_title(f"{NAMES[measure]} per parameter, energy distance of members, relative to the\n"
                 f"ceiling of {al.reference!r} (P: posterior probability above it)", fontsize=9)
    fig.tight_layout()
    return fig


def forest(al):
    """Standardised shift of each population's typical member from the reference's, ``(mu_pop -
    mu_ref) / sigma_ref`` (unconstrained scale), median and ``al.prob`` interval, over the band
    of the same shift between split halves of the reference."""
    plt = _pyplot()
    t = al.table[al.table["measure"] == "shift"]
    pops = list(al.draws["population"].values)
    labels = [p.label for p in al.params]
    fig, ax = plt.subplots(figsize=(8.0, 0.32 * len(labels) * len(pops) + 1.4))
    k = 0
    ticks = []
    for pname in labels:
        for j, pop in enumerate(pops):
            row = t[(t["param"] == pname) & (t["population"] == pop)].iloc[0]
            ax.fill_betweenx([k - 0.32, k + 0.32], row["ceiling_lo"], row["ceiling_hi"], color=BAND_COLOR, lw=0,
                             label=f"split-half ceiling ({al.prob:.0%})" if k == 0 else None)
            ax.plot([row["lo"], row["hi"]], [k, k], color=f"C{j}", lw=2)
            ax.plot(row["median"], k, "o", color=f"C{j}", ms=5, label=pop if pname == labels[0] else None)
            ticks.append((k, f"{pname} · {pop}" if len(pops) > 1 else pname))
            k += 1
        k += 0.5
    ax.axvline(0, color=REF_COLOR, lw=0.8, ls=":")
    ax.set_yticks([a for a, _ in ticks], [b for _, b in ticks], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"shift of the typical member from {al.reference!r}:  (mu_pop - mu_ref) / sigma_ref\n"
                  "(unconstrained scale, reference sds)", fontsize=8)
    ax.set_title(f"Population shifts, median and {al.prob:.0%} interval", fontsize=9)
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def _markdown_table(df) -> str:
    head = "| " + " | ".join(df.columns) + " |\n|" + "---|" * len(df.columns) + "\n"
    def cell(v):
        if isinstance(v, float):
            return "" if np.isnan(v) else _g(v)
        return str(v)
    return head + "".join("| " + " | ".join(cell(v) for v in row) + " |\n" for row in df.itertuples(index=False))


def save_report(al, out: Path, *, measure: str = "w1", likelihood=None) -> list[Path]:
    """Tables (CSV), figures (PNG) and ``alignment.md`` into ``out``; returns the paths written.
    ``likelihood``: the table of :func:`cogfit.alignment.predictive`, written beside them."""
    plt = _pyplot()
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "alignment.csv", out / "alignment_draws.csv"]
    al.table.to_csv(paths[0], index=False)
    al.draws.to_dataframe().reset_index().to_csv(paths[1], index=False)
    for name, fig in (("densities", densities(al, measure=measure)), ("heatmap", heatmap(al, measure=measure)),
                      ("forest", forest(al))):
        paths.append(out / f"alignment_{name}.png")
        fig.savefig(paths[-1], dpi=130)
        plt.close(fig)
    t = al.table
    brief = t[(t["measure"] == measure) | (t["level"] == "members")][
        ["param", "population", "ref_value", "pop_value", "measure", "median", "lo", "hi", "ceiling", "ratio",
         "p_above"]]
    md = [f"# Alignment with {al.reference!r}", "",
          "Divergence of each population's distribution of a new member's parameters from the reference's, "
          f"per posterior draw (median and {al.prob:.0%} interval), next to the same divergence between "
          f"random, size-matched parts of {al.reference!r} (the split-half ceiling). `ratio`: median divergence / "
          "median ceiling; `p_above`: posterior probability that the divergence exceeds the ceiling.", "",
          "```", al.summary(measure), "```", "", _markdown_table(brief), "",
          "All measures (W1 natural units, JS bits, KL nats both ways, overlap, standardised shift): "
          "`alignment.csv`; per draw: `alignment_draws.csv`.", ""]
    if likelihood is not None:
        paths.insert(2, out / "alignment_likelihood.csv")
        likelihood.to_csv(paths[2], index=False)
        md += ["## How well each population's parameters predict the reference's choices", "",
               "Mean log predictive density of a reference member's data under each population's distribution "
               "of a new member (nats; the reference's own row cross-validated by halves; `diff`: minus the "
               "reference's, with its paired standard error): `alignment_likelihood.csv`.", "",
               _markdown_table(likelihood), ""]
    md += [f"![{p.stem}]({p.name})" for p in paths if p.suffix == ".png"]
    paths.append(out / "alignment.md")
    paths[-1].write_text("\n".join(md) + "\n")
    return paths
