"""Adapter: spektor2024lossaversion, choices between two two-outcome lotteries.

Spektor, Kellen, Rieskamp & Klauer (2024), Absolute and relative stability of loss aversion
across contexts, J Exp Psychol Gen 153(2), 454-472.

Tidy columns (for the ``cpt`` model): ``choice`` (0 = the lottery mentioned first in the
trial's line, 1 = the second), ``x_a_1, x_a_2`` / ``p_a_1, p_a_2`` (outcomes and
probabilities, as fractions, of the first lottery), ``x_b_*`` / ``p_b_*`` (the second),
``option_a`` / ``option_b`` (the lotteries' letters, shuffled per participant), ``response``
(the letter chosen), ``session`` (1 or 2), ``rt`` (deliberation time in seconds: a self-paced
task, median 3.3 s, a few over 50 minutes), ``experiment`` (exp1/exp2/exp3) and ``population``
(the same label: the sub-experiments used different lottery sets, so each gets its own group
distribution in a hierarchical fit, which NUTS samples far more easily than one population for
all three: see ``benchmarks/RESULTS.md``, spektor). Subject ids
are ``"<experiment>/<participant>"`` (participant numbers restart in each sub-experiment).
In all 282 participants the first-mentioned lottery is the same in every trial and is the first
name in the instructions' "The lotteries' names are S and Q."
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cogfit.psych201._adapter import Adapter, _int_if_integral, register
from cogfit.psych201._jsonl import Participant

NAME = "spektor2024lossaversion"
_NUM = r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?"


def _lottery(side: str) -> str:
    return (
        rf"The outcomes of lottery (?P<option_{side}>\S+) are (?P<x_{side}_1>{_NUM}) with "
        rf"(?P<p_{side}_1>{_NUM})% chance and (?P<x_{side}_2>{_NUM}) with (?P<p_{side}_2>{_NUM})% chance\."
    )


def _lottery_template(side: str) -> str:
    return (
        f"The outcomes of lottery {{option_{side}}} are {{x_{side}_1}} with {{p_{side}_1}}% chance "
        f"and {{x_{side}_2}} with {{p_{side}_2}}% chance."
    )


def number(v: Any) -> str:
    """A number as the transcripts write it: integers without a decimal point, else ``repr``."""
    v = float(v)
    return str(int(v)) if v.is_integer() else repr(v)


def _sub_experiment(p: Participant) -> str:
    m = re.fullmatch(rf"{NAME}/(\w+)\.csv", p.experiment)
    return m.group(1) if m else ""


def _subject(p: Participant) -> str:
    exp = _sub_experiment(p)
    return f"{exp}/{p.participant}" if exp else str(p.participant)


def _source(subject: str, row: Mapping[str, Any]) -> tuple[str, int | str]:
    exp = row["experiment"]
    if not exp:
        return NAME, _int_if_integral(subject)
    if not subject.startswith(f"{exp}/"):
        raise ValueError(f"subject {subject!r} does not start with its experiment {exp!r}/")
    return f"{NAME}/{exp}.csv", _int_if_integral(subject.removeprefix(f"{exp}/"))


_COLUMNS = tuple(f"{v}_{side}_{k}" for side in "ab" for v in "xp" for k in "12")


def _to_row(f: Mapping[str, str]) -> dict[str, Any]:
    a, b, response = f["option_a"], f["option_b"], f["response"]
    if not ((a == f["name_1"] and b == f["name_2"]) or (a == f["name_2"] and b == f["name_1"])):
        raise ValueError(f"lotteries {a}, {b} are not the instructions' {f['name_1']}, {f['name_2']}")
    if response != a and response != b:
        raise ValueError(f"response {response!r} is neither lottery {a} nor {b}")
    row: dict[str, Any] = {"choice": int(response == b)}
    for k in _COLUMNS:
        row[k] = float(f[k]) / 100.0 if k[0] == "p" else float(f[k])
    row.update(option_a=a, option_b=b, response=response, session=int(f["session"]))
    return row


def _from_row(r: Mapping[str, Any]) -> dict[str, str]:
    a, b = str(r["option_a"]), str(r["option_b"])
    fields = {"name_1": a, "name_2": b, "option_a": a, "option_b": b, "session": str(int(r["session"]))}
    fields["response"] = (a, b)[int(r["choice"])]
    for side in "ab":
        for k in "12":
            fields[f"x_{side}_{k}"] = number(r[f"x_{side}_{k}"])
            fields[f"p_{side}_{k}"] = number(round(float(r[f"p_{side}_{k}"]) * 100.0, 10))
    return fields


INSTRUCTIONS = """Dear participant,
In this experiment, we want to get to know your preferences.
In each trial, you will be shown two 50%-50% lotteries.
Each lottery has two outcomes, each occurring with 50% chance (e.g., like flipping a coin).
In each trial, your task is to indicate which of the two lotteries you prefer (even if you dislike both lotteries, there should be one you find preferable).
Note there are no right or wrong responses here. We simply want to get to know your preferences.
You will get a bonus payment that depends on the choices that you make.
At the end of the experiment, one of your choices will be selected at random and the decision that you made will be played out for the bonus payment.
The lotteries' names are {name_1} and {name_2}.
"""

adapter = register(
    Adapter(
        name=NAME,
        trial=rf"{_lottery('a')} {_lottery('b')} You choose <<(?P<response>[^<>]*)>>\.",
        trial_template=f"{_lottery_template('a')} {_lottery_template('b')} You choose <<{{response}}>>.",
        to_row=_to_row,
        from_row=_from_row,
        instructions=INSTRUCTIONS,
        header=(r"The lotteries' names are (?P<name_1>\S+) and (?P<name_2>\S+)\.",),
        state={"session": (r"Session (?P<session>\d+):", "\nSession {session}:\n")},
        meta={"experiment": _sub_experiment, "population": _sub_experiment},
        subject=_subject,
        source=_source,
        defaults={"option_a": "A", "option_b": "B", "session": 1, "experiment": ""},
        final_newline=False,
    )
)
