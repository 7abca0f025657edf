"""An incremental session: feed a transcript piece by piece, reusing the KV cache.

Each new piece costs a forward pass over its own tokens only, so a T-trial session costs O(T)
forward tokens rather than O(T^2) when it is re-read at every trial. Used for choice
probabilities (several candidate continuations at each response) and for closed-loop play.

Feeding is lazy: unscored tokens wait in :attr:`Session.pending` and are run through the model
only when a distribution is needed (:meth:`Session.option_logprobs`, a scored feed,
:attr:`Session.next_logp`, :meth:`Session.flush`). A forward pass has a large fixed cost (it
reads all the weights), so a played trial (its text, then the previous answer) and a scored
single-token response each cost one forward instead of two. :meth:`Session.ask` and
``feed(..., score="later")`` go further: they only mark where a distribution is to be read, and
the marks are answered by the next forward pass, so a whole transcript's soft labels can come
from one pass over it. ``lazy=False`` runs every piece at once (the reference the tests compare
with).

When the context would exceed ``max_tokens`` the session either slides (restarts the cache from
the most recent half window, with a warning), stops (``"truncate"``: raises
:class:`ContextFull` for the caller to report) or raises (``"error"``). Pending tokens count
towards the limit exactly as if they had been run.
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
    lazy
        Keep unscored tokens pending until a distribution is needed (default); ``False`` runs
        each fed piece at once. The results agree to float32 rounding.

    Attributes
    ----------
    history
        Every token fed (pending ones included), before any slide too.
    pending
        Tokens fed but not yet run through the model; they follow those in ``cache``.
    cache
        The KV cache of the tokens run so far (since the last slide).
    slid
        How many times the context window slid.
    """

    def __init__(self, lm: LM, prefix: Sequence[int] = (), *, overflow: str = "slide", label: str = "",
                 lazy: bool = True):
        if overflow not in OVERFLOW:
            raise ValueError(f"overflow must be one of {OVERFLOW}, got {overflow!r}")
        self.lm, self.overflow, self.label, self.lazy = lm, overflow, label, lazy
        self.history: list[int] = []
        self.pending: list[int] = []
        self.cache = None
        self._next_logp: torch.Tensor | None = None  # after the cached tokens; stale while pending
        self._reads: list[tuple[int, list[int], int]] = []  # (pending position read after, tokens, ticket)
        self._answers: list[np.ndarray | None] = []  # by ticket; None until a forward pass answers it
        self.slid = 0
        if prefix:
            self.feed(prefix)

    @property
    def cached(self) -> int:
        """Tokens in the model's context: those in the KV cache plus the pending ones."""
        return self._cache_len + len(self.pending)

    @property
    def _cache_len(self) -> int:
        return 0 if self.cache is None else self.cache.get_seq_length()

    @property
    def _step(self) -> int:
        """Most new tokens in one forward pass."""
        return max(1, self.lm.max_tokens // 2)

    @property
    def next_logp(self) -> torch.Tensor | None:
        """``(vocab,)`` log p(next token | context), running the pending tokens first; ``None``
        while the context is empty."""
        self.flush()
        return self._next_logp

    def flush(self) -> None:
        """Run the pending tokens through the model (forwards of at most ``max_tokens // 2``),
        answering the :meth:`ask` marks among them."""
        while self.pending:
            chunk = self.pending[: self._step]
            n = len(chunk)
            reads = [r for r in self._reads if r[0] < n]
            keep = sorted({pos for pos, _, _ in reads} | {n - 1})
            logp = self._forward(chunk, keep)
            row = {pos: i for i, pos in enumerate(keep)}
            for pos, tokens, ticket in reads:
                self._answers[ticket] = logp[row[pos], tokens].cpu().numpy()
            self._reads = [(pos - n, tokens, ticket) for pos, tokens, ticket in self._reads if pos >= n]
            self._next_logp = logp[-1]
            del self.pending[:n]

    def ask(self, tokens: Sequence[int]) -> int:
        """Mark that ``log p(t | context so far)`` of each token ``t`` is wanted; no forward pass now.

        Returns a ticket for :meth:`answer`. The context is the one at this point: a later slide
        does not change the answer.
        """
        if not self.cached:
            raise ValueError(f"{self.label}: no context to predict options from")
        return self._ask([int(t) for t in tokens], len(self.pending) - 1)

    def _ask(self, tokens: list[int], pos: int) -> int:
        ticket = len(self._answers)
        if pos < 0:  # nothing pending: the distribution is at hand
            self._answers.append(self._next_logp[tokens].cpu().numpy())
        else:
            self._answers.append(None)
            self._reads.append((pos, tokens, ticket))
        return ticket

    def known(self, logp: np.ndarray) -> int:
        """A ticket for log-probabilities already computed, so :meth:`answer` serves both kinds."""
        self._answers.append(np.asarray(logp))
        return len(self._answers) - 1

    def answer(self, ticket: int | Sequence[int]) -> np.ndarray:
        """The log-probabilities ``(n,)`` asked for by ``ticket`` (or a list of tickets, joined),
        running the pending tokens if they are not answered yet."""
        tickets = [ticket] if isinstance(ticket, int) else list(ticket)
        if any(self._answers[t] is None for t in tickets):
            self.flush()
        return np.concatenate([self._answers[t] for t in tickets])

    def _forward(self, ids: Sequence[int], keep: Sequence[int] | None) -> torch.Tensor:
        """Log-softmax ``(len(keep), vocab)`` at positions ``keep`` of ``ids`` (all if ``None``),
        after the cached tokens; ``ids`` are appended to the cache."""
        start = self._cache_len
        x = torch.tensor([list(ids)], dtype=torch.long)
        pos = torch.arange(start, start + len(ids)).unsqueeze(0)
        if self.cache is None:
            self.cache = _new_cache(self.lm)
        mask = torch.ones((1, start + len(ids)), dtype=torch.long)
        logp = forward(self.lm, x, keep=None if keep is None else torch.tensor(list(keep), dtype=torch.long),
                       attention_mask=mask, position_ids=pos, cache=self.cache, use_cache=True)
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
        if self._reads:  # answer the marks in the context they were made in
            self.flush()
        self.slid += 1
        self.cache, self._next_logp, self.pending = None, None, list(keep)
        if not self.lazy:
            self.flush()

    def feed(self, ids: Sequence[int], *, score: bool | str = False) -> np.ndarray | list[int] | None:
        """Append ``ids`` to the session; with ``score``, return their log-probabilities ``(n,)``.

        Unscored tokens stay pending (no forward pass) unless ``lazy=False``. ``score="later"``
        returns tickets instead (:meth:`answer` gives the log-probabilities), so the tokens can
        stay pending too.
        """
        if score not in (False, True, "later"):
            raise ValueError(f"score must be True, False or 'later', got {score!r}")
        ids = [int(i) for i in ids]
        out: list = []
        for s in range(0, len(ids), self._step):
            chunk = ids[s : s + self._step]
            self._make_room(len(chunk))
            if score and not self.cached:
                raise ValueError(f"{self.label}: cannot score the first token of a session with no start token")
            if score == "later":
                out += [self._ask([t], len(self.pending) - 1 + j) for j, t in enumerate(chunk)]
                self.pending += chunk
            elif score:
                out.append(self._score(chunk))
            else:
                self.pending += chunk
            self.history += chunk
            if not self.lazy:
                self.flush()
        if score == "later":
            return out
        return np.concatenate(out) if score else None

    def _score(self, chunk: list[int]) -> np.ndarray:
        """Log-probabilities of ``chunk`` after the (non-empty) context, which it then joins."""
        if len(chunk) == 1 or len(self.pending) + len(chunk) > self._step or self._reads:
            self.flush()
        if len(chunk) == 1:  # the distribution at hand scores it; the token itself can wait
            self.pending.append(chunk[0])
            return self._next_logp[chunk[0]].reshape(1).cpu().numpy()
        n = len(self.pending)
        if n:  # the pending tokens and the chunk in one forward pass
            logp = self._forward(self.pending + chunk, range(n - 1, n + len(chunk)))
            prev = logp[:-1]
        else:
            logp = self._forward(chunk, None)
            prev = torch.cat([self._next_logp[None], logp[:-1]], dim=0)
        self.pending, self._next_logp = [], logp[-1]
        return prev.gather(1, torch.tensor(chunk, device=prev.device)[:, None])[:, 0].cpu().numpy()

    def option_logprobs(self, options: Sequence[Sequence[int]]) -> np.ndarray:
        """``log p(option tokens | history)`` for each candidate ``(K,)``, history unchanged.

        Single-token options are read from the next-token distribution; longer ones are fed
        and the cache is cropped back afterwards.
        """
        self.flush()
        if self._next_logp is None:
            raise ValueError(f"{self.label}: no context to predict options from")
        out = np.empty(len(options))
        for k, opt in enumerate(options):
            lp = float(self._next_logp[opt[0]])
            if len(opt) > 1:
                self._make_room(len(opt))
                self.flush()  # after a slide, the kept window
                length, saved = self._cache_len, self._next_logp
                logp = self._forward(opt, None)
                lp += float(logp[:-1].gather(1, torch.tensor(opt[1:], device=logp.device)[:, None]).sum())
                crop(self.cache, length)
                self._next_logp = saved
            out[k] = lp
        return out


def _new_cache(lm: LM):
    from transformers import DynamicCache

    try:
        return DynamicCache(config=lm.model.config)
    except TypeError:
        return DynamicCache()
