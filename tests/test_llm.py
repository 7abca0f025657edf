"""cogfit.llm against slow, independent references, on tiny GPT-2 and Llama models built offline."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

import cogfit.llm as L
import cogfit.tasks as T
from cogfit.psych201 import Participant, extract_responses, parse_participant

ARCHS = ("gpt2", "llama")

# Tiny models gain nothing from threads, and on a shared 2-core CI machine OpenMP spin-waiting
# makes a forward pass 50x slower (measured 0.48 s vs 0.009 s); torch is only used here.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_lms")
    return {a: L.build_tiny_lm(root / a, arch=a, corpus=L.demo_corpus(30, 20, seed=1)) for a in ARCHS}


@pytest.fixture(scope="session", params=ARCHS)
def lm(request, model_dirs):
    return L.load_lm(model_dirs[request.param], device="cpu")


@pytest.fixture(scope="session")
def texts():
    return L.demo_corpus(4, 6, seed=7)


# --- independent references ---------------------------------------------------------------


def reference_ids(tok, text):
    """Token ids and response owner, built directly: context and responses tokenized apart."""
    parts = re.split(r"(?<=<<)(.*?)(?=>>)", text, flags=re.DOTALL)  # context, resp, context, ...
    lead = tok("a")["input_ids"][: -len(tok("a", add_special_tokens=False)["input_ids"])]
    ids, owner = list(lead), [-1] * len(lead)
    for k, part in enumerate(parts):
        piece = tok(part, add_special_tokens=False)["input_ids"]
        ids += piece
        owner += [k // 2 if k % 2 else -1] * len(piece)
    return ids, owner


def slow_logprob(model, ids, target):
    """log p(target | ids), one full forward without any cache."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, -1].float()
    return float(torch.log_softmax(logits, -1)[target])


def slow_response_nll(lm, text):
    ids, owner = reference_ids(lm.tokenizer, text)
    nll = {}
    for j in range(1, len(ids)):
        if owner[j] >= 0:
            nll[owner[j]] = nll.get(owner[j], 0.0) - slow_logprob(lm.model, ids[:j], ids[j])
    return [nll[i] for i in sorted(nll)]


# --- tokenization ---------------------------------------------------------------------------


def test_tiny_tokenizers_merge_across_markers(model_dirs):
    """The fixtures really exercise merges across << and >> in natural tokenization."""
    text = "You pressed <<R>> and received a food reward.\nYou choose <<S>>."
    for arch in ARCHS:
        tok = L.load_lm(model_dirs[arch]).tokenizer
        pieces = tok.convert_ids_to_tokens(tok(text, add_special_tokens=False)["input_ids"])
        straddle = [p for p in pieces if re.search(r"[<>]", p) and re.search(r"[A-Za-z.]", p.strip("Ġ▁"))]
        assert straddle, (arch, pieces)


def test_scored_tokens_are_exactly_the_responses(lm, texts):
    tok = lm.tokenizer
    for i, text in enumerate(texts):
        tokens = L.tokenize(tok, L.Transcript("e", i, text))
        ref_ids, ref_owner = reference_ids(tok, text)
        assert tokens.ids.tolist() == ref_ids and tokens.response.tolist() == ref_owner
        for r in extract_responses(text):
            mine = tokens.ids[tokens.response == r.index].tolist()
            assert tok.decode(mine) == r.text
            assert mine == tok(r.text, add_special_tokens=False)["input_ids"]


# --- scoring --------------------------------------------------------------------------------


def test_score_matches_token_by_token_reference(lm, texts):
    scores = L.score_transcripts(lm, texts[:2], progress=False)
    for i, text in enumerate(texts[:2]):
        ref = slow_response_nll(lm, text)
        mine = scores[scores.participant == i].sort_values("response")
        np.testing.assert_allclose(mine.nll, ref, rtol=1e-5, atol=1e-4)
        assert mine.text.tolist() == [r.text for r in extract_responses(text)]
    assert (scores.nll > 0).all() and scores.model.eq(lm.name).all()


