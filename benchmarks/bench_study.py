"""The human-vs-LLM study's costs on this machine, with the two registry models (issue 33).

    python benchmarks/bench_study.py threads --model smollm2-135m-instruct   # play: 1 thread vs torch's default
    python benchmarks/bench_study.py batch --model smollm2-135m-instruct     # scoring: batch 1 vs 4
    python benchmarks/bench_study.py speed --model gemma-3-270m              # tokens/s, s/trial by trial index

Each prints one JSON line; ``--out FILE`` appends it. Results: benchmarks/RESULTS.md, section
"Human-vs-LLM study (issue 33)".
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

import cogfit.datasets as D
import cogfit.llm as L
import cogfit.tasks as T
from cogfit.llm._lm import encode
from cogfit.psych201 import read_jsonl

EXPERIMENTS = ("dezfouli2019", "spektor2024lossaversion", "guenther2020LDT")


def sessions(n_per: int, chars: tuple[int, ...]) -> list[L.Transcript]:
    """``n_per`` people of each shared experiment, cut after lengths cycling through ``chars``."""
    out = []
    for e in EXPERIMENTS:
        for i, p in enumerate(read_jsonl(D.path(f"psych201/{e}"))[:n_per]):
            cut = chars[(len(out) + i) % len(chars)]
            out.append(L.Transcript(e, p.participant, p.text[:cut]))
    return out


def threads(args) -> dict:
    lm = L.load_lm(args.model, device="cpu", threads=1)
    task = L.bandit_task(lambda s: T.fixed_bandit([0.3, 0.7], args.trials, seed=s))
    out = {}
    for n in (1, os.cpu_count()):
        torch.set_num_threads(n)
        L.play(lm, task, n_participants=1, seed=99, progress=False)          # warm-up
        t = time.perf_counter()
        L.play(lm, task, n_participants=args.participants, seed=0, progress=False)
        out[f"s_per_trial_threads_{n}"] = (time.perf_counter() - t) / (args.participants * args.trials)
    return out


def batch(args) -> dict:
    lm = L.load_lm(args.model, device="cpu", threads=1)
    todo = sessions(args.people, (600, 1500, 3000, 5000))
    n_tokens = sum(len(L.tokenize(lm.tokenizer, t).ids) for t in todo)
    out = {"sessions": len(todo), "tokens": n_tokens}
    L.score_transcripts(lm, todo[:1], batch_size=1, progress=False)           # warm-up
    for b in (1, 4):
        t = time.perf_counter()
        L.score_transcripts(lm, todo, batch_size=b, progress=False)
        secs = time.perf_counter() - t
        out[f"s_batch_{b}"], out[f"tokens_per_s_batch_{b}"] = secs, n_tokens / secs
    return out


def speed(args) -> dict:
    """Scoring tokens/s (batch 1) and play seconds per trial in the first and last quarter."""
    t = time.perf_counter()
    lm = L.load_lm(args.model, device="cpu", threads=1)
    out = {"load_s": time.perf_counter() - t}
    todo = sessions(args.people, (3000,))
    n_tokens = sum(len(L.tokenize(lm.tokenizer, x).ids) for x in todo)
    t = time.perf_counter()
    L.score_transcripts(lm, todo, batch_size=1, progress=False)
    out.update(score_tokens=n_tokens, score_tokens_per_s=n_tokens / (time.perf_counter() - t))
    session = L.Session(lm, [lm.tokenizer.bos_token_id] if lm.tokenizer.bos_token_id is not None else [])
    task = L.bandit_task(lambda s: T.fixed_bandit([0.3, 0.7], args.trials, seed=s), names=("L", "R"))
    ids = L.option_tokens(lm, ("L", "R"))
    episode, answer, per_trial = task(0, np.random.default_rng(0)), None, []
    t0 = time.perf_counter()
    while True:
        try:
            item = episode.send(answer)
        except StopIteration:
            break
        answer = None
        if isinstance(item, str):
            session.feed(encode(lm.tokenizer, item))
        elif isinstance(item, L.Ask):
            session.feed(encode(lm.tokenizer, item.text))
            answer = int(np.argmax(session.option_logprobs(ids)))
            session.feed(ids[answer])
        elif isinstance(item, L.Emit):
            per_trial.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
    q = max(1, len(per_trial) // 4)
    out.update(play_trials=len(per_trial), play_s_per_trial_first_quarter=float(np.mean(per_trial[1:q + 1])),
               play_s_per_trial_last_quarter=float(np.mean(per_trial[-q:])),
               play_tokens=session.cached)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["threads", "batch", "speed"])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--participants", type=int, default=2)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--people", type=int, default=2, help="people per experiment (scoring)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    result = {"what": args.what, "model": args.model, "load1": os.getloadavg()[0],
              **{"threads": threads, "batch": batch, "speed": speed}[args.what](args)}
    line = json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()})
    print(line)
    if args.out:
        with open(args.out, "a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
