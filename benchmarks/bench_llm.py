"""Benchmarks for cogfit.llm on the CPU (a script, not a test).

Three parts, each printing a JSON line (and writing all of them with ``--out``):

``score``
    Teacher-forced scoring (:func:`cogfit.llm.score_transcripts`) of synthetic Psych-201-style
    sessions: tokens per second with batch size 1 and with left-padded batches.
``cache``
    Closed-loop cost of a T-trial bandit session: an incremental :class:`cogfit.llm.Session`
    that keeps the KV cache (forward tokens ~ session length, O(T)) against re-reading the
    whole session at every trial (O(T^2)), as forward tokens and seconds for several T, and
    the largest difference between the two sets of choice probabilities.
``real``
    Response NLL and choice probabilities of the first trials of a few real dezfouli2019
    sessions (needs the data mirror: ``COGFIT_DATA_MIRROR``), as a smoke test of the whole path.
``cohen``
    Psych-201's Cohen's d between ``--model`` (base) and ``--post-model`` (post-trained) on the
    first ``--trials`` trials of ``--people`` real sessions of dezfouli2019 and
    spektor2024lossaversion (two experiments, averaged).

The model is a tiny Llama built offline (``--width``, ``--layers``); point ``--model`` at a real
model folder or hub name to measure that instead.

Usage::

    python benchmarks/bench_llm.py score cache [--model PATH] [--out bench_llm.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

import numpy as np
import torch

import cogfit.llm as L
import cogfit.tasks as T
from cogfit.llm._lm import encode


def bench_score(lm, *, sessions: int, trials: int, batches: tuple[int, ...] = (1, 4)) -> dict:
    texts = L.demo_corpus(sessions, trials, seed=3)
    n_tokens = sum(len(L.tokenize(lm.tokenizer, t).ids) for t in L.as_transcripts(texts))
    out = {"part": "score", "model": lm.name, "sessions": sessions, "tokens": n_tokens}
    L.score_transcripts(lm, texts[:1], progress=False)
    for batch in batches:
        t0 = time.perf_counter()
        L.score_transcripts(lm, texts, batch_size=batch, progress=False)
        out[f"tokens_per_s_batch{batch}"] = n_tokens / (time.perf_counter() - t0)
    return out


def _recompute_probs(lm, text_pieces, opt_ids):
    """Option probabilities re-reading the whole session at every decision (no cache)."""
    ids, probs, tokens = list(L._lm.special_prefix(lm.tokenizer)), [], 0
    for piece, chosen in text_pieces:
        ids += encode(lm.tokenizer, piece)
        logp = L._lm.forward(lm, torch.tensor([ids]), keep=torch.tensor([len(ids) - 1]))[0, -1]
        tokens += len(ids)
        lp = np.array([float(logp[o[0]]) for o in opt_ids])
        probs.append(np.exp(lp[0]) / np.exp(lp).sum())
        ids += opt_ids[chosen]
    return np.array(probs), tokens


def bench_cache(lm, *, lengths: list[int]) -> list[dict]:
    rows = []
    for n in lengths:
        task = L.bandit_task(lambda s, n=n: T.fixed_bandit([0.3, 0.7], n, seed=s), names=("L", "R"))
        t0 = time.perf_counter()
        played = L.play(lm, task, n_participants=1, seed=0, progress=False)
        cached_s = time.perf_counter() - t0
        text = played.attrs["transcripts"][f"{lm.name}/0"]
        responses = L.tokenize(lm.tokenizer, L.Transcript("b", 0, text))
        cached_tokens = len(responses.ids)
        # the same session re-read from scratch at every decision
        from cogfit.llm._segments import plain_pieces

        pieces = plain_pieces(text)
        decisions = [(pieces[k][0], ("L", "R").index(pieces[k + 1][0]))
                     for k in range(0, len(pieces) - 1, 2)]
        t0 = time.perf_counter()
        probs, full_tokens = _recompute_probs(lm, decisions, [encode(lm.tokenizer, x) for x in ("L", "R")])
        full_s = time.perf_counter() - t0
        rows.append({"part": "cache", "model": lm.name, "trials": n, "cached_forward_tokens": cached_tokens,
                     "recompute_forward_tokens": full_tokens, "cached_s": cached_s, "recompute_s": full_s,
                     "max_prob_difference": float(np.abs(probs - played.choice_prob_1.to_numpy()).max())})
    return rows


def bench_real(lm, *, people: int, trials: int) -> dict:
    heads = _heads("dezfouli2019", people, trials)
    t0 = time.perf_counter()
    table = L.choice_probabilities(lm, heads, adapter="dezfouli2019", progress=False)
    return {"part": "real", "model": lm.name, "participants": people, "trials": len(table),
            "seconds": time.perf_counter() - t0, "mean_nll": float(table.nll.mean()),
            "mean_option_mass": float(table.option_mass.mean()),
            "mean_prob_of_human_choice": float(np.where(table.choice == 1, table.choice_prob_2,
                                                        table.choice_prob_1).mean())}


def _heads(experiment: str, people: int, trials: int):
    import cogfit.datasets as D
    from cogfit.psych201 import read_jsonl

    heads = []
    for p in read_jsonl(D.path(f"psych201/{experiment}"))[:people]:
        lines = p.text.split("\n")
        last = [k for k, line in enumerate(lines) if "<<" in line][trials - 1]
        heads.append(p._replace(text="\n".join(lines[: last + 1]) + "\n", rts=None))
    return heads


def bench_cohen(base, post, *, people: int, trials: int) -> dict:
    heads = _heads("dezfouli2019", people, trials) + _heads("spektor2024lossaversion", people, trials)
    t0 = time.perf_counter()
    sb = L.score_transcripts(base, heads, progress=False)
    sp = L.score_transcripts(post, heads, progress=False)
    d = L.cohens_d(sb, sp)
    return {"part": "cohen", "base": base.name, "post": post.name, "participants": 2 * people,
            "responses": len(sb), "seconds": time.perf_counter() - t0, "d": d.d,
            "per_experiment": d.per_experiment[["experiment", "nll_base", "nll_post", "d"]].to_dict("records")}


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("parts", nargs="*", default=["score", "cache"], choices=["score", "cache", "real", "cohen"])
    ap.add_argument("--model", default=None, help="model folder or hub name (default: a tiny Llama)")
    ap.add_argument("--gguf", default=None, help="GGUF file inside --model")
    ap.add_argument("--post-model", default=None, help="post-trained model for 'cohen' (default: tiny, trained)")
    ap.add_argument("--post-gguf", default=None)
    ap.add_argument("--people", type=int, default=3)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--lengths", type=int, nargs="+", default=[25, 50, 100, 200])
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        path = args.model or L.build_tiny_lm(f"{tmp}/lm", arch="llama", width=args.width, layers=args.layers,
                                             max_positions=32_768)
        lm = L.load_lm(path, device="cpu", **({"gguf_file": args.gguf} if args.gguf else {}))
        n_params = sum(p.numel() for p in lm.model.parameters())
        print(json.dumps({"model": lm.name, "parameters": n_params, "threads": torch.get_num_threads()}))
        for part in args.parts:
            if part == "score":
                res = [bench_score(lm, sessions=args.sessions, trials=args.trials)]
            elif part == "cache":
                res = bench_cache(lm, lengths=args.lengths)
            elif part == "real":
                res = [bench_real(lm, people=args.people, trials=40)]
            else:
                post_path = args.post_model or L.build_tiny_lm(
                    f"{tmp}/post", arch="llama", width=args.width, layers=args.layers, max_positions=32_768,
                    train_steps=200)
                post = L.load_lm(post_path, device="cpu", **({"gguf_file": args.post_gguf} if args.post_gguf else {}))
                res = [bench_cohen(lm, post, people=args.people, trials=40)]
            for r in res:
                print(json.dumps(r))
            results += res
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
