"""Psych-201 transcripts: read natural-language sessions into tidy trials, and write them back."""

from cogfit.psych201._responses import Response, extract_responses

__all__ = ["Response", "extract_responses"]
