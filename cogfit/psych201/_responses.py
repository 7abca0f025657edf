"""Find the participant's responses in a Psych-201 transcript.

Psych-201 wraps every response of the participant in ``<<`` and ``>>``. Everything else in the
text is the experiment speaking (instructions, stimuli, feedback).
"""

from __future__ import annotations

import re
from typing import NamedTuple

_RESPONSE = re.compile(r"<<(.*?)>>", re.DOTALL)


class Response(NamedTuple):
    """One response of the participant.

    ``start`` and ``end`` are character offsets of the response text itself (without the
    ``<<``/``>>`` markers) in the transcript, so ``text[start:end] == response.text``.
    ``index`` is its order among the responses (0-based).
    """

    index: int
    text: str
    start: int
    end: int


def extract_responses(text: str) -> list[Response]:
    """All responses in ``text`` in order of appearance."""
    return [
        Response(i, m.group(1), m.start(1), m.end(1)) for i, m in enumerate(_RESPONSE.finditer(text))
    ]
