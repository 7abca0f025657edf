"""The one-page ``summary.md`` of a human-vs-LLM study and its likelihood figure.

The likelihood view (Psych-201: which model gives the people's responses the higher
probability) next to the parameter view (:func:`cogfit.align`: which model's population of
cognitive parameters lies closer to the people's, relative to the people's split-half ceiling),
and the parameters where the models differ from people beyond that ceiling, in words.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from cogfit.alignment.result import times

#: What a larger and a smaller value of each parameter than people's means, for the summary's sentences.
MEANING = {
    "lam": ("more loss-averse", "less loss-averse"),
    "tau": ("less noisy (more sensitive to value)", "noisier (less sensitive to value)"),
    "alpha": ("less concave utility", "more concave utility"),
    "bias": ("more biased towards the second lottery", "less biased towards the second lottery"),
    "alpha_pos": ("faster learning from rewards", "slower learning from rewards"),
    "alpha_neg": ("faster learning from missed rewards", "slower learning from missed rewards"),
    "beta_h": ("more exploitative (less noisy)", "more exploratory (noisier)"),
    "beta": ("more exploitative (less noisy)", "more exploratory (noisier)"),
    "beta_c": ("more perseverative", "less perseverative"),
}
TASK_TITLE = {"bandit": "dezfouli2019 bandit, `bandit_dual_rep_h_blocks`",
              "lottery": "spektor2024lossaversion lotteries, `cpt_linear_bias` (ref = 16)"}
CONFOUND = ("The two models differ in family and size as well as in post-training, so neither view "
            "isolates the effect of post-training.")


def plot_nll(nll: pd.DataFrame, cohens: pd.DataFrame):
    """Mean NLL per human response (+-1 SE) per experiment and model, Cohen's d in the titles."""
    import matplotlib.pyplot as plt

    exps = sorted(nll["experiment"].unique())
    models = list(dict.fromkeys(nll["model"]))
    fig, axes = plt.subplots(1, len(exps), figsize=(3.2 * len(exps), 3.0), squeeze=False)
    for ax, exp in zip(axes[0], exps):
        sub = nll[nll["experiment"] == exp].set_index("model").reindex(models)
        ax.bar(range(len(models)), sub["nll_mean"], yerr=sub["nll_se"], color=["#4c72b0", "#dd8452"][: len(models)],
               capsize=4)
        ax.set_xticks(range(len(models)), models, rotation=15, fontsize=8)
        d = cohens.loc[cohens["experiment"] == exp, "d"]
        ax.set_title(f"{exp}\nd = {float(d.iloc[0]):.2f}" if len(d) else exp, fontsize=9)
    axes[0][0].set_ylabel("mean NLL per human response (nats)\n+-1 SE over responses")
    overall = float(cohens.loc[cohens["experiment"] == "overall", "d"].iloc[0])
    fig.suptitle(f"Psych-201 likelihood view; Cohen's d post-trained vs base, overall {overall:.2f} "
                 "(positive: post-trained less human-like)", fontsize=9)
    fig.tight_layout()
    return fig


def _g(x: float) -> str:
    return f"{x:.2g}" if abs(x) < 1 else f"{x:.3g}"


def _energy(al: pd.DataFrame) -> pd.DataFrame:
    return al[al["measure"] == "energy"].set_index("population")


def _beyond(al: pd.DataFrame, population: str, p: float = 0.9) -> list[str]:
    """Sentences for the parameters whose W1 exceeds the ceiling with probability >= ``p``."""
    rows = al[(al["measure"] == "w1") & (al["population"] == population) & (al["p_above"] >= p)]
    out = []
    for r in rows.itertuples():
        higher = r.pop_value > r.ref_value
        words = MEANING.get(r.param, ("higher", "lower"))[0 if higher else 1]
        out.append(f"`{r.param}` {_g(r.pop_value)} vs people {_g(r.ref_value)} ({words}; "
                   f"W1 {times(r.ratio)} the ceiling)")
    return out


