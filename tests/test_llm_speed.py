"""Lazy feeding in :class:`cogfit.llm.Session`: the same tables with about half the forward passes.

References run every piece through the model at once (``Session(lazy=False)``, the pre-lazy
path: one forward per fed piece; its tables equalled those of the code before lazy feeding
bit for bit on these models) or recompute each distribution from scratch without a cache.
"""

from __future__ import annotations

import contextlib
import functools
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import cogfit.llm as L
import cogfit.llm._choices as C
import cogfit.llm._play as P
import cogfit.llm._session as S
import cogfit.tasks as T

torch.set_num_threads(1)  # tiny models gain nothing from threads on a shared CPU


@pytest.fixture(scope="module", params=("gpt2", "llama"))
def lm(request, tmp_path_factory):
    path = L.build_tiny_lm(tmp_path_factory.mktemp(request.param), arch=request.param,
                           corpus=L.demo_corpus(30, 20, seed=1))
    return L.load_lm(path, device="cpu")


@pytest.fixture(scope="module")
def texts():
    return L.demo_corpus(3, 12, seed=7)


@contextlib.contextmanager
def eager():
    """``play`` and ``choice_probabilities`` with sessions that run each piece at once."""
    with pytest.MonkeyPatch.context() as m:
        for module in (P, C):
            m.setattr(module, "Session", functools.partial(S.Session, lazy=False))
        yield


_REAL_FORWARD = S.forward


@contextlib.contextmanager
def count_forwards():
    """The session's forward passes, as a list of their new-token counts."""
    calls: list[int] = []

    def counting(lm, ids, **kwargs):
        calls.append(ids.shape[1])
        return _REAL_FORWARD(lm, ids, **kwargs)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(S, "forward", counting)
        yield calls


def _small(lm, max_tokens):
    return L.wrap(lm.model, lm.tokenizer, name=lm.name, max_tokens=max_tokens)


def _names(tr):
    return re.search(r"(?:two options: |lotteries' names are )(\S+) and (\S+?)\.", tr.text).groups()


def _same_tables(lazy: pd.DataFrame, ref: pd.DataFrame) -> None:
    assert list(lazy.columns) == list(ref.columns) and len(lazy) == len(ref) > 0
    floats = [c for c in ref.columns if "prob" in c or "mass" in c]
    pd.testing.assert_frame_equal(lazy.drop(columns=floats + ["nll"], errors="ignore"),
                                  ref.drop(columns=floats + ["nll"], errors="ignore"))
    np.testing.assert_allclose(lazy[floats].to_numpy(float), ref[floats].to_numpy(float), atol=1e-5)
    if "nll" in ref:
        np.testing.assert_allclose(lazy.nll, ref.nll, atol=1e-4)


def _both(fn):
    """``fn()`` with lazy sessions and with eager ones, and the warnings each raised."""
    out = []
    for ctx in (contextlib.nullcontext(), eager()):
        with ctx, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out.append((fn(), sorted(str(w.message) for w in caught)))
    (lazy, w_lazy), (ref, w_ref) = out
    assert w_lazy == w_ref
    return lazy, ref, w_lazy


# --- the same tables ----------------------------------------------------------------------------


@pytest.mark.parametrize("names", [None, ("maybe so", "certainly not")], ids=["letters", "multi-token"])
def test_play_equals_eager_sessions(lm, names):
    if names:
        assert max(len(t) for t in L.option_tokens(lm, names)) > 1
    task = L.bandit_task(lambda s: T.fixed_bandit([0.2, 0.8], 10, seed=s), block_size=4, names=names)
    lazy, ref, _ = _both(lambda: L.play(lm, task, n_participants=2, seed=5, persona={"age": 30},
                                        progress=False))
    _same_tables(lazy, ref)
    assert lazy.attrs["transcripts"] == ref.attrs["transcripts"]
    if names is None:
        assert lazy.choice.nunique() == 2  # both options drawn: the seeded draws really were compared


def test_play_sliding_past_max_tokens_equals_eager(lm):
    small = _small(lm, 120)
    task = L.bandit_task(lambda s: T.fixed_bandit([0.3, 0.7], 24, seed=s), block_size=6)
    lazy, ref, caught = _both(lambda: L.play(small, task, n_participants=1, seed=1, progress=False))
    assert any("sliding" in w for w in caught)
    _same_tables(lazy, ref)
    full = L.play(lm, task, n_participants=1, seed=1, progress=False)
    assert not np.allclose(full.choice_prob_1[-5:], lazy.choice_prob_1[-5:], atol=1e-3)  # it did slide


def test_choice_probabilities_equal_eager_sessions(lm, texts):
    lazy, ref, _ = _both(lambda: L.choice_probabilities(lm, texts, _names, progress=False))
    _same_tables(lazy, ref)
    # and a from-scratch reference: the first response of the first text
    tr = L.as_transcripts(texts[:1])[0]
    head = tr.text[: tr.text.index("<<") + 2]
    ids = L._lm.special_prefix(lm.tokenizer) + L._lm.encode(lm.tokenizer, head)
    with torch.no_grad():
        logp = torch.log_softmax(lm.model(input_ids=torch.tensor([ids])).logits[0, -1].float(), -1)
    opt = [t[0] for t in L.option_tokens(lm, _names(tr))]
    p = torch.softmax(logp[opt], 0).numpy()
    np.testing.assert_allclose(lazy.choice_prob_1.iloc[0], p[0], atol=1e-5)


