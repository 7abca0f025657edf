"""LLM participants playing tasks in closed loop, output as tidy trials like human data.

A task is a function ``task(seed, rng) -> generator``. The generator speaks the experiment's
text and yields three kinds of items:

- ``str``: text the experiment writes (instructions, feedback);
- :class:`Ask`: the text right before a response (ending in ``<<``) and the option names; the
  model's response is the name of the sampled option, whose code is sent back into the
  generator (the closing ``>>`` comes with the task's next ``str``);
- :class:`Emit`: a finished trial's columns (stimuli, outcomes); the player adds ``subject``,
  ``trial``, the choices, the LLM's option probabilities and ``population``.

Environments (:mod:`cogfit.tasks`) draw the outcomes; ready-made tasks are in
:mod:`cogfit.llm._tasks`. The KV cache is kept for the whole session, so each trial costs
only its own new tokens.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from cogfit.llm._choices import option_tokens, prob_columns, softmax_options
from cogfit.llm._lm import LM, encode, special_prefix
from cogfit.llm._session import Session
from cogfit.llm._store import Store


class Ask(NamedTuple):
    """A decision: ``text`` up to and including ``<<``, the ``options`` names, the output column."""

    text: str
    options: tuple[str, ...]
    column: str = "choice"


class Emit(NamedTuple):
    """A finished trial's columns."""

    row: dict[str, Any]


Episode = Generator["str | Ask | Emit", "int | None", None]
Task = Callable[[int, np.random.Generator], Episode]

_QUESTIONS = {"age": "What is your age?", "gender": "What is your gender?",
              "sex": "What is your sex?", "education": "What is your highest level of education?"}


def persona_text(fields: Mapping[str, Any]) -> str:
    """Psych-201's metadata block: ``Interviewer: What is your age?`` / ``Interviewee: 34``.

    One question and answer per field (known fields have their own question, others ask
    ``What is your <field>?``), then a blank line. Answers are not wrapped in ``<<>>``: they
    are given, not produced by the model, and so are never scored.
    """
    lines = []
    for key, value in fields.items():
        question = _QUESTIONS.get(key, f"What is your {key.replace('_', ' ')}?")
        lines += [f"Interviewer: {question}", f"Interviewee: {value}"]
    return "\n".join(lines) + "\n\n" if lines else ""


def _persona(persona: Any, i: int) -> Mapping[str, Any]:
    if persona is None:
        return {}
    if callable(persona):
        return persona(i)
    if isinstance(persona, Mapping):
        return persona
    return persona[i]


def participant_seed(seed: int, i: int) -> int:
    """Seed of participant ``i``'s environment (independent streams per participant)."""
    return int(np.random.SeedSequence([seed, i]).generate_state(1)[0])


#: Unparsable outputs: each try draws the whole response from the model (temperature 1); one that is
#: none of the option names is redrawn, at most this many times, then the choice is drawn from the
#: renormalised option probabilities and the trial marked ``fallback``.
MAX_TRIES = 10


def invalid_draws(mass: float, rng: np.random.Generator, max_tries: int = MAX_TRIES) -> tuple[int, bool]:
    """Unparsable draws before a valid one, and whether all ``max_tries`` were unparsable.

    A free response is one of the option names with probability ``mass`` (their total
    probability at temperature 1), so the number of unparsable draws is geometric; given a valid
    draw, the option is distributed as the renormalised option probabilities, which is how the
    choice itself is drawn. This is rejection sampling of the model's own output, counted.
    """
    if not 0 <= mass <= 1 + 1e-6:
        raise ValueError(f"option mass must be in [0, 1], got {mass}")
    failures = int(rng.geometric(min(max(mass, 1e-300), 1.0))) - 1
    return min(failures, max_tries), failures >= max_tries


