"""Load a causal language model and run it: device and dtype choice, one forward helper.

Everything that depends on the transformers version lives here (the name of the cache
argument, cropping a cache), so the rest of :mod:`cogfit.llm` sees one small interface.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
import transformers

from cogfit.llm._sources import SOURCES, manifest, materialize

#: Psych-201 caps a session at 32k tokens.
PSYCH201_MAX_TOKENS = 32_768


class LM(NamedTuple):
    """A loaded causal language model.

    Attributes
    ----------
    model
        A transformers ``*ForCausalLM`` in eval mode.
    tokenizer
        Its (fast) tokenizer.
    name
        Short name used in population labels (``"llm:<name>"``): the hub name or the folder name.
    device
        Where the model runs.
    max_tokens
        Longest context scored in one window: ``min(32768, the model's position limit)``.
    source
        For a registry model (:data:`cogfit.llm.SOURCES`): its conversion manifest (hub name,
        kind, GGUF and safetensors SHA-256, transformers version); else ``None``.
    """

    model: Any
    tokenizer: Any
    name: str
    device: torch.device
    max_tokens: int
    source: dict | None = None


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else CUDA when available, else CPU."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def pick_dtype(device: torch.device, dtype: str | torch.dtype | None = None) -> torch.dtype:
    """``dtype`` if given, else bfloat16 on a GPU and float32 on a CPU."""
    if dtype is None or dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        try:
            return {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
                    "float16": torch.float16, "fp32": torch.float32, "float32": torch.float32}[dtype]
        except KeyError:
            raise ValueError(f"unknown dtype {dtype!r}; use 'bfloat16', 'float16' or 'float32'") from None
    return dtype


THREADS_ENV = "COGFIT_TORCH_THREADS"


def cpu_threads() -> int:
    """Torch threads for CPU inference: ``$COGFIT_TORCH_THREADS``, else the cores left idle.

    Idle cores are the CPU count minus the 1-minute load average (at least 1, at most torch's
    default). On a busy 2-core machine torch's default of one thread per core spin-waits for
    cores other processes hold: one thread was several times faster there (RESULTS.md,
    "Human-vs-LLM study"); on an idle machine all cores are used.
    """
    if env := os.environ.get(THREADS_ENV):
        return max(1, int(env))
    cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except OSError:  # pragma: no cover - platforms without a load average
        busy = 0.0
    return int(max(1, min(torch.get_num_threads(), cores, round(cores - busy))))


def _position_limit(config: Any) -> int | None:
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def load_lm(
    name_or_path: str | os.PathLike,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    name: str | None = None,
    max_tokens: int | None = None,
    threads: int | None = None,
    **from_pretrained: Any,
) -> LM:
    """Load a causal LM and its tokenizer by short name, hub name or local folder.

    Parameters
    ----------
    name_or_path
        A registry model's short name (``"gemma-3-270m"``, ``"smollm2-135m-instruct"``: converted
        once from the installed package's GGUF file and cached as safetensors, see
        :mod:`cogfit.llm._sources`), or anything ``AutoModelForCausalLM.from_pretrained`` accepts.
    device, dtype
        Default: CUDA in bfloat16 when a GPU is visible, else CPU in float32.
    name
        Label for outputs; default the last component of ``name_or_path``.
    max_tokens
        Context window used for scoring; default ``min(32768, position limit of the model)``.
    threads
        On a CPU, ``torch.set_num_threads`` (process-wide) to this; default :func:`cpu_threads`
        (the idle cores: one on a busy machine). Ignored on a GPU.
    **from_pretrained
        Passed to both ``from_pretrained`` calls (e.g. ``gguf_file=...``, ``revision=...``).
    """
    source = None
    if str(name_or_path) in SOURCES and not os.path.exists(name_or_path):
        folder = materialize(str(name_or_path))
        source, name, name_or_path = manifest(folder), name or str(name_or_path), folder
    dev = pick_device(device)
    if dev.type == "cpu":
        torch.set_num_threads(threads or cpu_threads())
    tokenizer = transformers.AutoTokenizer.from_pretrained(name_or_path, **from_pretrained)
    dtype_key = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
    model = transformers.AutoModelForCausalLM.from_pretrained(
        name_or_path, **{dtype_key: pick_dtype(dev, dtype)}, **from_pretrained
    )
    lm = wrap(model, tokenizer, name=name or os.path.basename(os.path.normpath(str(name_or_path))),
              device=dev, max_tokens=max_tokens)
    return lm._replace(source=source)


def wrap(model: Any, tokenizer: Any, *, name: str, device: str | torch.device | None = None,
         max_tokens: int | None = None) -> LM:
    """An :class:`LM` from an already loaded model and tokenizer (moved to ``device``)."""
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError(f"{name}: cogfit.llm needs a fast tokenizer (tokenizers-backed)")
    dev = pick_device(device) if device is not None else next(model.parameters()).device
    model = model.to(dev).eval()
    limit = _position_limit(model.config)
    cap = min(PSYCH201_MAX_TOKENS, limit) if limit else PSYCH201_MAX_TOKENS
    if max_tokens is not None:
        if max_tokens < 2:
            raise ValueError(f"max_tokens must be >= 2, got {max_tokens}")
        cap = min(cap, max_tokens) if limit else max_tokens
    return LM(model, tokenizer, name, dev, cap)


# --- forward pass -------------------------------------------------------------------------


def _cache_kwarg(model: Any) -> str:
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def forward(
    lm: LM,
    ids: torch.Tensor,
    *,
    keep: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    position_ids: torch.Tensor | None = None,
    cache: Any = None,
    use_cache: bool = False,
) -> torch.Tensor:
    """Log-softmax (float32) at the positions ``keep`` of ``ids`` ``(B, L)``.

    ``keep`` is a 1-D tensor of positions (same for every row); ``None`` keeps all. Only the
    kept positions are projected onto the vocabulary, so a 32k-token session never builds a
    ``(32k, vocab)`` logits matrix. Returns ``(B, len(keep), vocab)``. A given ``cache`` (a
    ``DynamicCache``) is extended in place.
    """
    kwargs: dict[str, Any] = {"input_ids": ids.to(lm.device), "use_cache": use_cache}
    if attention_mask is not None:
        kwargs["attention_mask"] = attention_mask.to(lm.device)
    if position_ids is not None:
        kwargs["position_ids"] = position_ids.to(lm.device)
    if cache is not None:
        kwargs[_cache_kwarg(lm.model)] = cache
    if keep is not None:
        kwargs["logits_to_keep"] = keep.to(lm.device)
    with torch.inference_mode():
        out = lm.model(**kwargs)
        logp = torch.log_softmax(out.logits.float(), dim=-1)
    return logp


def crop(cache: Any, length: int) -> None:
    """Shorten ``cache`` in place to its first ``length`` positions (any transformers version)."""
    current = cache.get_seq_length()
    if length == current:
        return
    first = next(iter(inspect.signature(cache.crop).parameters))
    cache.crop(length - current if first == "tokens_to_remove" else length)


def special_prefix(tokenizer: Any) -> list[int]:
    """Token ids the tokenizer puts before a text (e.g. ``<s>``), none for GPT-2 style ones."""
    with_special = tokenizer("a", add_special_tokens=True)["input_ids"]
    without = tokenizer("a", add_special_tokens=False)["input_ids"]
    for i in range(len(with_special) - len(without) + 1):
        if with_special[i : i + len(without)] == without:
            return list(with_special[:i])
    return []


def encode(tokenizer: Any, text: str) -> list[int]:
    """Token ids of ``text`` alone, without special tokens."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def decodes_exactly(tokenizer: Any, ids: Sequence[int], text: str) -> bool:
    """Whether ``ids`` decode back to exactly ``text`` (no inserted or lost characters)."""
    return tokenizer.decode(list(ids), clean_up_tokenization_spaces=False) == text