def test_batched_left_padding_matches_one_at_a_time(lm, texts):
    lengths = {len(t) for t in texts}
    assert len(lengths) > 1  # padding really happens
    one = L.score_transcripts(lm, texts, batch_size=1, progress=False)
    many = L.score_transcripts(lm, texts, batch_size=4, progress=False)
    np.testing.assert_allclose(many.nll, one.nll, atol=1e-5)
    # without position ids left padding would shift positions: the check above would then fail
    tokens = [L.tokenize(lm.tokenizer, t) for t in L.as_transcripts(texts)]
    ref = L._score.score_batch(lm, tokens[:1])[0]
    both = L._score.score_batch(lm, tokens)[0]
    np.testing.assert_allclose(both, ref, atol=1e-5)


def test_a_transcript_cut_before_its_first_response_gets_no_rows(lm, texts):
    a, b = L.as_transcripts(texts[:2])
    cut = b.text.index(">>") + 2                                 # b keeps its first response
    a = a._replace(text="x" * cut + a.text)                      # a's first one lies beyond the cut
    with pytest.warns(UserWarning, match="1 transcripts have no response to score"):
        scores = L.score_transcripts(lm, [a, b], max_chars=cut, progress=False)
    assert set(scores.participant) == {b.participant} and len(scores) == 1


def test_summaries(lm, texts):
    scores = L.score_transcripts(lm, texts, progress=False)
    per = L.summarize(scores, "participant")
    assert len(per) == len(texts)
    np.testing.assert_allclose(per.nll, scores.groupby("participant").nll.sum().to_numpy())
    exp = L.summarize(scores, "experiment")
    assert exp.n_responses.item() == len(scores)


def test_overflow_truncate_slide_error(lm, texts):
    full = L.score_transcripts(lm, texts[:2], progress=False)
    tokens = L.tokenize(lm.tokenizer, L.as_transcripts(texts[:1])[0])
    cap = 2 * len(tokens.ids) // 3
    small = L.wrap(lm.model, lm.tokenizer, name=lm.name, max_tokens=cap)
    with pytest.warns(UserWarning, match="truncated"):
        cut = L.score_transcripts(small, texts[:2], overflow="truncate", progress=False)
    inside = set(tokens.response[:cap].tolist()) - set(tokens.response[cap:].tolist()) - {-1}
    got = set(cut[cut.participant == 0].response)
    assert got == inside and len(got) < len(tokens.responses)  # a response cut in two is left out
    merged = cut.merge(full, on=["participant", "response"])
    np.testing.assert_allclose(merged.nll_x, merged.nll_y, atol=1e-4)  # same context, same score
    with pytest.warns(UserWarning, match="sliding"):
        slid = L.score_transcripts(small, texts[:2], overflow="slide", progress=False)
    assert len(slid) == len(full)
    early = slid.response.isin(inside) & (slid.participant == 0)  # wholly in the first window
    assert early.sum() >= 2
    np.testing.assert_allclose(slid.nll[early], full.nll[early], atol=1e-4)
    later = (slid.participant == 0) & ~slid.response.isin(inside)
    assert not np.allclose(slid.nll[later], full.nll[later], atol=1e-3)  # shorter context
    with pytest.raises(ValueError, match="context limit"):
        L.score_transcripts(small, texts[:1], overflow="error", progress=False)


def test_chat_template(lm, texts):
    scores = L.score_transcripts(lm, texts[:1], chat_template=True, progress=False)
    plain = L.score_transcripts(lm, texts[:1], progress=False)
    assert scores.text.tolist() == plain.text.tolist()
    assert np.isfinite(scores.nll).all() and not np.allclose(scores.nll, plain.nll)
    pieces = L._segments.chat_pieces(lm.tokenizer, texts[0], "t")
    rendered = "".join(p for p, _ in pieces)
    assert "<<" not in rendered and rendered.count("<|im_start|>assistant") == len(plain)
    assert [p for p, i in pieces if i >= 0] == plain.text.tolist()


def test_cohens_d_formula():
    rng = np.random.default_rng(0)
    rows = []
    for exp, shift in (("a", 0.5), ("b", -0.2)):
        for r in range(50):
            rows.append({"experiment": exp, "participant": r // 10, "response": r % 10,
                         "b": rng.gamma(2.0), "p": rng.gamma(2.0) + shift})
    t = pd.DataFrame(rows)
    base, post = t.assign(nll=t.b), t.assign(nll=t.p)
    res = L.cohens_d(base, post)
    ds = []
    for exp in ("a", "b"):
        b, p = t[t.experiment == exp].b.to_numpy(), t[t.experiment == exp].p.to_numpy()
        ds.append((p.mean() - b.mean()) / np.sqrt((b.var(ddof=1) + p.var(ddof=1)) / 2))
    np.testing.assert_allclose(res.per_experiment.d, ds)
    assert res.d == pytest.approx(np.mean(ds))
    assert L.cohens_d(post, base).d == pytest.approx(-res.d)
    with pytest.raises(ValueError, match="different responses"):
        L.cohens_d(base, post.iloc[1:])


