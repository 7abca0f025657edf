"""Score transcripts as Psych-201 does: teacher-forced NLL of each human response.

``nll`` of a response is ``-sum log p(token | everything before it)`` over exactly the tokens of
the response text (see :mod:`cogfit.llm._segments`), in nats. Sessions that fit the context
are scored in batches of one forward pass each, left-padded with explicit position ids;
longer ones are truncated or slid with a warning (never silently).
"""

from __future__ import annotations

import os
import warnings
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from cogfit.llm._lm import LM, forward
from cogfit.llm._segments import Tokens, Transcript, as_transcripts, tokenize
from cogfit.llm._session import OVERFLOW, Session
from cogfit.llm._store import Store

COLUMNS = ["experiment", "participant", "response", "text", "n_tokens", "nll", "model"]


#: Transcripts per forward pass by device type. CPU: 1, measured (benchmarks/bench_study.py,
#: RESULTS.md "Human-vs-LLM study"): padding sessions of different lengths to one batch cost more
#: than batching saved. GPU: 4, the earlier default, not yet measured on a device.
BATCH_SIZE = {"cpu": 1, "cuda": 4}


def default_batch_size(device: Any) -> int:
    """Default ``batch_size`` of :func:`score_transcripts` on ``device`` (see :data:`BATCH_SIZE`)."""
    return BATCH_SIZE.get(torch.device(device).type, 1)


def score_batch(lm: LM, batch: list[Tokens]) -> list[np.ndarray]:
    """Per-token log-probabilities of each sequence's response tokens (NaN elsewhere).

    Sequences are left-padded to a common length; position ids count real tokens only, so each
    row sees exactly what it would see alone. Only positions that predict a response token are
    projected onto the vocabulary.
    """
    length = max(len(t.ids) for t in batch)
    ids = torch.zeros((len(batch), length), dtype=torch.long)
    mask = torch.zeros((len(batch), length), dtype=torch.long)
    for b, t in enumerate(batch):
        ids[b, length - len(t.ids) :] = torch.from_numpy(t.ids)
        mask[b, length - len(t.ids) :] = 1
    position_ids = (mask.cumsum(1) - 1).clamp(min=0)
    # predicted position j comes from the logits at j - 1
    targets = sorted({length - len(t.ids) + j for t in batch for j in np.flatnonzero(t.response >= 0)})
    keep = torch.tensor(targets, dtype=torch.long) - 1
    logp = forward(lm, ids, keep=keep, attention_mask=mask, position_ids=position_ids)
    tgt = torch.tensor(targets)
    picked = logp.gather(2, ids[:, tgt].to(logp.device)[..., None])[..., 0].cpu().numpy()  # (B, n)
    out = []
    for b, t in enumerate(batch):
        lp = np.full(len(t.ids), np.nan)
        where = np.asarray(targets) - (length - len(t.ids))
        ok = where >= 0
        lp[where[ok]] = picked[b, ok]
        lp[t.response < 0] = np.nan
        out.append(lp)
    return out


def _session_logp(lm: LM, tokens: Tokens, overflow: str, label: str) -> np.ndarray:
    """Token log-probabilities through an incremental session (long transcripts)."""
    session = Session(lm, overflow=overflow, label=label)
    lp = np.full(len(tokens.ids), np.nan)
    bounds = np.flatnonzero(np.diff(tokens.response) != 0) + 1
    for a, b in zip(np.r_[0, bounds], np.r_[bounds, len(tokens.ids)]):
        scored = session.feed(tokens.ids[a:b].tolist(), score=tokens.response[a] >= 0)
        if scored is not None:
            lp[a:b] = scored
    return lp


def _truncate(tokens: Tokens, cut: int, label: str) -> Tokens:
    """The first ``cut`` tokens; a response split by the cut is not scored at all. Warns."""
    beyond = set(tokens.response[cut:][tokens.response[cut:] >= 0].tolist())
    owner = tokens.response[:cut].copy()
    owner[np.isin(owner, list(beyond))] = -1
    warnings.warn(f"{label}: {len(tokens.ids)} tokens exceed the context limit of {cut}; truncated, "
                  f"{len(beyond)} of {len(tokens.responses)} responses not scored (use overflow='slide' "
                  "to score them with a sliding window)", stacklevel=3)
    return Tokens(tokens.ids[:cut], owner, tokens.responses)


