"""Experiment adapters: a Psych-201 transcript <-> a tidy trial table, one adapter per experiment.

An :class:`Adapter` is data: a regular expression for one trial line, a mapping from the
captured text to tidy columns (``to_row``) and its inverse (``from_row``), plus the templates
that write the text back. :func:`read` and :func:`render` do the rest for every experiment.

Reading a participant
---------------------
1. The *instructions* are the lines before the first trial or state line. Every ``header``
   pattern must be found there; its named groups (e.g. this participant's shuffled option
   names) become fields of every trial.
2. Each later line is a *state* line (e.g. ``Session 2:``; its groups update the running
   fields), a *trial* line (fully matched by ``trial``; its groups plus the header and state
   fields go to ``to_row``), a line matching a ``skip`` pattern, or blank. Anything else is a
   :class:`TranscriptError` naming the participant, the line number and the line.
3. The number of trials must equal the number of ``<<`` markers in the transcript, so every
   response is accounted for. ``rt`` (seconds) is ``RTs / rt_per_s``.

Writing an adapter for another experiment (about thirty lines)::

    import re
    from cogfit.psych201 import Adapter, register

    def to_row(f):                     # f: every named group of header, state and trial, as str
        if f["response"] not in (f["left"], f["right"]):
            raise ValueError(f"response {f['response']!r} is neither {f['left']} nor {f['right']}")
        return {"choice": int(f["response"] == f["right"]), "gain": float(f["gain"]),
                "block": int(f["block"]), "response": f["response"],
                "option_a": f["left"], "option_b": f["right"]}

    def from_row(r):                   # the inverse: tidy row -> the same fields as text
        return {"left": r["option_a"], "right": r["option_b"], "gain": f"{r['gain']:g}",
                "block": str(r["block"]),
                "response": (r["option_a"], r["option_b"])[int(r["choice"])]}

    register(Adapter(
        name="myexperiment2025",
        instructions="Press {left} to accept and {right} to reject a gamble.\\n",
        header=(r"Press (?P<left>\\w+) to accept and (?P<right>\\w+) to reject",),
        state={"block": (r"Block (?P<block>\\d+):", "\\nBlock {block}:\\n")},
        trial=r"You can win (?P<gain>-?[\\d.]+) points\\. You press <<(?P<response>\\w+)>>\\.",
        trial_template="You can win {gain} points. You press <<{response}>>.",
        to_row=to_row, from_row=from_row,
        meta={"age": "age"},           # tidy column <- participant field
    ))

Then ``cogfit.psych201.read("prompts.jsonl.zip", "myexperiment2025")`` gives the table and
``cogfit.psych201.render(table, "myexperiment2025")`` writes it back as transcripts.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from cogfit.psych201._jsonl import Participant, TranscriptError, read_jsonl
from cogfit.psych201._responses import extract_responses

Fields = Mapping[str, str]


def _default_subject(p: Participant) -> str:
    return str(p.participant)


def _int_if_integral(s: str) -> int | str:
    """``"12" -> 12``; anything that would not print back identically stays a str."""
    return int(s) if s.isdigit() and str(int(s)) == s else s


@dataclasses.dataclass(frozen=True)
class Adapter:
    """How one experiment's transcripts map to tidy trials and back.

    Attributes
    ----------
    name
        The experiment's Psych-201 name (its folder), e.g. ``"dezfouli2019"``.
    trial
        Regular expression that fully matches one trial line; the participant's response is
        the named group ``response`` between ``<<`` and ``>>``.
    to_row
        ``fields -> dict`` of tidy columns (without ``subject``, ``trial``, ``rt`` and the
        ``meta`` columns). ``fields`` holds the named groups of header, state and trial
        patterns as strings. Raise ``ValueError`` for values that make no sense; the reader adds
        participant and line to the message.
    from_row
        The inverse: a tidy row (dict of column values) -> the fields that fill
        ``instructions``, the state templates and ``trial_template``.
    trial_template
        ``str.format`` template of a trial line (inverse of ``trial``).
    instructions
        ``str.format`` template of the text before the first trial (filled from the first
        trial's ``from_row`` fields), including its trailing newline(s).
    header
        Patterns searched in the instructions, each must be found; their named groups are
        fields of every trial (e.g. option names shuffled per participant).
    state
        ``field -> (pattern, template)``: lines that set a running field (``Session 2:``).
        The template (with its own newlines) is written before the first trial and whenever
        the field changes.
    skip
        Patterns of lines between trials that carry no data (fully matched).
    meta
        ``column -> participant field`` copied into every trial (``age``, ``diagnosis``), or
        ``column -> function(Participant)`` for a value derived from the participant (such a
        column is not written back by :func:`render`; ``source`` writes what it needs).
    subject
        ``Participant -> subject id`` (str), unique within the experiment's file.
    source
        ``(subject, first row) -> (experiment, participant)`` fields written by :func:`render`.
    finalize
        Derivations across participants applied to the whole table by :func:`read`.
    defaults
        Values for columns :func:`render` needs that a table (e.g. a simulated one) may lack.
    final_newline
        Whether the transcript ends with a newline after the last trial.
    rt_per_s
        Units of ``RTs`` in the file per second (Psych-201: milliseconds, 1000).
    """

    name: str
    trial: str
    to_row: Callable[[Fields], dict[str, Any]]
    from_row: Callable[[Mapping[str, Any]], dict[str, str]]
    trial_template: str
    instructions: str
    header: tuple[str, ...] = ()
    state: Mapping[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    skip: tuple[str, ...] = ()
    meta: Mapping[str, str | Callable[[Participant], Any]] = dataclasses.field(default_factory=dict)
    subject: Callable[[Participant], str] = _default_subject
    source: Callable[[str, Mapping[str, Any]], tuple[str, int | str]] | None = None
    finalize: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    final_newline: bool = True
    rt_per_s: float = 1000.0

    def __post_init__(self):
        if "response" not in re.compile(self.trial).groupindex:
            raise ValueError(f"adapter {self.name!r}: trial pattern needs a (?P<response>...) group")


_ADAPTERS: dict[str, Adapter] = {}


def register(adapter: Adapter, *, overwrite: bool = False) -> Adapter:
    """Add ``adapter`` to the registry under ``adapter.name`` and return it."""
    if adapter.name in _ADAPTERS and not overwrite and _ADAPTERS[adapter.name] is not adapter:
        raise ValueError(f"an adapter named {adapter.name!r} is already registered")
    _ADAPTERS[adapter.name] = adapter
    return adapter


def get_adapter(name: str | Adapter) -> Adapter:
    """The registered adapter of experiment ``name`` (an Adapter is returned unchanged)."""
    if isinstance(name, Adapter):
        return name
    try:
        return _ADAPTERS[name]
    except KeyError:
        raise KeyError(f"no adapter for experiment {name!r}; available: {', '.join(sorted(_ADAPTERS))}") from None


def adapters() -> list[str]:
    """Names of the experiments that have an adapter, sorted."""
    return sorted(_ADAPTERS)


class _Compiled:
    """An adapter's patterns compiled once per read."""

    def __init__(self, a: Adapter):
        self.trial = re.compile(a.trial)
        self.header = [re.compile(h) for h in a.header]
        self.state = [re.compile(pattern) for pattern, _ in a.state.values()]
        self.skip = [re.compile(s) for s in a.skip]


def parse_participant(p: Participant, adapter: Adapter | str, _c: _Compiled | None = None) -> list[dict[str, Any]]:
    """One participant's trials as a list of tidy rows (see the module docstring)."""
    a = get_adapter(adapter)
    c = _c or _Compiled(a)
    subject = a.subject(p)
    lines = p.text.split("\n")

    def is_state(line: str) -> re.Match | None:
        for pat in c.state:
            if m := pat.fullmatch(line):
                return m
        return None

    first = next((i for i, line in enumerate(lines) if is_state(line) or c.trial.fullmatch(line)), len(lines))
    instructions = "\n".join(lines[:first])
    fields: dict[str, str] = {}
    for pat in c.header:
        m = pat.search(instructions)
        if m is None:
            raise TranscriptError(f"{p.label()}: the instructions do not match {pat.pattern!r}")
        fields.update(m.groupdict())
    meta = {}
    for col, key in a.meta.items():
        if callable(key):
            meta[col] = key(p)
        elif key not in p.fields:
            raise TranscriptError(f"{p.label()}: missing field {key!r} (column {col!r})")
        else:
            meta[col] = p.fields[key]

    rows = []
    for lineno, line in enumerate(lines[first:], start=first + 1):
        if m := is_state(line):
            fields.update(m.groupdict())
            continue
        m = c.trial.fullmatch(line)
        if m is None:
            if "<<" not in line and (not line.strip() or any(s.fullmatch(line) for s in c.skip)):
                continue
            raise TranscriptError(f"{p.label()} line {lineno}: cannot parse {line!r} (trial pattern {a.trial!r})")
        try:
            row = a.to_row({**fields, **m.groupdict()})
        except (ValueError, KeyError, TypeError) as err:
            raise TranscriptError(f"{p.label()} line {lineno}: {err} in {line!r}") from None
        rows.append({"subject": subject, "trial": len(rows), **row})
    n_markers = len(extract_responses(p.text))
    if len(rows) != n_markers:
        raise TranscriptError(f"{p.label()}: parsed {len(rows)} trials but the text has {n_markers} <<responses>>")
    if p.rts is not None:
        for row, rt in zip(rows, p.rts, strict=True):
            row["rt"] = rt / a.rt_per_s
    for row in rows:
        row.update(meta)
    return rows


def read(
    source: str | os.PathLike | Iterable[Participant], adapter: Adapter | str | None = None
) -> pd.DataFrame:
    """The tidy trial table of a Psych-201 file (or of a list of participants).

    Parameters
    ----------
    source
        A ``.jsonl`` / ``.jsonl.zip`` path or participants from :func:`read_jsonl`.
    adapter
        The experiment's adapter or its name; by default the name in the participants'
        ``experiment`` field (up to the first ``/``).

    Returns
    -------
    One row per response: ``subject`` (str), ``trial`` (0-based order within subject), the
    adapter's columns, ``rt`` (seconds) when the file has RTs, and the ``meta`` columns.
    """
    participants = read_jsonl(source) if isinstance(source, str | os.PathLike) else list(source)
    if not participants:
        raise TranscriptError(f"{source}: no participants")
    if adapter is None:
        field = participants[0].experiment
        if field.split("/")[0] not in _ADAPTERS:
            raise KeyError(
                f"no adapter for the experiment field {field!r}; pass adapter=, one of {', '.join(adapters())}"
            )
        adapter = field.split("/")[0]
    a = get_adapter(adapter)
    c = _Compiled(a)
    rows: list[dict[str, Any]] = []
    seen: dict[str, Participant] = {}
    for p in participants:
        subject = a.subject(p)
        if subject in seen:
            raise TranscriptError(f"{p.label()}: subject id {subject!r} repeats {seen[subject].label()}")
        seen[subject] = p
        rows.extend(parse_participant(p, a, c))
    table = pd.DataFrame.from_records(rows)
    if a.finalize is not None:
        table = a.finalize(table)
    return table


def _plain(v: Any) -> Any:
    """numpy scalars -> Python scalars (for JSON)."""
    return v.item() if isinstance(v, np.generic) else v


def render(table: pd.DataFrame, adapter: Adapter | str) -> list[Participant]:
    """Transcripts of a tidy trial table in the experiment's own style (inverse of :func:`read`).

    Each subject becomes one :class:`Participant`: the instructions (with the subject's own
    option names), state lines (``Session 2:``) and one line per trial in ``trial`` order with
    the response in ``<<`` ``>>``; ``RTs`` from ``rt`` (seconds) when present; ``meta`` columns
    as participant fields. Columns in ``adapter.defaults`` may be missing from ``table``.
    Write them with :func:`write_jsonl`; ``read(render(table, a), a)`` gives ``table`` back.
    """
    a = get_adapter(adapter)
    missing = [k for k in ("subject", "trial") if k not in table.columns]
    if missing:
        raise KeyError(f"render: table lacks column(s) {missing}")
    if table["subject"].isna().any():
        raise ValueError(f"render: missing subject id in row {int(np.flatnonzero(table['subject'].isna())[0])}")
    repeated = table.duplicated(["subject", "trial"])
    if repeated.any():
        row = table[repeated].iloc[0]
        raise ValueError(f"render: subject {_plain(row['subject'])!r} has trial {_plain(row['trial'])!r} more than once")
    table = table.assign(**{k: v for k, v in a.defaults.items() if k not in table.columns})
    c = _Compiled(a)
    header_fields = [k for pat in c.header for k in pat.groupindex]
    has_rt = "rt" in table.columns
    all_records = table.to_dict("records")
    trial_order = table["trial"].to_numpy()
    positions = table.groupby("subject", sort=False).indices
    out = []
    for subject in table["subject"].unique():
        rows_of = positions[subject]
        rows_of = rows_of[np.argsort(trial_order[rows_of], kind="stable")]
        records = [all_records[i] for i in rows_of]
        lines: list[str] = []
        state: dict[str, str] = {}
        fields0: dict[str, str] = {}
        for i, row in enumerate(records):
            try:
                fields = a.from_row(row)
                if i == 0:
                    fields0 = fields
                changed = [k for k in header_fields if fields[k] != fields0[k]]
                if changed:
                    raise ValueError(f"{changed} change within the subject but the instructions state them once")
                for key, (_, template) in a.state.items():
                    if state.get(key) != fields[key]:
                        state[key] = fields[key]
                        lines.append(template.format(**fields))
                line = a.trial_template.format(**fields)
                if not c.trial.fullmatch(line) or line.count("<<") != 1:
                    raise ValueError(f"the line {line!r} would not read back as one trial")
                lines.append(line + "\n")
            except (KeyError, ValueError, TypeError) as err:
                raise ValueError(f"render: subject {subject!r} row trial={row['trial']}: {err!r}") from None
        text = a.instructions.format(**fields0) + "".join(lines)
        if not a.final_newline:
            text = text.removesuffix("\n")
        rts = None
        if has_rt:
            rts = tuple(math.nan if pd.isna(r["rt"]) else round(float(r["rt"]) * a.rt_per_s, 6) for r in records)
        meta = {}
        for col, key in a.meta.items():
            if callable(key):
                continue
            values = pd.unique(pd.Series([r[col] for r in records])) if col in table.columns else []
            if len(values) != 1:
                raise ValueError(f"render: subject {subject!r}: column {col!r} must hold one value, has {list(values)}")
            meta[key] = _plain(values[0])
        experiment, participant = (
            a.source(str(subject), records[0]) if a.source else (a.name, _int_if_integral(str(subject)))
        )
        out.append(Participant(experiment, participant, text, rts, meta))
    return out

