"""An LLM's choice distribution at every response of a human transcript (soft labels).

At each response the model sees the session so far (the human's earlier choices and the
feedback they got) and we read its probability of each option name as the response text.
Probabilities are renormalised over the options; ``option_mass`` reports how much raw
probability the option names received (near 1 when the model treats the prompt as a choice
between them). The table has the tidy trial layout the core fits with a cross-entropy
likelihood: ``choice_prob_1..choice_prob_K`` are the probabilities of option codes 0..K-1.

When every option name is one token, the distributions are marked (:meth:`Session.ask`) and
read off one forward pass over the transcript (one per ``max_tokens // 2`` tokens, and one at
each slide); longer names cost a forward pass per option and response.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from cogfit.llm._lm import LM, encode, special_prefix
from cogfit.llm._segments import Transcript, as_transcripts, chat_pieces, line_of, plain_pieces
from cogfit.llm._session import OVERFLOW, ContextFull, Session
from cogfit.llm._store import Store
from cogfit.psych201 import extract_responses

Options = Sequence[str] | Mapping[Any, Sequence[str]] | Callable[[Transcript], Sequence[str]]


def option_tokens(lm: LM, names: Sequence[str], label: str = "") -> list[list[int]]:
    """Token ids of each option name; raises unless no name's tokens prefix another's."""
    if len(set(names)) != len(names) or len(names) < 2:
        raise ValueError(f"{label}: need at least two distinct option names, got {list(names)}")
    ids = [encode(lm.tokenizer, n) for n in names]
    for i, a in enumerate(ids):
        if not a:
            raise ValueError(f"{label}: option {names[i]!r} has no tokens")
        for j, b in enumerate(ids):
            if i != j and b[: len(a)] == a:
                raise ValueError(f"{label}: the tokens of option {names[i]!r} are a prefix of those of "
                                 f"{names[j]!r}, so their probabilities overlap; rename the options")
    return ids


def softmax_options(logp: np.ndarray, temperature: float = 1.0) -> tuple[np.ndarray, float]:
    """Options' probabilities renormalised (at ``temperature``) and their raw total mass."""
    mass = float(np.exp(logp).sum())
    if temperature == 0:
        p = (logp == logp.max()).astype(float)
        return p / p.sum(), mass
    z = logp / temperature
    p = np.exp(z - z.max())
    return p / p.sum(), mass


def prob_columns(k: int, column: str = "choice") -> list[str]:
    """``choice_prob_1..choice_prob_K`` (or ``<column>_prob_k``)."""
    return [f"{column}_prob_{i + 1}" for i in range(k)]


def _names(options: Options | None, tr: Transcript) -> list[str] | None:
    if options is None:
        return None
    if callable(options):
        return list(options(tr))
    if isinstance(options, Mapping):
        for key in (tr.participant, (tr.experiment, tr.participant)):
            if key in options:
                return list(options[key])
        raise KeyError(f"{tr.label()}: no option names given for this participant")
    return list(options)


def _human_rows(tr: Transcript, adapter: str) -> list[dict[str, Any]]:
    """The adapter's tidy rows of the human session, one per response."""
    from cogfit.psych201 import Participant, parse_participant

    return parse_participant(Participant(tr.experiment, tr.participant, tr.text, None, tr.fields), adapter)


def _one(lm: LM, tr: Transcript, names: list[str] | None, *, chat_template: bool, other: str,
         overflow: str, population: str, adapter: str | None = None) -> list[dict[str, Any]]:
    label = tr.label()
    human = _human_rows(tr, adapter) if adapter else None
    if names is None:
        if human is None or not human or "option_a" not in human[0]:
            raise ValueError(f"{label}: give the option names (options=...) or an adapter whose rows "
                             "have option_a/option_b")
        names_at = [[str(h["option_a"]), str(h["option_b"])] for h in human]
    else:
        names_at = None
    pieces = chat_pieces(lm.tokenizer, tr.text, label) if chat_template else plain_pieces(tr.text)
    session = Session(lm, [] if chat_template else special_prefix(lm.tokenizer), overflow=overflow,
                      label=label)
    responses = {r.index: r for r in extract_responses(tr.text)}
    rows: list[dict[str, Any]] = []
    try:
        for piece, index in pieces:
            ids = encode(lm.tokenizer, piece)
            if index < 0:
                session.feed(ids)
                continue
            r = responses[index]
            if names_at is not None:
                names = names_at[index]
            opt_ids = option_tokens(lm, names, label)
            if piece not in names:
                if other == "error":
                    raise ValueError(f"{label}, response {index} (line {line_of(tr.text, r.start)}): "
                                     f"{piece!r} is none of the options {names}")
                session.feed(ids)
                continue
            if all(len(o) == 1 for o in opt_ids):  # read where the next forward pass passes by
                asked = session.ask([o[0] for o in opt_ids])
                scored = session.feed(ids, score="later")
            else:
                asked = session.known(session.option_logprobs(opt_ids))
                scored = [session.known(session.feed(ids, score=True))]
            row = {"experiment": tr.experiment, "subject": tr.participant, "trial": len(rows),
                   "response": piece, "response_index": index, "choice": names.index(piece)}
            if human is not None:
                h = dict(human[index])
                if h.get("choice", row["choice"]) != row["choice"]:
                    raise ValueError(f"{label}, response {index}: the adapter codes {piece!r} as choice "
                                     f"{h['choice']}, the option list {names} as {row['choice']}")
                h.pop("rt", None)
                if "population" in h:
                    h["human_population"] = h.pop("population")
                row = {"experiment": tr.experiment, **h, "response": piece, "response_index": index,
                       "choice": row["choice"]}
            rows.append((row, asked, scored, len(names)))
    except ContextFull:
        left = len(responses) - (rows[-1][0]["response_index"] + 1 if rows else 0)
        warnings.warn(f"{label}: context limit of {lm.max_tokens} tokens reached; the last {left} "
                      "responses have no choice probabilities (use overflow='slide')", stacklevel=3)
    n_other = sum(1 for i, r in responses.items()
                  if r.text not in (names_at[i] if names_at is not None else names))
    if n_other and other == "drop":
        warnings.warn(f"{label}: {n_other} responses are none of the options {names} and were left out",
                      stacklevel=3)
    return [_finish(session, *r, population) for r in rows]