# --- choice probabilities and KV cache ------------------------------------------------------


def _names(tr):
    return re.search(r"(?:two options: |lotteries' names are )(\S+) and (\S+?)\.", tr.text).groups()


def test_kv_cache_session_matches_full_recompute(lm, texts):
    tokens = L.tokenize(lm.tokenizer, L.as_transcripts(texts[1:2])[0])
    ids = tokens.ids.tolist()
    session = L.Session(lm, ids[:1])
    bounds = np.flatnonzero(np.diff(tokens.response) != 0) + 1
    cached = np.concatenate([session.feed(ids[a:b], score=True) for a, b in
                             zip(np.r_[1, bounds], np.r_[bounds, len(ids)])])
    with torch.no_grad():
        logits = lm.model(input_ids=torch.tensor([ids])).logits[0].float()
    full = torch.log_softmax(logits[:-1], -1).gather(1, torch.tensor(ids[1:])[:, None])[:, 0].numpy()
    np.testing.assert_allclose(cached, full, atol=1e-5)


def test_choice_probabilities_against_reference(lm, texts):
    table = L.choice_probabilities(lm, texts[:2], _names, progress=False)
    probs = table[["choice_prob_1", "choice_prob_2"]].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0)
    assert ((table.option_mass > 0) & (table.option_mass <= 1)).all()
    assert table.population.eq(f"llm:{lm.name}").all()
    scores = L.score_transcripts(lm, texts[:2], progress=False)
    np.testing.assert_allclose(table.nll, scores.nll, atol=1e-4)
    for i, text in enumerate(texts[:2]):
        ids, owner = reference_ids(lm.tokenizer, text)
        a, b = _names(L.Transcript("e", i, text))
        opt = [lm.tokenizer(n, add_special_tokens=False)["input_ids"] for n in (a, b)]
        rows = table[table.subject == i]
        for r, row in zip(extract_responses(text), rows.itertuples()):
            start = owner.index(r.index)
            lp = np.array([slow_logprob(lm.model, ids[:start], o[0]) for o in opt])
            np.testing.assert_allclose(row.option_mass, np.exp(lp).sum(), rtol=1e-4)
            np.testing.assert_allclose(row.choice_prob_1, np.exp(lp[0]) / np.exp(lp).sum(), atol=1e-5)
            assert row.choice == (a, b).index(r.text)


def test_real_psych201_sessions_with_adapter(lm):
    import cogfit.datasets as D
    from cogfit.psych201 import read_jsonl

    people = read_jsonl(D.path("psych201/dezfouli2019"))[:2]
    heads = []
    for p in people:  # first 8 trials of each session keep the test fast
        lines = p.text.split("\n")
        last = [k for k, line in enumerate(lines) if "<<" in line][7]
        heads.append(p._replace(text="\n".join(lines[: last + 1]) + "\n", rts=None))
    table = L.choice_probabilities(lm, heads, adapter="dezfouli2019", progress=False)
    human = pd.concat([pd.DataFrame(parse_participant(p, "dezfouli2019")) for p in heads], ignore_index=True)
    assert len(table) == 16
    np.testing.assert_array_equal(table.choice, human.choice)
    np.testing.assert_array_equal(table.reward, human.reward)
    assert table.subject.tolist() == human.subject.tolist()
    assert (table.human_population == human.population).all()
    scores = L.score_transcripts(lm, heads, progress=False)
    np.testing.assert_allclose(table.nll, scores.nll, atol=1e-4)