def play_one(lm: LM, task: Task, *, seed: int, index: int, temperature: float, persona: Mapping[str, Any],
             population: str, overflow: str = "slide",
             max_tries: int = MAX_TRIES) -> tuple[list[dict[str, Any]], str]:
    """One LLM participant's session: its tidy rows and the transcript it produced."""
    subject = f"{lm.name}/{index}"
    rng = np.random.default_rng([seed, index, 1])
    parse_rng = np.random.default_rng([seed, index, 2])  # own stream: choices do not depend on it
    session = Session(lm, special_prefix(lm.tokenizer), overflow=overflow, label=f"LLM participant {subject}")
    episode = task(participant_seed(seed, index), rng)
    # Text between two responses is tokenized as one piece, exactly as a transcript of the
    # session would be when scored later, so closed-loop and re-read probabilities agree.
    buffer, text = persona_text(persona), ""
    rows: list[dict[str, Any]] = []
    pending: dict[str, Any] = {}
    answer: int | None = None
    while True:
        try:
            item = episode.send(answer)
        except StopIteration:
            break
        answer = None
        if isinstance(item, str):
            buffer += item
        elif isinstance(item, Ask):
            ids = option_tokens(lm, item.options, subject)
            session.feed(encode(lm.tokenizer, buffer + item.text))
            logp = session.option_logprobs(ids)
            probs, mass = softmax_options(logp)
            sample_p = softmax_options(logp, temperature)[0]
            answer = int(rng.choice(len(ids), p=sample_p))
            session.feed(ids[answer])
            text += buffer + item.text + item.options[answer]
            buffer = ""
            prefix = "" if item.column == "choice" else f"{item.column}_"
            n_invalid, fallback = invalid_draws(mass, parse_rng, max_tries)
            pending.update({item.column: answer, **dict(zip(prob_columns(len(ids), item.column), probs)),
                            f"{prefix}option_mass": mass, f"{prefix}n_invalid": n_invalid,
                            f"{prefix}fallback": fallback})
        elif isinstance(item, Emit):
            rows.append({"subject": subject, "trial": len(rows), **item.row, **pending,
                         "population": population})
            pending = {}
        else:
            raise TypeError(f"task yielded {type(item).__name__}; expected str, Ask or Emit")
    text += buffer
    return rows, text


def play(
    lm: LM,
    task: Task,
    *,
    n_participants: int,
    seed: int = 0,
    temperature: float = 1.0,
    persona: Mapping[str, Any] | Sequence[Mapping[str, Any]] | Callable[[int], Mapping[str, Any]] | None = None,
    population: str | None = None,
    overflow: str = "slide",
    out: str | os.PathLike | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """``n_participants`` LLM participants play ``task``; the tidy trials of all of them.

    Parameters
    ----------
    task
        ``task(seed, rng) -> generator`` (see the module docstring), e.g.
        :func:`cogfit.llm.bandit_task`.
    seed
        Fixes every participant's environment (seed of participant ``i``:
        :func:`participant_seed`) and sampled choices; the same call gives the same table.
    temperature
        Choices are sampled from the options' renormalised probabilities at this temperature
        (0: the most probable option). The reported ``choice_prob_*`` are at temperature 1.
    persona
        Fields of a Psych-201 metadata block written before the instructions (e.g.
        ``{"age": 34}``): one mapping for all, one per participant, or a function of the index.
    out
        JSONL file written after each participant; rerunning with the same file resumes.

    Returns
    -------
    Tidy trials: ``subject`` (``"<model>/<i>"``), ``trial`` (0-based), the task's columns,
    ``choice`` (option code), ``choice_prob_1..K``, ``option_mass``, ``n_invalid`` (unparsable
    outputs redrawn before this choice, see :data:`MAX_TRIES`), ``fallback`` (all tries were
    unparsable: the choice came from the renormalised option probabilities), ``population``
    (``"llm:<model>"``). The transcripts are in ``table.attrs["transcripts"]`` (subject ->
    text) for the participants played in this call.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    population = population or f"llm:{lm.name}"
    store = Store(out, {"task": "play", "model": lm.name, "seed": seed, "temperature": temperature,
                        "population": population, "task_fn": getattr(task, "__name__", repr(task))})
    transcripts = {}
    for i in tqdm(range(n_participants), disable=not progress, desc=f"{lm.name} playing"):
        if store.has(population, i):
            continue
        rows, text = play_one(lm, task, seed=seed, index=i, temperature=temperature,
                              persona=_persona(persona, i), population=population, overflow=overflow)
        transcripts[f"{lm.name}/{i}"] = text
        store.add(population, i, rows)
    table = store.table(["subject", "trial", "choice", "population"])
    table.attrs["transcripts"] = transcripts
    return table
