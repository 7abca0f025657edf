"""An incremental session: feed a transcript piece by piece, reusing the KV cache.

Each new piece costs a forward pass over its own tokens only, so a T-trial session costs O(T)
forward tokens rather than O(T^2) when it is re-read at every trial. Used for choice
probabilities (several candidate continuations at each response) and for closed-loop play.

When the context would exceed ``max_tokens`` the session either slides (restarts the cache from
the most recent half window, with a warning), stops (``"truncate"``: raises
:class:`ContextFull` for the caller to report) or raises (``"error"``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

from cogfit.llm._lm import LM, crop, forward

OVERFLOW = ("slide", "truncate", "error")


class ContextFull(RuntimeError):
    """The session reached ``max_tokens`` under ``overflow="truncate"``."""


class Session:
    """Log-probabilities of text fed one piece at a time, with the KV cache kept between pieces.

    Parameters
    ----------
    lm
        The language model.
    prefix
        Tokens that start the session (e.g. ``[<s>]``); may be empty, then the first fed token
        cannot be scored.
    overflow
        ``"slide"``, ``"truncate"`` or ``"error"`` (see the module docstring).
    label
        Names the session in warnings and errors.
    """

    def __init__(self, lm: LM, prefix: Sequence[int] = (), *, overflow: str = "slide", label: str = ""):
        if overflow not in OVERFLOW:
            raise ValueError(f"overflow must be one of {OVERFLOW}, got {overflow!r}")
        self.lm, self.overflow, self.label = lm, overflow, label
        self.history: list[int] = []
        self.cache = None
        self.next_logp: torch.Tensor | None = None  # (vocab,) log p(next token | history)
        self.slid = 0
        if prefix:
            self.feed(prefix)

    @property
    def cached(self) -> int:
        return 0 if self.cache is None else self.cache.get_seq_length()

    def _forward(self, ids: Sequence[int], keep_all: bool) -> torch.Tensor:
        start = self.cached
        x = torch.tensor([list(ids)], dtype=torch.long)
        pos = torch.arange(start, start + len(ids)).unsqueeze(0)
        keep = None if keep_all else torch.tensor([len(ids) - 1])
        if self.cache is None:
            self.cache = _new_cache(self.lm)
        mask = torch.ones((1, start + len(ids)), dtype=torch.long)
        logp = forward(self.lm, x, keep=keep, attention_mask=mask, position_ids=pos, cache=self.cache,
                       use_cache=True)
        return logp[0]

    def _make_room(self, n: int) -> None:
        limit = self.lm.max_tokens
        if self.cached + n <= limit:
            return
        if self.overflow == "error":
            raise ValueError(f"{self.label}: session exceeds the context limit of {limit} tokens")
        if self.overflow == "truncate":
            raise ContextFull(f"{self.label}: context limit of {limit} tokens reached")
        keep = self.history[-(limit // 2) :] if limit // 2 else []
        if not self.slid:
            warnings.warn(f"{self.label}: session exceeds {limit} tokens; sliding the context window "
                          f"(the model now sees only the last {len(keep)}-{limit} tokens)", stacklevel=3)
        self.slid += 1
        self.cache, self.next_logp = None, None
        if keep:
            self.next_logp = self._forward(keep, keep_all=False)[-1]

    def feed(self, ids: Sequence[int], *, score: bool = False) -> np.ndarray | None:
        """Append ``ids`` to the session; with ``score``, return their log-probabilities ``(n,)``."""
        ids = [int(i) for i in ids]
        out: list[np.ndarray] = []
        step = max(1, self.lm.max_tokens // 2)
        for s in range(0, len(ids), step):
            chunk = ids[s : s + step]
            self._make_room(len(chunk))
            if score and self.next_logp is None:
                raise ValueError(f"{self.label}: cannot score the first token of a session with no "
                                 "start token")
            logp = self._forward(chunk, keep_all=score)
            if score:
                prev = torch.cat([self.next_logp[None], logp[:-1]], dim=0)
                out.append(prev.gather(1, torch.tensor(chunk, device=prev.device)[:, None])[:, 0].cpu().numpy())
            self.next_logp = logp[-1]
            self.history += chunk
        return np.concatenate(out) if score else None

    def option_logprobs(self, options: Sequence[Sequence[int]]) -> np.ndarray:
        """``log p(option tokens | history)`` for each candidate ``(K,)``, history unchanged.

        Single-token options are read from the next-token distribution; longer ones are fed
        and the cache is cropped back afterwards.
        """
        if self.next_logp is None:
            raise ValueError(f"{self.label}: no context to predict options from")
        out = np.empty(len(options))
        for k, opt in enumerate(options):
            lp = float(self.next_logp[opt[0]])
            if len(opt) > 1:
                self._make_room(len(opt))
                length, saved = self.cached, self.next_logp
                logp = self._forward(opt, keep_all=True)
                lp += float(logp[:-1].gather(1, torch.tensor(opt[1:], device=logp.device)[:, None]).sum())
                crop(self.cache, length)
                self.next_logp = saved
            out[k] = lp
        return out


def _new_cache(lm: LM):
    from transformers import DynamicCache

    try:
        return DynamicCache(config=lm.model.config)
    except TypeError:
        return DynamicCache()