def cut_chars(tr: Transcript, max_chars: int) -> tuple[Transcript, int]:
    """``tr`` cut after ``max_chars`` characters, and how many responses the cut removed.

    A response whose ``<<...>>`` straddles the cut is removed with everything after it (the
    text ends right before its ``<<``), so no partial response is ever scored.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    if len(tr.text) <= max_chars:
        return tr, 0
    text = tr.text[:max_chars]
    opened, closed = text.rfind("<<"), text.rfind(">>")
    if opened > closed:
        text = text[:opened]
    total = tr.text.count("<<")
    return tr._replace(text=text), total - text.count("<<")


def _rows(lm: LM, tr: Transcript, tokens: Tokens, lp: np.ndarray) -> list[dict[str, Any]]:
    rows = []
    for r in tokens.responses:
        sel = tokens.response == r.index
        if not sel.any():  # cut off by truncation
            continue
        rows.append({"experiment": tr.experiment, "participant": tr.participant, "response": r.index,
                     "text": r.text, "n_tokens": int(sel.sum()), "nll": float(-lp[sel].sum()),
                     "model": lm.name})
    return rows


def score_transcripts(
    lm: LM,
    transcripts: Any,
    *,
    chat_template: bool = False,
    batch_size: int | None = None,
    overflow: str = "truncate",
    max_chars: int | None = None,
    out: str | os.PathLike | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Teacher-forced negative log-likelihood of every human response, one row per response.

    Parameters
    ----------
    lm
        From :func:`cogfit.llm.load_lm`.
    transcripts
        Strings, :class:`cogfit.psych201.Participant` objects, mappings or a DataFrame with
        ``text``, ``experiment``, ``participant`` (see :func:`as_transcripts`).
    chat_template
        Render the model's chat template with responses as assistant turns (markers dropped)
        instead of the raw transcript (default, as Psych-201 scores base models).
    batch_size
        Transcripts per forward pass (sorted by length to limit padding). Default
        (``None``): :func:`default_batch_size` of the model's device (1 on a CPU, 4 on a GPU).
    overflow
        Sessions longer than ``lm.max_tokens`` (Psych-201: 32k): ``"truncate"`` scores the
        responses inside the first window and warns how many were left out; ``"slide"`` scores
        all responses with a sliding window (KV cache restarted from the last half window);
        ``"error"`` raises.
    max_chars
        Cut each transcript after this many characters before tokenizing (Psych-201's protocol
        cuts by characters); a response straddling the cut is not scored, and the number of
        responses cut off is given in one warning. Applied before ``overflow``.
    out
        JSONL file the rows are appended to after each participant; rerunning with the same
        file skips finished participants.

    Returns
    -------
    DataFrame with columns ``experiment, participant, response`` (0-based index), ``text``,
    ``n_tokens``, ``nll`` (nats, summed over the response's tokens), ``model``.
    Aggregate with :func:`summarize`.
    """
    if overflow not in OVERFLOW:
        raise ValueError(f"overflow must be one of {OVERFLOW}, got {overflow!r}")
    transcripts = as_transcripts(transcripts)
    batch_size = batch_size or default_batch_size(lm.device)
    if max_chars is not None:
        cut = [cut_chars(t, max_chars) for t in transcripts]
        transcripts, lost = [t for t, _ in cut], sum(n for _, n in cut)
        if lost:
            warnings.warn(f"max_chars={max_chars}: {lost} responses of {sum(n > 0 for _, n in cut)} "
                          "transcripts lie beyond the cut and are not scored", stacklevel=2)
    store = Store(out, {"task": "score", "model": lm.name, "chat_template": chat_template,
                        "overflow": overflow, "max_tokens": lm.max_tokens, "max_chars": max_chars})
    todo = [t for t in transcripts if not store.has(t.experiment, t.participant)]
    toks = [tokenize(lm.tokenizer, t, chat_template=chat_template) for t in todo]
    empty = [t.label() for t, tk in zip(todo, toks) if not tk.responses]
    if empty:                   # e.g. a character cut before the first response: nothing to score
        warnings.warn(f"{len(empty)} transcripts have no response to score ({', '.join(empty[:3])}"
                      f"{', ...' if len(empty) > 3 else ''}); they get no rows", stacklevel=2)
        keep = [i for i, tk in enumerate(toks) if tk.responses]
        todo, toks = [todo[i] for i in keep], [toks[i] for i in keep]
    long = [i for i, tk in enumerate(toks) if len(tk.ids) > lm.max_tokens]
    if long and overflow == "error":
        t = todo[long[0]]
        raise ValueError(f"{t.label()}: {len(toks[long[0]].ids)} tokens exceed the context limit of "
                         f"{lm.max_tokens}")
    if overflow == "truncate":
        for i in long:
            toks[i] = _truncate(toks[i], lm.max_tokens, todo[i].label())
    order = sorted(range(len(todo)), key=lambda i: -len(toks[i].ids))
    short = [i for i in order if overflow != "slide" or i not in long]
    bar = tqdm(total=len(todo), disable=not progress, desc=f"scoring with {lm.name}")
    for s in range(0, len(short), batch_size):
        idx = short[s : s + batch_size]
        for i, lp in zip(idx, score_batch(lm, [toks[i] for i in idx])):
            store.add(todo[i].experiment, todo[i].participant, _rows(lm, todo[i], toks[i], lp))
        bar.update(len(idx))
    for i in (long if overflow == "slide" else []):
        lp = _session_logp(lm, toks[i], "slide", todo[i].label())
        store.add(todo[i].experiment, todo[i].participant, _rows(lm, todo[i], toks[i], lp))
        bar.update(1)
    bar.close()
    return _in_order(store.table(COLUMNS), transcripts)