def _finish(session: Session, row: dict[str, Any], asked: int, scored: list[int], k: int,
            population: str) -> dict[str, Any]:
    """A response's row with its probabilities, from the session's tickets of its options' and its
    tokens' log-probabilities."""
    logp = np.asarray(session.answer(asked), dtype=float)
    nll = -float(session.answer(scored).sum())
    p, mass = softmax_options(logp)
    return {**row, **dict(zip(prob_columns(k), p)), "option_mass": mass, "nll": nll, "population": population}


def choice_probabilities(
    lm: LM,
    transcripts: Any,
    options: Options | None = None,
    *,
    adapter: str | None = None,
    chat_template: bool = False,
    other: str = "error",
    overflow: str = "slide",
    population: str | None = None,
    out: str | os.PathLike | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """The model's probability of each option at every response of each transcript.

    Parameters
    ----------
    transcripts
        As for :func:`cogfit.llm.score_transcripts`.
    options
        Option names (the exact response texts, e.g. ``["L", "R"]``), code ``k`` for the k-th
        name: one list for everybody, a mapping participant -> list, or a function of the
        :class:`Transcript` (Psych-201 shuffles letters per participant; read them from the
        text). Their token sequences must not prefix one another. ``None`` with an
        ``adapter``: each trial's ``option_a``/``option_b``.
    adapter
        A :mod:`cogfit.psych201` adapter name (e.g. ``"dezfouli2019"``): the human session's
        tidy columns (``reward``, ``block``, lottery outcomes, its ``subject`` and ``trial``)
        are joined to each row, so the table can be fitted directly; the human's own
        ``population`` becomes ``human_population`` and ``rt`` is left out.
    other
        Responses that are none of the options: ``"error"`` (default) or ``"drop"`` (with a
        warning giving their number).
    overflow
        Past ``lm.max_tokens``: ``"slide"`` (default; warns), ``"truncate"`` (warns how many
        responses were left out) or ``"error"``.
    population
        Label; default ``"llm:<model name>"``.
    out
        JSONL written after each participant; rerunning with the same file resumes.

    Returns
    -------
    Tidy trials: ``experiment, subject, trial`` (0-based among kept responses), ``response``
    (its text) and ``response_index`` (among all responses), ``choice`` (the human's option
    code), ``choice_prob_1..K``, ``option_mass``, ``nll`` (of the human response, nats),
    ``population``; with an ``adapter`` also the human session's tidy columns.
    """
    if other not in ("error", "drop"):
        raise ValueError(f"other must be 'error' or 'drop', got {other!r}")
    if overflow not in OVERFLOW:
        raise ValueError(f"overflow must be one of {OVERFLOW}, got {overflow!r}")
    transcripts = as_transcripts(transcripts)
    population = population or f"llm:{lm.name}"
    if options is None and adapter is None:
        raise ValueError("give options=... (option names) or adapter=... (a cogfit.psych201 adapter)")
    settings = {"task": "choices", "model": lm.name, "chat_template": chat_template, "other": other,
                "adapter": adapter,
                "overflow": overflow, "population": population, "max_tokens": lm.max_tokens}
    store = Store(out, settings)
    for tr in tqdm(transcripts, disable=not progress, desc=f"choice probabilities, {lm.name}"):
        if store.has(tr.experiment, tr.participant):
            continue
        rows = _one(lm, tr, _names(options, tr), chat_template=chat_template, other=other,
                    overflow=overflow, population=population, adapter=adapter)
        store.add(tr.experiment, tr.participant, rows)
    return store.table(["experiment", "subject", "trial", "response", "response_index", "choice",
                        "option_mass", "nll", "population"])
