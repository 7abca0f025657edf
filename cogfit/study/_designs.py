"""The human side of the human-vs-LLM study: which people, which trials, and the tasks built from
their designs so that LLM participant ``i`` meets human ``i``'s world.

- dezfouli2019 (two-armed bandit): the first ``block_trials`` trials of each of the first
  ``blocks`` blocks, of people who have that many in every one of those blocks (97 of 101 for 12
  x 20); a human's reward schedule is, per block and arm, the rate of food rewards the
  person got on that arm in the whole block, ``(rewards + 1) / (choices + 2)`` (the data keep only
  the chosen arm's outcome, so the schedule is estimated, not the experiment's own file);
- spektor2024lossaversion (lotteries): the first ``lottery_trials`` lottery pairs, in the
  person's order and sessions.

People are taken round-robin over the data set's populations (diagnoses, sub-experiments), so
every population is represented; their own population label becomes ``"human"``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

import cogfit.datasets as D

BANDIT = "dezfouli2019"
LOTTERY = "spektor2024lossaversion"
LOTTERY_COLUMNS = ["x_a_1", "x_a_2", "p_a_1", "p_a_2", "x_b_1", "x_b_2", "p_b_1", "p_b_2"]


def pick_subjects(table: pd.DataFrame, n: int) -> list[str]:
    """``n`` subjects, round-robin over ``population`` in the data's order (first come first)."""
    groups = [list(s.unique()) for _, s in table.groupby("population", sort=True)["subject"]]
    out: list[str] = []
    for k in range(max(map(len, groups))):
        out += [g[k] for g in groups if k < len(g)]
    if len(out) < n:
        raise ValueError(f"asked for {n} participants; the data set has {len(out)}")
    return out[:n]


def bandit_humans(n: int, *, blocks: int, block_trials: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(trials, schedule)`` of ``n`` dezfouli2019 participants.

    ``trials``: tidy rows (``subject, trial, choice, reward, block, response, option_a, option_b,
    diagnosis, population="human"``), ``trial`` renumbered 0.. over the kept rows. ``schedule``:
    one row per subject and block with ``p_1``, ``p_2`` (reward probability of option a / b).
    """
    table = D.load(f"psych201/{BANDIT}")
    first = table[table["block"] <= blocks]
    per_block = first.groupby(["subject", "block"]).size().unstack("block")
    complete = per_block.index[(per_block.reindex(columns=range(1, blocks + 1)) >= block_trials).all(axis=1)]
    if len(complete) < n:
        raise ValueError(f"asked for {n} people; {BANDIT} has {len(complete)} with at least {block_trials} "
                         f"trials in each of blocks 1..{blocks}")
    subjects = pick_subjects(first[first["subject"].isin(complete)], n)
    full = first[first["subject"].isin(subjects)]
    counts = full.groupby(["subject", "block", "choice"])["reward"].agg(["sum", "size"])
    rate = ((counts["sum"] + 1) / (counts["size"] + 2)).unstack("choice").reindex(columns=[0, 1])
    schedule = rate.fillna(0.5).rename(columns={0: "p_1", 1: "p_2"}).reset_index()
    kept = full.groupby(["subject", "block"], sort=False).head(block_trials)
    kept = kept.assign(diagnosis=kept["population"], population="human",
                       subject=pd.Categorical(kept["subject"], subjects)).sort_values(["subject", "trial"])
    kept["subject"] = kept["subject"].astype(str)
    kept["trial"] = kept.groupby("subject").cumcount()
    return kept.reset_index(drop=True), schedule


def bandit_env(schedule: pd.DataFrame, subject: str, block_trials: int, seed: int):
    """A :class:`cogfit.tasks.Bandit` with ``subject``'s schedule, ``block_trials`` per block,
    0/1 payoffs drawn from ``seed``."""
    from cogfit.tasks import Bandit

    rows = schedule[schedule["subject"] == subject].sort_values("block")
    if rows.empty:
        raise KeyError(f"no reward schedule for subject {subject!r}")
    p = np.repeat(rows[["p_1", "p_2"]].to_numpy(float), block_trials, axis=0)
    payoffs = (np.random.default_rng([seed, 7]).random(p.shape) < p).astype(float)
    return Bandit(payoffs, p)


def lottery_humans(n: int, *, trials: int) -> pd.DataFrame:
    """The first ``trials`` lottery choices of ``n`` spektor2024lossaversion participants
    (``experiment`` keeps the sub-experiment; ``population="human"``)."""
    table = D.load(f"psych201/{LOTTERY}")
    subjects = pick_subjects(table, n)
    kept = table[table["subject"].isin(subjects) & (table["trial"] < trials)]
    order = {s: i for i, s in enumerate(subjects)}
    kept = (kept.assign(population="human", _order=kept["subject"].map(order))
            .sort_values(["_order", "trial"], kind="stable").drop(columns="_order"))
    short = kept.groupby("subject").size()
    if (short < trials).any():
        s = short.idxmin()
        raise ValueError(f"subject {s} has {short[s]} lottery choices, fewer than {trials}")
    return kept.drop(columns=["rt"]).reset_index(drop=True)


def by_participant(seed: int, n: int) -> dict[int, int]:
    """``participant_seed(seed, i) -> i``: which LLM participant an environment seed belongs to."""
    from cogfit.llm import participant_seed

    return {participant_seed(seed, i): i for i in range(n)}


def bandit_task(humans: pd.DataFrame, schedule: pd.DataFrame, *, seed: int, n: int, block_size: int) -> Any:
    """The dezfouli task for :func:`cogfit.llm.play`: participant ``i`` plays the schedule of
    human ``i mod len(humans)`` (in ``humans``' subject order)."""
    import cogfit.llm as L

    subjects = list(dict.fromkeys(humans["subject"]))
    index = by_participant(seed, n)
    return L.bandit_task(lambda s: bandit_env(schedule, subjects[index[s] % len(subjects)], block_size, s),
                         block_size=block_size)


def lottery_task(humans: pd.DataFrame, *, seed: int, n: int) -> Any:
    """The spektor task for :func:`cogfit.llm.play`: participant ``i`` chooses between the
    lotteries of human ``i mod len(humans)``, in their order and sessions."""
    import cogfit.llm as L

    subjects = list(dict.fromkeys(humans["subject"]))
    index = by_participant(seed, n)
    tasks = {s: L.lottery_task(humans.loc[humans["subject"] == s, LOTTERY_COLUMNS + ["session"]]
                               .reset_index(drop=True)) for s in subjects}

    def lotteries(s: int, rng: np.random.Generator):
        return tasks[subjects[index[s] % len(subjects)]](s, rng)

    return lotteries
