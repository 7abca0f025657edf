"""Posterior predictive checks as pictures: the data's summary statistics against the same
statistics of responses simulated from posterior draws, one figure per model family.

Statistics (each per population; predicted as the median and an equal-tailed ``prob`` interval
over draws):

``"choice"`` (prospect theory)
    P(choice = 1) in bins of the options' expected-value difference (``cpt*``: lottery b minus
    a; ``prospect_ra*``: the gamble minus the sure amount).
``"learner"`` (bandit learners)
    The reward rate in bins of trials (a learning curve on the simulated payoff schedule) and
    win-stay / lose-shift rates.
``"twostep"``
    P(repeat the stage-1 choice) by the previous trial's reward and transition (common/rare).
``"rt"`` (drift-diffusion; RL-DDM adds the learner panels)
    Defective CDFs, one panel per response: the RT quantiles (0.1, 0.3, 0.5, 0.7, 0.9) of the
    response at heights ``P(response) * quantile``, per population and condition.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

QUANTILES = (0.1, 0.3, 0.5, 0.7, 0.9)
N_BINS = 8


def kinds(model) -> tuple[str, ...]:
    """The statistics that fit ``model``'s family."""
    req = set(model.requires)
    if "state2" in req:
        return ("twostep",)
    if model.rt:
        return ("learner", "rt") if model.stateful else ("rt",)
    if model.stateful:
        return ("learner",)
    if {"x_a", "p_a", "x_b", "p_b"} <= req or {"gain", "loss", "cert"} <= req:
        return ("choice",)
    raise ValueError(f"no posterior predictive picture for model {model.name!r} (columns {model.requires})")


def _table(fit) -> pd.DataFrame:
    """Observed real trials in ``obs`` order with ``population`` and ``value`` (EV difference)."""
    data = fit.data
    table = data.to_table()
    table["population"] = np.repeat(data.subject_populations, data.n_trials)
    req = set(fit.model.requires)
    if {"x_a", "p_a", "x_b", "p_b"} <= req:
        f = data.fields
        ev = ((np.asarray(f["x_b"]) * np.asarray(f["p_b"])).sum(-1)
              - (np.asarray(f["x_a"]) * np.asarray(f["p_a"])).sum(-1))
        table["value"] = ev[data.mask]
    elif {"gain", "loss", "cert"} <= req:
        table["value"] = 0.5 * table["gain"] + 0.5 * table["loss"] - table["cert"]
    return table


