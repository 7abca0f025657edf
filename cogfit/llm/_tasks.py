"""Ready-made tasks for :func:`cogfit.llm.play`, in the text of their Psych-201 experiments.

- :func:`bandit_task`: a two-armed bandit in dezfouli2019's words ("Block 1: You pressed <<L>>
  and received a food reward."), outcomes from a :class:`cogfit.tasks.Bandit`;
- :func:`lottery_task`: choices between two-outcome lotteries in spektor2024lossaversion's
  words, columns ready for the ``cpt`` models;
- :func:`twostep_task`: the two-step task (Daw et al. 2011) on a :class:`cogfit.tasks.TwoStep`.

Text comes from the experiments' :mod:`cogfit.psych201` adapters, split at the response, so a
played session reads exactly like a human one. Option letters are drawn per participant, as
Psych-201 shuffles them.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from cogfit.llm._play import Ask, Emit, Episode, Task
from cogfit.psych201 import get_adapter

_LETTERS = tuple(c for c in string.ascii_uppercase if c not in "IO")


def draw_names(rng: np.random.Generator, k: int, exclude: str = "") -> tuple[str, ...]:
    """``k`` distinct capital letters (no I, O or any in ``exclude``), in random order."""
    letters = [c for c in _LETTERS if c not in exclude]
    return tuple(str(c) for c in rng.choice(letters, k, replace=False))


def _split(adapter, row: Mapping[str, Any]) -> tuple[str, str]:
    """The adapter's trial line for ``row`` cut at the response: (text + ``<<``, ``>>`` + text)."""
    line = adapter.trial_template.format(**{**adapter.from_row(row), "response": "\ue000"})
    before, marker, after = line.partition("<<\ue000>>")
    if not marker:
        raise ValueError(f"adapter {adapter.name!r}: trial template has no <<{{response}}>>")
    return before + "<<", ">>" + after


def bandit_task(make_env: Callable[[int], Any], *, block_size: int | None = None,
                names: tuple[str, str] | None = None) -> Task:
    """Two-armed bandit in dezfouli2019's text.

    Parameters
    ----------
    make_env
        ``seed -> cogfit.tasks.Bandit`` with two arms, e.g.
        ``lambda s: cogfit.tasks.fixed_bandit([0.25, 0.75], 40, seed=s)``.
    block_size
        Trials per block (the text's "Block b:"); default one block.
    names
        The two option names; default two random letters per participant.

    Emitted columns: ``block``, ``reward``, ``option_a``, ``option_b``, ``response`` (+ the
    player's ``choice``: 0 = ``option_a``), as the dezfouli2019 reader writes them.
    """
    adapter = get_adapter("dezfouli2019")

    def bandit(seed: int, rng: np.random.Generator) -> Episode:
        env = make_env(seed)
        if env.n_arms != 2:
            raise ValueError(f"bandit_task needs two arms (dezfouli2019's text), got {env.n_arms}")
        a, b = names or draw_names(rng, 2)
        row = {"option_a": a, "option_b": b, "block": 1, "choice": 0, "reward": 0.0}
        yield adapter.instructions.format(**adapter.from_row(row))
        for t in range(env.n_trials):
            row["block"] = 1 + (t // block_size if block_size else 0)
            before, _ = _split(adapter, {**row, "choice": 0, "reward": 0.0})
            choice = yield Ask(before, (a, b))
            reward = env.step(choice)
            again, after = _split(adapter, {**row, "choice": choice, "reward": reward})
            if again != before:
                raise ValueError("the text before the response depends on the outcome")
            yield after + "\n"
            yield Emit({"block": row["block"], "reward": reward, "option_a": a, "option_b": b,
                        "response": (a, b)[choice]})

    return bandit


def lottery_task(design: pd.DataFrame, *, names: tuple[str, str] | None = None) -> Task:
    """Choices between two lotteries in spektor2024lossaversion's text (no feedback).

    Parameters
    ----------
    design
        One row per trial with ``x_a_1, x_a_2, p_a_1, p_a_2, x_b_1, x_b_2, p_b_1, p_b_2``
        (outcomes; probabilities as fractions) and optional ``session`` (default 1).
    names
        The two lottery names; default two random letters per participant.

    Emitted columns: the design's, ``session``, ``option_a``, ``option_b``, ``response``;
    ``choice`` 1 = lottery b (the ``cpt`` convention).
    """
    adapter = get_adapter("spektor2024lossaversion")
    need = [f"{v}_{s}_{k}" for s in "ab" for v in "xp" for k in "12"]
    missing = [c for c in need if c not in design.columns]
    if missing:
        raise ValueError(f"lottery design lacks columns {missing}")
    rows = design.assign(session=design.get("session", 1)).to_dict("records")
    for i, r in enumerate(rows):
        for s in "ab":
            total = r[f"p_{s}_1"] + r[f"p_{s}_2"]
            if abs(total - 1) > 1e-9:
                raise ValueError(f"lottery design row {i}: p_{s}_1 + p_{s}_2 = {total}, not 1")

    def lotteries(seed: int, rng: np.random.Generator) -> Episode:
        a, b = names or draw_names(rng, 2)
        session = None
        for r in rows:
            row = {**r, "option_a": a, "option_b": b, "choice": 0}
            if session is None:
                yield adapter.instructions.format(**adapter.from_row(row))
            if r["session"] != session:
                session = r["session"]
                yield adapter.state["session"][1].format(session=int(session))
            before, after = _split(adapter, row)
            choice = yield Ask(before, (a, b))
            yield after + "\n"
            yield Emit({**r, "option_a": a, "option_b": b, "response": (a, b)[choice]})

    return lotteries


TWOSTEP_INTRO = (
    "In this task, you will travel to planets to collect gold coins.\n"
    "On each trial, you first choose one of two spaceships, {s1} or {s2}. Each spaceship flies "
    "mostly to one planet and sometimes to the other.\n"
    "On the planet you choose one of its two aliens, who may give you a gold coin. How likely "
    "each alien is to give a coin changes slowly over time.\n"
    "Planet X has aliens {x1} and {x2}; planet Y has aliens {y1} and {y2}.\n\n"
)


def twostep_task(make_env: Callable[[int], Any], *, names: tuple[str, ...] | None = None) -> Task:
    """The two-step task in a Psych-201-like text.

    ``make_env`` is ``seed -> cogfit.tasks.TwoStep``; ``names`` six names (two spaceships, two
    aliens of planet X, two of planet Y), default random letters per participant. Columns:
    ``choice`` (spaceship), ``state2`` (0 = X, 1 = Y), ``choice2`` (alien), ``reward``, as the
    two-step models read them; probabilities ``choice_prob_*`` and ``choice2_prob_*``.
    """

    def twostep(seed: int, rng: np.random.Generator) -> Episode:
        env = make_env(seed)
        s1, s2, x1, x2, y1, y2 = names or draw_names(rng, 6, exclude="XY")
        aliens = ((x1, x2), (y1, y2))
        yield TWOSTEP_INTRO.format(s1=s1, s2=s2, x1=x1, x2=x2, y1=y1, y2=y2)
        for _ in range(env.n_trials):
            choice = yield Ask("You board spaceship <<", (s1, s2))
            state = env.step(choice)
            pair = aliens[state]
            choice2 = yield Ask(f">> and arrive at planet {'XY'[state]}. You ask alien <<", pair, "choice2")
            reward = env.step(choice2)
            yield f">> and receive {'a gold coin' if reward else 'nothing'}.\n"
            yield Emit({"state2": state, "reward": reward})

    return twostep