def _in_order(table: pd.DataFrame, transcripts: list[Transcript]) -> pd.DataFrame:
    if table.empty:
        return table
    rank = {(str(t.experiment), str(t.participant)): i for i, t in enumerate(transcripts)}
    key = [rank.get((str(e), str(p)), len(rank)) for e, p in zip(table["experiment"], table["participant"])]
    return (table.assign(_o=key).sort_values(["_o", "response"], kind="stable")
            .drop(columns="_o").reset_index(drop=True))


def summarize(scores: pd.DataFrame, by: str = "participant") -> pd.DataFrame:
    """Per-participant (``by="participant"``) or per-experiment totals of :func:`score_transcripts`.

    Columns: ``n_responses``, ``n_tokens``, ``nll`` (sum), ``nll_mean`` (per response),
    ``nll_sd`` (over responses, ddof=1).
    """
    keys = {"participant": ["experiment", "participant"], "experiment": ["experiment"]}
    if by not in keys:
        raise ValueError(f"by must be 'participant' or 'experiment', got {by!r}")
    g = scores.groupby(keys[by], sort=False)
    return g.agg(n_responses=("nll", "size"), n_tokens=("n_tokens", "sum"), nll=("nll", "sum"),
                 nll_mean=("nll", "mean"), nll_sd=("nll", "std")).reset_index()


class CohensD(NamedTuple):
    """Effect size of post-training on response NLL.

    ``d`` is the mean over experiments of ``per_experiment.d``; positive means the
    post-trained model assigns *lower* probability to human responses (less human-like).
    """

    d: float
    per_experiment: pd.DataFrame


def cohens_d(base: pd.DataFrame, post: pd.DataFrame) -> CohensD:
    """Psych-201's comparison of a base and a post-trained model on the same responses.

    Per experiment: ``(mean NLL post - mean NLL base) / sqrt((sd_base^2 + sd_post^2) / 2)``,
    means and SDs (ddof=1) over responses; then averaged over experiments. Both tables come
    from :func:`score_transcripts` on the same transcripts; differing response sets raise.
    """
    key = ["experiment", "participant", "response"]
    for name, t in (("base", base), ("post", post)):
        if t[key].duplicated().any():
            raise ValueError(f"{name}: duplicated (experiment, participant, response) rows")
    kb = set(map(tuple, base[key].astype(str).to_numpy()))
    kp = set(map(tuple, post[key].astype(str).to_numpy()))
    if kb != kp:
        only = sorted(kb ^ kp)[:3]
        raise ValueError(f"base and post scored different responses ({len(kb ^ kp)} differ, e.g. {only}); "
                         "score the same transcripts with the same overflow setting")
    rows = []
    for exp, b in base.groupby("experiment", sort=True):
        p = post[post["experiment"] == exp]
        sd = np.sqrt((b["nll"].var(ddof=1) + p["nll"].var(ddof=1)) / 2)
        rows.append({"experiment": exp, "n_responses": len(b), "nll_base": b["nll"].mean(),
                     "nll_post": p["nll"].mean(), "sd_base": b["nll"].std(ddof=1),
                     "sd_post": p["nll"].std(ddof=1),
                     "d": (p["nll"].mean() - b["nll"].mean()) / sd})
    table = pd.DataFrame(rows)
    return CohensD(float(table["d"].mean()), table)