def test_choice_probabilities_multi_token_and_other_equal_eager(lm):
    text = ("Say it.\nAnswer: <<maybe so>>.\nAnswer: <<certainly not>>.\nAnswer: <<perhaps>>.\n"
            "Answer: <<certainly not>>.\n")
    lazy, ref, caught = _both(lambda: L.choice_probabilities(lm, [text], ["maybe so", "certainly not"],
                                                              other="drop", progress=False))
    assert any("left out" in w for w in caught)
    _same_tables(lazy, ref)
    assert len(lazy) == 3


@pytest.mark.parametrize("overflow", ["slide", "truncate"])
def test_choice_probabilities_past_max_tokens_equal_eager(lm, texts, overflow):
    tokens = L.tokenize(lm.tokenizer, L.as_transcripts(texts[:1])[0])
    small = _small(lm, len(tokens.ids) // 3)
    lazy, ref, caught = _both(lambda: L.choice_probabilities(small, texts, _names, overflow=overflow,
                                                              progress=False))
    assert any(("sliding" if overflow == "slide" else "context limit") in w for w in caught)
    _same_tables(lazy, ref)
    with pytest.raises(ValueError, match="context limit"):
        L.choice_probabilities(small, texts[:1], _names, overflow="error", progress=False)


def test_scored_feed_equals_full_recompute(lm, texts):
    """Pieces fed lazily, scored (one and several tokens) and option log-probs = no cache at all."""
    ids = (L._lm.special_prefix(lm.tokenizer) or [0]) + L._lm.encode(lm.tokenizer, "".join(texts))[:150]
    session = S.Session(lm, ids[:1])
    cuts = [1, 9, 10, 30, 31, 33, 80, 81, 150]
    for k, (a, b) in enumerate(zip(cuts[:-1], cuts[1:])):
        with torch.no_grad():
            logp = torch.log_softmax(lm.model(input_ids=torch.tensor([ids[:b]])).logits[0].float(), -1)
        other = (ids[a] + 1) % len(lm.tokenizer)
        options = [[ids[a]], [other, ids[a]]]
        want = [float(logp[a - 1, ids[a]]), float(logp[a - 1, other])]
        with torch.no_grad():
            extra = lm.model(input_ids=torch.tensor([ids[:a] + [other]])).logits[0, -1].float()
        want[1] += float(torch.log_softmax(extra, -1)[ids[a]])
        np.testing.assert_allclose(session.option_logprobs(options), want, atol=1e-4)
        scored = session.feed(ids[a:b], score=k % 2 == 1)
        if scored is not None:
            np.testing.assert_allclose(scored, logp[a - 1 : b - 1].gather(1, torch.tensor(ids[a:b])[:, None])[:, 0],
                                       atol=1e-5)
        assert session.cached == b == len(session.history)
    np.testing.assert_allclose(session.next_logp, logp[-1], atol=1e-5)
    assert not session.pending


# --- half the forward passes ---------------------------------------------------------------------


def test_play_makes_one_forward_per_trial(lm):
    trials = 12
    task = L.bandit_task(lambda s: T.fixed_bandit([0.2, 0.8], trials, seed=s))
    with count_forwards() as calls:
        L.play(lm, task, n_participants=1, progress=False)
    assert len(calls) == trials
    with eager(), count_forwards() as calls:
        L.play(lm, task, n_participants=1, progress=False)
    assert len(calls) >= 2 * trials


def test_soft_labels_make_one_forward_per_transcript(lm, texts):
    with count_forwards() as calls:
        table = L.choice_probabilities(lm, texts, _names, progress=False)
    assert len(calls) == len(texts) and len(table) > 30  # single-token options: one pass each
    with eager(), count_forwards() as calls:
        L.choice_probabilities(lm, texts, _names, progress=False)
    assert len(calls) >= 2 * len(table)
    text = "Say it.\nAnswer: <<maybe so>>.\nAnswer: <<certainly not>>.\n" * 3
    with count_forwards() as calls:  # multi-token options: context, each option, the response
        L.choice_probabilities(lm, [text], ["maybe so", "certainly not"], progress=False)
    n_multi = sum(len(t) > 1 for t in L.option_tokens(lm, ["maybe so", "certainly not"]))
    assert len(calls) == 6 * (2 + n_multi)


def test_asked_distributions_keep_their_context_across_a_slide(lm, texts):
    """A mark answered after the window slid still gets the context it was made in, and a
    response scored later gets the slid one, as when each is read at once."""
    ids = (L._lm.special_prefix(lm.tokenizer) or [0]) + L._lm.encode(lm.tokenizer, "".join(texts))
    small = _small(lm, 40)
    for cut in (39, 40, 41, 70):  # the response token lands at the limit, and past it
        got, want = S.Session(small, ids[:1]), S.Session(small, ids[:1], lazy=False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for session in (got, want):
                session.feed(ids[1:cut])
            asked = got.ask(ids[cut : cut + 3])
            later = got.feed(ids[cut : cut + 2], score="later")
            got.feed(ids[cut + 2 : cut + 9])
            opts = want.option_logprobs([[t] for t in ids[cut : cut + 3]])
            scored = want.feed(ids[cut : cut + 2], score=True)
        assert len(caught) == 2 and "sliding" in str(caught[0].message)
        np.testing.assert_allclose(got.answer(asked), opts, atol=1e-5)
        np.testing.assert_allclose(got.answer(later), scored, atol=1e-5)
        assert got.slid == want.slid >= 1 and got.history == ids[: cut + 9]


@pytest.mark.parametrize("score", [True, "later"])
def test_scoring_without_context_is_refused(lm, score):
    session = S.Session(lm, [])
    with pytest.raises(ValueError, match="cannot score the first token of a session with no start token"):
        session.feed([5, 6], score=score)