def _predicted(fit, n_draws: int, seed: int) -> dict[str, np.ndarray]:
    """Simulated responses ``(draw, obs)`` per variable."""
    missing = [c for c in fit.model.design_requires if c not in fit.data.fields]
    if "posterior_predictive" not in fit.tree and missing:
        raise ValueError(f"posterior predictions of {fit.model.name!r} replay the task, which needs the data's "
                         f"{', '.join(f'{c}_1..{c}_K' for c in missing)} columns (each trial's payoffs); they are "
                         "not in the fitted data")
    pp = (fit if "posterior_predictive" in fit.tree else fit.with_posterior_predictive(n_draws=n_draws, seed=seed))
    ds = pp.tree["posterior_predictive"].to_dataset()
    out = {k: ds[k].values.reshape(-1, ds.sizes["obs"]) for k in ds.data_vars}
    step = max(1, next(iter(out.values())).shape[0] // n_draws)
    return {k: v[::step][:n_draws] for k, v in out.items()}


def _interval(values: np.ndarray, prob: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lo, mid, hi = np.nanquantile(values, [(1 - prob) / 2, 0.5, (1 + prob) / 2], axis=0)
    return mid, lo, hi


def _grouped_mean(values: np.ndarray, groups: np.ndarray, n: int) -> np.ndarray:
    """Mean of ``values (..., obs)`` per group code ``0..n-1`` (NaN where empty): ``(..., n)``."""
    sums = np.stack([np.nansum(np.where(groups == g, values, 0.0), -1) for g in range(n)], -1)
    counts = np.array([(groups == g).sum() for g in range(n)])
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / np.where(counts > 0, counts, np.nan)


def _lag(a: np.ndarray) -> np.ndarray:
    """Each trial's previous value along the last axis (0 before the first; read it only where
    :func:`_previous` is True)."""
    return np.concatenate([np.zeros(a.shape[:-1] + (1,)), a[..., :-1]], -1)


def _previous(table: pd.DataFrame) -> np.ndarray:
    """Whether each trial has a previous trial of the same subject."""
    same = table["subject"].to_numpy()[1:] == table["subject"].to_numpy()[:-1]
    return np.concatenate([[False], same])


def _draw(ax, x, observed, predicted, prob, label, color, width=None):
    """Observed points and predicted median with its interval."""
    mid, lo, hi = _interval(predicted, prob)
    if width is None:
        ax.fill_between(x, lo, hi, color=color, alpha=0.2, lw=0)
        ax.plot(x, mid, color=color, lw=1.2, label=f"{label}: predicted (median, {prob:.0%} interval)")
    else:
        ax.errorbar(x, mid, yerr=[mid - lo, hi - mid], fmt="_", color=color, capsize=3, ms=12,
                    label=f"{label}: predicted (median, {prob:.0%} interval)")
    ax.plot(x, observed, "o", color=color, mfc="white", mew=1.5, label=f"{label}: observed")


def _choice_panel(ax, table, sims, prob, colors):
    value = table["value"].to_numpy()
    edges = np.unique(np.quantile(value, np.linspace(0, 1, N_BINS + 1)))
    bins = np.clip(np.searchsorted(edges, value, side="right") - 1, 0, len(edges) - 2)
    centres = np.array([value[bins == b].mean() for b in range(len(edges) - 1)])
    for pop, color in colors.items():
        m = (table["population"] == pop).to_numpy()
        obs = _grouped_mean(table["choice"].to_numpy()[m].astype(float), bins[m], len(centres))
        pred = _grouped_mean(sims["choice"][:, m].astype(float), bins[m], len(centres))
        _draw(ax, centres, obs, pred, prob, pop, color)
    ax.set_xlabel("expected-value difference (option 1 minus option 0, task units)")
    ax.set_ylabel("P(choice = 1)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Choices against value difference")


def _learner_panels(axes, table, sims, prob, colors):
    trial_rank = table.groupby("subject", sort=False).cumcount().to_numpy()
    edges = np.unique(np.quantile(trial_rank, np.linspace(0, 1, N_BINS + 1)))
    bins = np.clip(np.searchsorted(edges, trial_rank, side="right") - 1, 0, len(edges) - 2)
    centres = np.array([trial_rank[bins == b].mean() + 1 for b in range(len(edges) - 1)])
    has_prev = _previous(table)
    for pop, color in colors.items():
        m = (table["population"] == pop).to_numpy()
        obs = _grouped_mean(table["reward"].to_numpy()[m].astype(float), bins[m], len(centres))
        pred = _grouped_mean(sims["reward"][:, m].astype(float), bins[m], len(centres))
        _draw(axes[0], centres, obs, pred, prob, pop, color)

        def rates(choice, reward):
            stay = (choice == _lag(choice)).astype(float)
            prev_win = _lag(reward) > 0
            ok = has_prev & m
            win = np.nanmean(np.where(ok & prev_win, stay, np.nan), -1)
            lose = np.nanmean(np.where(ok & ~prev_win, 1.0 - stay, np.nan), -1)
            return np.stack([win, lose], -1)

        obs = rates(table["choice"].to_numpy()[None], table["reward"].to_numpy()[None])[0]
        pred = rates(sims["choice"], sims["reward"])
        shift = 0.15 * (list(colors).index(pop) - (len(colors) - 1) / 2)
        _draw(axes[1], np.arange(2) + shift, obs, pred, prob, pop, color, width=True)
    axes[0].set_xlabel("trial (bin centre)")
    axes[0].set_ylabel("reward rate")
    axes[0].set_title("Learning curve")
    axes[1].set_xticks([0, 1], ["win-stay", "lose-shift"])
    axes[1].set_ylabel("probability")
    axes[1].set_ylim(-0.02, 1.02)
    axes[1].set_title("Win-stay / lose-shift")


def _twostep_panel(ax, table, sims, prob, colors):
    has_prev = _previous(table)
    labels = ["rewarded\ncommon", "rewarded\nrare", "unrewarded\ncommon", "unrewarded\nrare"]
    for pop, color in colors.items():
        m = (table["population"] == pop).to_numpy()

        def stay(choice, state2, reward):
            repeat = (choice == _lag(choice)).astype(float)
            common = _lag((state2 == choice).astype(float)) > 0.5
            won = _lag(reward) > 0
            cell = np.where(won, 0, 2) + np.where(common, 0, 1)
            ok = has_prev & m
            return np.stack([np.nanmean(np.where(ok & (cell == c), repeat, np.nan), -1) for c in range(4)], -1)

        obs = stay(*(table[k].to_numpy()[None] for k in ("choice", "state2", "reward")))[0]
        pred = stay(sims["choice"], sims["state2"], sims["reward"])
        shift = 0.15 * (list(colors).index(pop) - (len(colors) - 1) / 2)
        _draw(ax, np.arange(4) + shift, obs, pred, prob, pop, color, width=True)
    ax.set_xticks(range(4), labels)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("P(repeat stage-1 choice)")
    ax.set_title("Stay probability by previous reward and transition")


def _series(table: pd.DataFrame, data) -> dict[str, np.ndarray]:
    """Masks of the observed trials of each population (and condition, when there are several)."""
    out = {}
    conditions = table["condition"].to_numpy() if "condition" in table else None
    for pop in data.populations:
        m = (table["population"] == pop).to_numpy()
        if conditions is None:
            out[str(pop)] = m
        else:
            out.update({f"{pop} / {c}": m & (conditions == c) for c in data.conditions})
    return out


def _rt_panels(axes, table, sims, prob, series):
    """Defective CDFs: for each response, P(response, RT <= q) at its RT quantiles."""
    for i, (label, m) in enumerate(series.items()):
        color = f"C{i}"
        choice, rt = table["choice"].to_numpy()[m], table["rt"].to_numpy()[m]
        sim_choice, sim_rt = sims["choice"][:, m], sims["rt"][:, m]
        for r, ax in enumerate(axes):
            p_obs = (choice == r).mean()
            levels = p_obs * np.asarray(QUANTILES)
            if (choice == r).any():
                ax.plot(np.quantile(rt[choice == r], QUANTILES), levels, "o", color=color, mfc="white", mew=1.5,
                        label=f"{label}: observed")
            p_sim = (sim_choice == r).mean(-1)
            q_sim = np.stack([np.nanquantile(np.where(sim_choice[d] == r, sim_rt[d], np.nan), QUANTILES)
                              if (sim_choice[d] == r).any() else np.full(len(QUANTILES), np.nan)
                              for d in range(len(sim_rt))])
            mid, lo, hi = _interval(q_sim, prob)
            y = float(np.median(p_sim)) * np.asarray(QUANTILES)
            ax.errorbar(mid, y, xerr=[mid - lo, hi - mid], fmt="-", color=color, capsize=3, lw=1,
                        label=f"{label}: predicted (median, {prob:.0%} interval)")
    for r, ax in enumerate(axes):
        ax.set_xlabel("response time (s)")
        ax.set_ylabel(f"P(response {r}, RT <= t)")
        ax.set_ylim(0, None)
        ax.set_title(f"Response {r}: RT quantiles 0.1-0.9 (defective CDF)")


def plot_ppc(fit, *, n_draws: int = 200, prob: float = 0.9, seed: int = 1):
    """A Matplotlib figure of posterior predictive checks for ``fit``'s model family (see the
    module docstring); simulates ``n_draws`` posterior draws unless the fit already holds a
    ``posterior_predictive`` group. ``prob`` is the width of the predicted intervals."""
    import matplotlib.pyplot as plt

    if not 0 < prob < 1:
        raise ValueError(f"prob must be between 0 and 1, not {prob!r}")
    panels = kinds(fit.model)
    table = _table(fit)
    sims = _predicted(fit, n_draws, seed)
    colors = {p: f"C{i}" for i, p in enumerate(fit.data.populations)}
    n = sum(2 if k in ("learner", "rt") else 1 for k in panels)
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 4.2), squeeze=False)
    axes = list(axes[0])
    for kind in panels:
        if kind == "choice":
            _choice_panel(axes.pop(0), table, sims, prob, colors)
        elif kind == "learner":
            _learner_panels([axes.pop(0), axes.pop(0)], table, sims, prob, colors)
        elif kind == "twostep":
            _twostep_panel(axes.pop(0), table, sims, prob, colors)
        else:
            _rt_panels([axes.pop(0), axes.pop(0)], table, sims, prob, _series(table, fit.data))
    for ax in fig.axes:
        ax.grid(alpha=0.3)
    fig.axes[-1].legend(fontsize=8, loc="best")
    fig.suptitle(f"Posterior predictive check: {fit.model.name}, {fit.data.n_subjects} subjects, "
                 f"{len(table)} trials", fontsize=11)
    fig.tight_layout()
    return fig