def test_multi_token_options(lm):
    text = "Say it.\nAnswer: <<maybe so>>.\nAnswer: <<certainly not>>.\n"
    opts = ["maybe so", "certainly not"]
    table = L.choice_probabilities(lm, [text], opts, progress=False)
    ids, owner = reference_ids(lm.tokenizer, text)
    toks = [lm.tokenizer(o, add_special_tokens=False)["input_ids"] for o in opts]
    assert max(map(len, toks)) > 1
    for r, row in zip(extract_responses(text), table.itertuples()):
        start = owner.index(r.index)
        lp = [sum(slow_logprob(lm.model, ids[:start] + o[:k], o[k]) for k in range(len(o))) for o in toks]
        np.testing.assert_allclose(row.choice_prob_1, np.exp(lp[0]) / np.exp(lp).sum(), atol=1e-5)
        np.testing.assert_allclose(row.option_mass, np.exp(lp).sum(), rtol=1e-4)


def test_choice_errors_name_participant_and_line(lm, texts):
    with pytest.raises(ValueError, match=r"participant 0, response 0 \(line \d+\)"):
        L.choice_probabilities(lm, texts[:1], ["Q1", "Q2"], progress=False)
    with pytest.raises(ValueError, match="prefix"):
        L.option_tokens(lm, ["A", "AB"] if len(lm.tokenizer("AB", add_special_tokens=False)["input_ids"]) > 1
                        else ["A", "A" + "A" * 8])
    with pytest.warns(UserWarning, match="left out"):
        t = L.choice_probabilities(lm, texts[:1], lambda tr: [_names(tr)[0], "ZZZ"], other="drop",
                                   progress=False)
    assert t.trial.tolist() == list(range(len(t))) and (t.choice == 0).all()


def test_resume_after_interruption(lm, texts, tmp_path):
    path = tmp_path / "scores.jsonl"
    full = L.score_transcripts(lm, texts, progress=False)
    L.score_transcripts(lm, texts[:2], out=path, progress=False)
    with open(path, "a") as f:
        f.write('{"key": ["transcripts", 2], "rows": [{"nl')  # a write cut short
    with pytest.warns(UserWarning, match="half-written"):
        resumed = L.score_transcripts(lm, texts, out=path, progress=False)
    pd.testing.assert_frame_equal(resumed, full, check_dtype=False)
    lines = path.read_text().splitlines()
    assert len(lines) == 1 + len(texts) and all(json.loads(x) for x in lines)
    with pytest.raises(ValueError, match="other settings"):
        L.score_transcripts(lm, texts, out=path, chat_template=True, progress=False)


# --- closed-loop play -----------------------------------------------------------------------


def _bandit(n=6):
    return L.bandit_task(lambda s: T.fixed_bandit([0.2, 0.8], n, seed=s), block_size=3)


def test_play_bandit_is_seeded_and_consistent(lm):
    a = L.play(lm, _bandit(), n_participants=2, seed=3, persona={"age": 34}, progress=False)
    b = L.play(lm, _bandit(), n_participants=2, seed=3, persona={"age": 34}, progress=False)
    pd.testing.assert_frame_equal(a, b)
    assert a.population.eq(f"llm:{lm.name}").all() and len(a) == 12
    c = L.play(lm, _bandit(), n_participants=2, seed=4, progress=False)
    assert not a[["option_a", "choice"]].equals(c[["option_a", "choice"]])
    for i in range(2):
        rows = a[a.subject == f"{lm.name}/{i}"]
        env = T.fixed_bandit([0.2, 0.8], 6, seed=L.participant_seed(3, i))
        np.testing.assert_array_equal(rows.reward, env.payoffs[np.arange(6), rows.choice])
        text = a.attrs["transcripts"][f"{lm.name}/{i}"]
        assert text.startswith("Interviewer: What is your age?\nInterviewee: 34\n\n")
        # the transcript reads back as a human dezfouli2019 session with the same choices
        parsed = pd.DataFrame(parse_participant(Participant("dezfouli2019", i, text, fields={"diagnosis": "llm"}),
                                               "dezfouli2019"))
        np.testing.assert_array_equal(parsed.choice, rows.choice)
        np.testing.assert_array_equal(parsed.reward, rows.reward)
        # closed-loop probabilities (KV cache across trials) = re-reading the finished transcript
        again = L.choice_probabilities(lm, [text], [rows.option_a.iloc[0], rows.option_b.iloc[0]],
                                       progress=False)
        np.testing.assert_allclose(again.choice_prob_1, rows.choice_prob_1, atol=1e-5)
        joined = L.choice_probabilities(lm, [{"experiment": "dezfouli2019", "participant": i, "text": text,
                                              "diagnosis": "none"}], adapter="dezfouli2019", progress=False)
        np.testing.assert_allclose(joined.choice_prob_2, rows.choice_prob_2, atol=1e-5)
        np.testing.assert_array_equal(joined.block, rows.block)
        assert joined.human_population.eq("none").all()
        assert (joined.population.to_numpy() == rows.population.to_numpy()).all()


