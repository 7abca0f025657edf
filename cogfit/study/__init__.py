"""Studies: whole workflows from data and language models to a report folder.

:func:`human_vs_llm` (``cogfit study human-vs-llm``): Psych-201's likelihood view and the
cognitive-parameter view of two language models against people, resumable
(:mod:`cogfit.study.human_vs_llm`).
"""

from cogfit.study.human_vs_llm import human_vs_llm, sizes

__all__ = ["human_vs_llm", "sizes"]
