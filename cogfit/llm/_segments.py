"""Transcripts as token sequences in which every token is either context or one response's.

A transcript is cut at the ``<<``/``>>`` markers into pieces (context, response 0, context,
response 1, ...), and every piece is tokenized on its own. So no token ever straddles a marker,
whatever merges the tokenizer knows (``"<<R>>"`` as one token in a SentencePiece vocabulary,
``">>."`` in a byte-level one), and the tokens scored for a response are exactly the tokens of
its text. Plain mode keeps the markers in the context, as Psych-201 does; chat mode renders the
model's chat template with the context as user turns and each response as an assistant turn.

With the usual byte-level BPE and SentencePiece vocabularies no merge crosses a marker anyway:
for the SmolLM2-135M and Gemma-3-270M tokenizers the split token sequence of whole Psych-201
sessions equals the tokenizer's own (3 sessions each of dezfouli2019, spektor2024lossaversion
and guenther2020LDT, up to 23,511 tokens). The split matters for vocabularies that only break
text at spaces, where ``"<<R>>"`` can be a single token.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from cogfit.llm._lm import decodes_exactly, encode, special_prefix
from cogfit.psych201 import Response, extract_responses


class Transcript(NamedTuple):
    """One session: who, the text with responses in ``<<...>>``, other fields (age, ...)."""

    experiment: str
    participant: Any
    text: str
    fields: Mapping[str, Any] = {}

    def label(self) -> str:
        return f"{self.experiment} participant {self.participant!r}"


class Tokens(NamedTuple):
    """A transcript as model input.

    Attributes
    ----------
    ids
        ``(N,)`` int64 token ids, special prefix (e.g. ``<s>``) included.
    response
        ``(N,)`` int64: index of the response each token belongs to, ``-1`` for context.
    responses
        The responses found in the transcript, in order.
    """

    ids: np.ndarray
    response: np.ndarray
    responses: list[Response]


def as_transcripts(items: Any, *, experiment: str = "transcripts") -> list[Transcript]:
    """Normalise the accepted inputs to a list of :class:`Transcript`.

    Accepts one string, a list of strings (participants numbered 0, 1, ...), a DataFrame with
    ``text`` (and optional ``experiment``, ``participant``) columns, or an iterable of objects
    or mappings with ``text``, ``experiment`` and ``participant`` (e.g.
    :class:`cogfit.psych201.Participant`).
    """
    if isinstance(items, str):
        items = [items]
    if isinstance(items, pd.DataFrame):
        if "text" not in items.columns:
            raise ValueError(f"transcript table needs a 'text' column; it has {list(items.columns)}")
        items = items.to_dict("records")
    out: list[Transcript] = []
    for i, item in enumerate(items if isinstance(items, Iterable) else [items]):
        if isinstance(item, str):
            out.append(Transcript(experiment, i, item))
        elif isinstance(item, Mapping):
            rest = {k: v for k, v in item.items() if k not in ("experiment", "participant", "text")}
            out.append(Transcript(str(item.get("experiment", experiment)), item.get("participant", i),
                                  item["text"], rest))
        elif hasattr(item, "text"):
            out.append(Transcript(str(getattr(item, "experiment", experiment)),
                                  getattr(item, "participant", i), item.text,
                                  dict(getattr(item, "fields", {}) or {})))
        else:
            raise TypeError(f"transcript {i}: expected a str, mapping or object with .text, got "
                            f"{type(item).__name__}")
        if not isinstance(out[-1].text, str):
            raise TypeError(f"{out[-1].label()}: text is {type(out[-1].text).__name__}, not str")
    keys = [(t.experiment, t.participant) for t in out]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"two transcripts share experiment and participant {dup!r}")
    return out


def plain_pieces(text: str) -> list[tuple[str, int]]:
    """``(piece, response index or -1)`` with the markers kept in the context pieces."""
    pieces, pos = [], 0
    for r in extract_responses(text):
        pieces.append((text[pos : r.start], -1))
        pieces.append((r.text, r.index))
        pos = r.end
    pieces.append((text[pos:], -1))
    return [(p, i) for p, i in pieces if p or i >= 0]


def chat_pieces(tokenizer: Any, text: str, label: str) -> list[tuple[str, int]]:
    """Pieces of the chat-template rendering: context as user turns, responses as assistant turns.

    The markers are dropped. Each assistant turn is located by rendering the conversation
    with unique placeholders, so template headers can never be mistaken for a response.
    """
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError(f"{label}: the tokenizer has no chat template")
    responses = extract_responses(text)
    messages, pos = [], 0
    for r in responses:
        messages.append({"role": "user", "content": text[pos : r.start - 2]})
        messages.append({"role": "assistant", "content": f"\ue000{r.index}\ue001"})
        pos = r.end + 2
    if text[pos:]:
        messages.append({"role": "user", "content": text[pos:]})
    rendered = tokenizer.apply_chat_template(messages, tokenize=False)
    pieces, start = [], 0
    for r in responses:
        mark = f"\ue000{r.index}\ue001"
        at = rendered.find(mark, start)
        if at < 0:
            raise ValueError(f"{label}: the chat template altered response {r.index}; cannot locate it")
        pieces += [(rendered[start:at], -1), (r.text, r.index)]
        start = at + len(mark)
    pieces.append((rendered[start:], -1))
    return [(p, i) for p, i in pieces if p or i >= 0]


_warned: set[int] = set()


def tokenize(tokenizer: Any, transcript: Transcript, *, chat_template: bool = False) -> Tokens:
    """Token ids of ``transcript`` with the response index of every token.

    Raises if a response has no tokens or if the first token of the sequence would be a
    response token with nothing before it to predict it from.
    """
    label = transcript.label()
    if chat_template:
        pieces, ids = chat_pieces(tokenizer, transcript.text, label), []
    else:
        pieces, ids = plain_pieces(transcript.text), special_prefix(tokenizer)
    owner = [-1] * len(ids)
    for piece, index in pieces:
        piece_ids = encode(tokenizer, piece)
        if index >= 0 and not piece_ids:
            raise ValueError(f"{label}: response {index} ({piece!r}) has no tokens")
        if id(tokenizer) not in _warned and not decodes_exactly(tokenizer, piece_ids, piece):
            _warned.add(id(tokenizer))
            warnings.warn(
                f"{label}: the tokenizer does not decode the piece {piece[:40]!r} back to itself "
                "(it may add a prefix space to every separately tokenized piece); scores are of its "
                "tokenization", stacklevel=2)
        ids += piece_ids
        owner += [index] * len(piece_ids)
    if owner and owner[0] >= 0:
        raise ValueError(f"{label}: the transcript starts with a response and the tokenizer adds no "
                         "start token, so its first token cannot be scored")
    return Tokens(np.asarray(ids, dtype=np.int64), np.asarray(owner, dtype=np.int64),
                  extract_responses(transcript.text))


def line_of(text: str, offset: int) -> int:
    """1-based line number of character ``offset`` in ``text`` (for error messages)."""
    return text.count("\n", 0, offset) + 1