def write_summary(folder: Path, nll: dict[str, pd.DataFrame], beh: dict[str, pd.DataFrame],
                  aligned: dict[str, pd.DataFrame], convergence: pd.DataFrame, lms: Any, *,
                  quick: bool = False) -> Path:
    """Write ``summary.md`` into ``folder`` and return its path."""
    base, post = lms[0].name, lms[1].name
    table, cohens = nll["nll"], nll["cohens_d"]
    mean_nll = table.groupby("model")["nll_mean"].mean()
    nll_winner = min(mean_nll.index, key=lambda m: mean_nll[m])
    lines = [f"# Human vs LLM: {base} (base) and {post} (post-trained)", "",
             f"**{CONFOUND}**", "",
             "## Likelihood view (Psych-201)", "",
             "Mean negative log-likelihood per human response (nats; lower = the model finds people's "
             "responses more probable) and Cohen's d of post-trained vs base (positive = post-trained "
             "less human-like).", "",
             "| experiment | " + " | ".join(f"NLL {m}" for m in (base, post)) + " | d |", "|---|---|---|---|"]
    for exp, g in table.groupby("experiment", sort=True):
        v = g.set_index("model")["nll_mean"]
        d = float(cohens.loc[cohens["experiment"] == exp, "d"].iloc[0])
        lines.append(f"| {exp} | {v[base]:.3f} | {v[post]:.3f} | {d:.2f} |")
    overall = float(cohens.loc[cohens["experiment"] == "overall", "d"].iloc[0])
    lines += [f"| overall (mean of experiments) | {mean_nll[base]:.3f} | {mean_nll[post]:.3f} | {overall:.2f} |", "",
              f"By likelihood, **{nll_winner}** is the more human-like model.", "",
              "![likelihood](1_likelihood/nll.png)", "",
              "## Parameter view (cogfit.align)", "",
              "Energy distance between each LLM population's fitted members and the people's, over all "
              "parameters, as a multiple of the people's split-half ceiling (1 = as far as people are from "
              "each other). `llm:` = the model playing the task; `soft:` = its choice probabilities on "
              "the people's own histories.", "",
              "| task | population | energy / ceiling | P > ceiling |", "|---|---|---|---|"]
    verdicts = []
    for task in ("bandit", "lottery"):
        e = _energy(aligned[task])
        for pop, r in e.iterrows():
            lines.append(f"| {task} | {pop} | {times(r['ratio'])} | {r['p_above']:.2f} |")
        played = {m: e.loc[f"llm:{m}", "ratio"] for m in (base, post) if f"llm:{m}" in e.index}
        if played:
            verdicts.append((task, min(played, key=played.get)))
    lines.append("")
    unconverged = set(convergence.loc[~convergence["ok"].astype(bool), "task"])
    for task, winner in verdicts:
        agree = "agrees" if winner == nll_winner else "disagrees"
        caveat = " (read with care: this task's fit did not converge, see below)" if task in unconverged else ""
        lines.append(f"- {TASK_TITLE[task]}: by parameters **{winner}** plays more like people; this "
                     f"{agree} with the likelihood view{caveat}.")
    lines += ["", "Where the parameter view says what the likelihood cannot (W1 beyond the ceiling with "
              "probability >= 0.9):", ""]
    n_said = 0
    for task in ("bandit", "lottery"):
        for pop in _energy(aligned[task]).index:
            said = _beyond(aligned[task], pop)
            if said:
                lines.append(f"- {task}, {pop}: " + "; ".join(said))
                n_said += 1
    if not n_said:
        lines.append("- none: no single parameter is beyond the ceiling with that probability.")
    lines += ["", "| task | population | elpd of people's data per member (nats) | diff vs people |",
              "|---|---|---|---|"]
    for task in ("bandit", "lottery"):
        for r in aligned[f"{task}_likelihood"].itertuples():
            lines.append(f"| {task} | {r.population} | {r.elpd:.1f} | {r.diff:.1f} +- {r.diff_se:.1f} |")
    lines += ["", "![bandit](4_alignment/bandit/alignment_heatmap.png) "
              "![lottery](4_alignment/lottery/alignment_heatmap.png)", "",
              "## Behaviour and fits", ""]
    for key, t in beh.items():
        if key.startswith("play_"):
            lines.append(f"- `{key}`: {t['subject'].nunique()} participants, {len(t)} trials, "
                         f"{int(t['n_invalid'].sum())} unparsable outputs redrawn, {int(t['fallback'].sum())} "
                         "trial(s) decided by the fallback rule (after ten unparsable draws)")
    lines += ["", "| task | max R-hat | min bulk ESS | divergences | converged |", "|---|---|---|---|---|"]
    for r in convergence.itertuples():
        lines.append(f"| {r.task} | {r.max_rhat:.3f} | {r.min_ess_bulk:.0f} | {r.divergences} | {r.ok} |")
    bad = convergence[~convergence["ok"].astype(bool)]
    if len(bad):
        lines += ["", f"Not converged: {', '.join(bad['task'])} (R-hat > 1.01, bulk ESS < 400 or divergences)"
                  + ("; a quick study's short chains are not meant to converge." if quick else ".")]
        for r in bad.itertuples():
            worst = getattr(r, "worst", "")
            what = [f"{r.divergences} divergent transitions"] if r.divergences else []
            what += [f"worst value {worst}"] if isinstance(worst, str) and worst else []
            lines.append(f"- {r.task}: " + "; ".join(what or ["bulk ESS or R-hat of a derived value"]))
        lines += ["", "`fit.flags()` of `cogfit.load(\"3_fits/<task>.nc\")` lists every value that fails, with its "
                  "chains' medians; divergences are counted over all populations."]
    lines += ["", "Settings, seeds, versions and model hashes: `study.json`.", ""]
    path = folder / "summary.md"
    path.write_text("\n".join(lines))
    return path


__all__ = ["CONFOUND", "MEANING", "plot_nll", "write_summary"]
