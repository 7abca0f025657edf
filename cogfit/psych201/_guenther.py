"""Adapter: guenther2020LDT, lexical decisions on compound words and compound nonwords.

Günther & Marelli (2020), Trying to make it work: compositional effects in the processing of
compound "nonwords", Q J Exp Psychol 73(7), 1082-1091.

Tidy columns (for drift-diffusion models, lexicality as ``condition``): ``item`` (the letter
string shown), ``response`` (the key pressed), ``choice`` (1 = "exists" response, 0 =
"does not exist"; the keys are assigned per participant and read from the participant's own
instructions "If the word presented to you exists, press the C key ... If the word does not
exist, press the W key"), ``key_word`` / ``key_nonword`` (those keys), ``rt`` (seconds, as
recorded), ``exclude`` (True where ``rt <= 0``: 11 trials of 3 participants, recording errors;
:meth:`cogfit.TrialData.from_table` removes and counts them), ``age``.

Lexicality is not in the transcripts; :func:`lexicality` derives it from all participants:
``p_exists`` is the share of "exists" responses to the item, ``n_raters`` the number of
participants who saw it, and ``condition`` is ``"word"`` when more than half said "exists",
``"nonword"`` when fewer than half did, and ``"tie"`` at exactly half (23 of the 3,018 items in
the full data; they are kept, labelled, never assigned silently). In the full data 1,314 items
are words and 1,681 nonwords by this rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from cogfit.psych201._adapter import Adapter, register

NAME = "guenther2020LDT"


def lexicality(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with ``p_exists``, ``n_raters`` and ``condition`` (word/nonword/tie) per item."""
    if "item" not in table or "choice" not in table:
        raise KeyError("lexicality needs columns 'item' and 'choice'")
    g = table.groupby("item", sort=False)["choice"]
    p = table["item"].map(g.mean())
    n = table["item"].map(g.size())
    condition = np.where(p > 0.5, "word", np.where(p < 0.5, "nonword", "tie"))
    return table.assign(p_exists=p.astype(float), n_raters=n.astype(int), condition=condition)


def _finalize(table: pd.DataFrame) -> pd.DataFrame:
    table = lexicality(table)
    if "rt" in table:
        table = table.assign(exclude=~(table["rt"] > 0))
    return table


def _to_row(f: Mapping[str, str]) -> dict[str, Any]:
    yes, no = f["key_word"], f["key_nonword"]
    if f["response"] not in (yes, no):
        raise ValueError(f"response {f['response']!r} is neither the 'exists' key {yes} nor the 'does not exist' key {no}")
    return {"item": f["item"], "response": f["response"], "choice": int(f["response"] == yes),
            "key_word": yes, "key_nonword": no}


def _from_row(r: Mapping[str, Any]) -> dict[str, str]:
    yes, no = str(r["key_word"]), str(r["key_nonword"])
    return {"key_word": yes, "key_nonword": no, "item": str(r["item"]), "response": (no, yes)[int(r["choice"])]}


INSTRUCTIONS = """In the following study, you will see complex words such as airport or warzone in the browser window. You will have to judge for each word whether it exists as an English word or not.
For example, airport is an existing word, while saddleolive does not exist in the English language. Please respond as fast, but most importantly as accurately as possible.
We sincerely want to ask you to be as diligent as possible in making these judgements. For our study, we cannot analyse data only consisting of random answers.
You will see these words one after another. If the word presented to you exists, press the {key_word} key on your keyboard. If the word does not exist, press the {key_nonword} key. You are free to write these button assignments down if it helps you remembering them.
The study will not continue unless you give a response. Thus, if you want to pause the study, you can delay your response until you want to continue.
By pressing the ESC key, you will end the fullscreen mode. This does not hinder you from continuing the experiment, but you cannot switch back to fullscreen mode. If possible, we want to ask you to stay in fullscreen mode for the whole duration of the experiment.
"""

adapter = register(
    Adapter(
        name=NAME,
        trial=r"(?P<item>[^<>\n]+?)\. You press <<(?P<response>[^<>]*)>>\.",
        trial_template="{item}. You press <<{response}>>.",
        to_row=_to_row,
        from_row=_from_row,
        instructions=INSTRUCTIONS,
        header=(
            r"If the word presented to you exists, press the (?P<key_word>\S+) key.*?"
            r"If the word does not exist, press the (?P<key_nonword>\S+) key",
        ),
        meta={"age": "age"},
        finalize=_finalize,
        defaults={"key_word": "Y", "key_nonword": "N"},
    )
)