def test_play_temperature_zero_is_argmax(lm):
    t = L.play(lm, _bandit(), n_participants=1, temperature=0.0, progress=False)
    best = np.where(t.choice_prob_2 > t.choice_prob_1, 1, 0)
    np.testing.assert_array_equal(t.choice, best)


def test_play_lotteries_and_twostep(lm, tmp_path):
    design = pd.DataFrame({"x_a_1": [10.0, -5], "x_a_2": [-3.0, 20], "p_a_1": 0.5, "p_a_2": 0.5,
                           "x_b_1": [4.0, 6], "x_b_2": [2.0, 1], "p_b_1": 0.5, "p_b_2": 0.5})
    lot = L.play(lm, L.lottery_task(design), n_participants=2, progress=False)
    assert len(lot) == 4 and {"x_a_1", "p_b_2", "choice", "choice_prob_2", "option_mass"} <= set(lot.columns)
    text = lot.attrs["transcripts"][f"{lm.name}/0"]
    parsed = pd.DataFrame(parse_participant(Participant("spektor2024lossaversion/exp1.csv", 0, text),
                                            "spektor2024lossaversion"))
    np.testing.assert_array_equal(parsed.choice, lot.choice[:2])
    np.testing.assert_allclose(parsed.x_a_1, design.x_a_1)
    with pytest.raises(ValueError, match="not 1"):
        L.lottery_task(design.assign(p_a_1=0.7))
    two = L.play(lm, L.twostep_task(lambda s: T.TwoStep(4, seed=s)), n_participants=1, seed=2,
                 out=tmp_path / "ts.jsonl", progress=False)
    assert {"choice", "state2", "choice2", "reward", "choice2_prob_1", "choice2_option_mass"} <= set(two.columns)
    env = T.TwoStep(4, seed=L.participant_seed(2, 0))
    expected_state = np.where(env.common, two.choice, 1 - two.choice)
    np.testing.assert_array_equal(two.state2, expected_state)
    again = L.play(lm, L.twostep_task(lambda s: T.TwoStep(4, seed=s)), n_participants=1, seed=2,
                   out=tmp_path / "ts.jsonl", progress=False)  # resumed: nothing replayed
    assert again.attrs["transcripts"] == {}
    pd.testing.assert_frame_equal(again.drop(columns=[]), two, check_dtype=False)


# --- packaging ------------------------------------------------------------------------------


def test_core_imports_without_torch_and_clear_error_without_transformers():
    code = (
        "import sys, cogfit, cogfit.psych201, cogfit.tasks\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
        "sys.modules['transformers'] = None\n"
        "try:\n    import cogfit.llm\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install cogfit[llm]" in out.stdout


def test_device_and_dtype_choice():
    assert L.pick_dtype(torch.device("cuda")) == torch.bfloat16
    assert L.pick_dtype(torch.device("cpu")) == torch.float32
    assert L.pick_dtype(torch.device("cpu"), "bf16") == torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype"):
        L.pick_dtype(torch.device("cpu"), "int3")
    assert L.pick_device("cpu").type == "cpu"
    assert L.pick_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_resume_keys_from_a_table_with_numpy_ids(lm, texts, tmp_path):
    table = pd.DataFrame({"experiment": "e", "participant": np.arange(3, dtype=np.int64), "text": texts[:3]})
    first = L.score_transcripts(lm, table.iloc[:2], out=tmp_path / "s.jsonl", progress=False)
    calls = []
    real = L._score.score_batch
    try:
        L._score.score_batch = lambda lm_, batch: calls.append(len(batch)) or real(lm_, batch)
        both = L.score_transcripts(lm, table, out=tmp_path / "s.jsonl", progress=False)
    finally:
        L._score.score_batch = real
    assert calls == [1]  # only the third participant was scored again
    pd.testing.assert_frame_equal(both.iloc[: len(first)], first, check_dtype=False)
