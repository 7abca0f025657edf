"""Psych-201 transcripts: read natural-language sessions into tidy trials, and write them back.

``read(path)`` turns a Psych-201 ``prompts.jsonl(.zip)`` into the tidy trial table of its
experiment's :class:`Adapter`; ``render(table, adapter)`` writes a table back as transcripts in
the experiment's own style (``write_jsonl`` saves them). See :mod:`cogfit.psych201._adapter`
for how to write an adapter for another experiment.
"""

from cogfit.psych201 import _dezfouli, _guenther, _spektor  # noqa: F401  (register their adapters)
from cogfit.psych201._adapter import Adapter, adapters, get_adapter, parse_participant, read, register, render
from cogfit.psych201._guenther import lexicality
from cogfit.psych201._jsonl import Participant, TranscriptError, read_jsonl, responses_table, write_jsonl
from cogfit.psych201._responses import Response, extract_responses

__all__ = [
    "Adapter",
    "Participant",
    "Response",
    "TranscriptError",
    "adapters",
    "extract_responses",
    "get_adapter",
    "lexicality",
    "parse_participant",
    "read",
    "read_jsonl",
    "register",
    "render",
    "responses_table",
    "write_jsonl",
]
