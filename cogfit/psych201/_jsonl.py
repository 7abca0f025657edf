"""Read and write Psych-201 JSONL files: one JSON object per participant.

Each object has ``text`` (the whole session; the participant's responses are wrapped in ``<<``
and ``>>``), ``experiment``, ``participant`` and optional fields: ``RTs`` (one response time
per response, in milliseconds, given as numbers or strings), ``age``, ``diagnosis``,
questionnaire scores, ... Files may be plain (``.jsonl``) or zipped (``.zip`` holding one
``.jsonl``; macOS resource forks under ``__MACOSX/`` are ignored).
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

import pandas as pd

from cogfit.psych201._responses import extract_responses


class TranscriptError(ValueError):
    """A transcript (or a line of it) that cannot be read; the message names participant and line."""


class Participant(NamedTuple):
    """One participant's session.

    Attributes
    ----------
    experiment
        The ``experiment`` field as written in the file, except that a local absolute path (an
        upstream author's machine, e.g. ``"dezfouli//Users/.../dezfouli2019/choices.csv"``) is
        cut to its last folder and file name (``"dezfouli2019/choices.csv"``): see
        :func:`experiment_label`.
    participant
        The ``participant`` field (an int or a str, as in the file).
    text
        The whole transcript.
    rts
        One response time per ``<<...>>`` response in milliseconds (``nan`` where the file has
        ``null``), or ``None`` when the file has no ``RTs``.
    fields
        All other fields (``age``, ``diagnosis``, questionnaire scores, ...).
    """

    experiment: str
    participant: int | str
    text: str
    rts: tuple[float, ...] | None = None
    fields: Mapping[str, Any] = MappingProxyType({})

    def label(self) -> str:
        """``"<experiment> participant <id>"``, for error messages."""
        return f"{self.experiment} participant {self.participant!r}"


def _rt(value: Any, where: str, index: int) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool):
        raise TranscriptError(f"{where}: RTs[{index}] = {value!r} is not a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TranscriptError(f"{where}: RTs[{index}] = {value!r} is not a number") from None


_LOCAL_PATH = re.compile(r"//|^/|^[A-Za-z]:[\\/]|/(Users|home|Desktop|Documents)/")


def experiment_label(field: str) -> str:
    """A Psych-201 ``experiment`` field without a local absolute path: such a field keeps its
    last two path segments (folder and file), any other is returned unchanged."""
    if not _LOCAL_PATH.search(field):
        return field
    parts = [x for x in re.split(r"[\\/]+", field) if x]
    return "/".join(parts[-2:])


def participant_from_json(obj: Mapping[str, Any], where: str = "") -> Participant:
    """A :class:`Participant` from one decoded JSON object (``where`` prefixes error messages)."""
    missing = [k for k in ("text", "experiment", "participant") if k not in obj]
    if missing:
        raise TranscriptError(f"{where}: missing field(s) {missing}")
    if not isinstance(obj["text"], str):
        raise TranscriptError(f"{where}: field 'text' is {type(obj['text']).__name__}, not str")
    p = Participant(experiment_label(str(obj["experiment"])), obj["participant"], obj["text"])
    where = f"{where} ({p.label()})" if where else p.label()
    rts = None
    if obj.get("RTs") is not None:
        raw = obj["RTs"]
        if isinstance(raw, str | bytes) or not isinstance(raw, Iterable):
            raise TranscriptError(f"{where}: RTs must be a list, got {type(raw).__name__}")
        rts = tuple(_rt(v, where, i) for i, v in enumerate(raw))
        n = len(extract_responses(p.text))
        if len(rts) != n:
            raise TranscriptError(f"{where}: {len(rts)} RTs for {n} <<responses>>")
    rest = {k: v for k, v in obj.items() if k not in ("text", "experiment", "participant", "RTs")}
    return p._replace(rts=rts, fields=rest)


def participant_to_json(p: Participant) -> dict[str, Any]:
    """The JSON object of a participant (inverse of :func:`participant_from_json`)."""
    obj: dict[str, Any] = {"text": p.text, "experiment": p.experiment, "participant": p.participant}
    if p.rts is not None:
        obj["RTs"] = [None if math.isnan(v) else (int(v) if float(v).is_integer() else v) for v in p.rts]
    obj.update(p.fields)
    return obj


def _jsonl_bytes(path: Path) -> bytes:
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            names = [
                n for n in z.namelist()
                if n.endswith(".jsonl") and not n.startswith("__MACOSX/") and "/._" not in f"/{n}"
            ]
            if len(names) != 1:
                raise TranscriptError(f"{path}: expected one .jsonl file in the zip, found {names}")
            return z.read(names[0])
    return path.read_bytes()


def read_jsonl(source: str | os.PathLike | io.TextIOBase) -> list[Participant]:
    """All participants of a Psych-201 JSONL file (plain ``.jsonl`` or zipped), in file order.

    Raises
    ------
    TranscriptError
        A line that is not JSON, lacks ``text``/``experiment``/``participant``, or whose ``RTs``
        are not numbers or do not match the number of ``<<responses>>``; the message names the
        file line and the participant.
    """
    if isinstance(source, io.TextIOBase):
        name, lines = getattr(source, "name", "<stream>"), source.read().splitlines()
    else:
        path = Path(source)
        name, lines = str(path), _jsonl_bytes(path).decode("utf-8").splitlines()
    out = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{name} line {lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise TranscriptError(f"{where}: not valid JSON ({err})") from None
        if not isinstance(obj, dict):
            raise TranscriptError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        out.append(participant_from_json(obj, where))
    return out


def write_jsonl(participants: Iterable[Participant], path: str | os.PathLike) -> Path:
    """Write participants as JSONL (zipped as ``prompts.jsonl`` when ``path`` ends in ``.zip``)."""
    path = Path(path)
    body = "".join(json.dumps(participant_to_json(p), ensure_ascii=False) + "\n" for p in participants)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("prompts.jsonl", body)
    else:
        path.write_text(body, encoding="utf-8")
    return path


def responses_table(participants: Iterable[Participant]) -> pd.DataFrame:
    """Every ``<<response>>`` of every participant, for experiments without an adapter.

    Returns
    -------
    One row per response: ``experiment``, ``participant``, ``index`` (0-based order in the
    transcript), ``response`` (the text between the markers), ``start`` / ``end`` (character
    offsets of that text in the transcript) and ``rt`` (seconds; ``nan`` when the file has no
    ``RTs``, which are in milliseconds).
    """
    rows = []
    for p in participants:
        for r in extract_responses(p.text):
            rt = p.rts[r.index] / 1000.0 if p.rts is not None else math.nan
            rows.append((p.experiment, p.participant, r.index, r.text, r.start, r.end, rt))
    return pd.DataFrame(rows, columns=["experiment", "participant", "index", "response", "start", "end", "rt"])
