"""Scoring throughput of cogfit.llm on a GPU against the CPU (the issue's device run).

A randomly initialised Llama-architecture model of about 1.2B parameters (Llama-3.2-1B shapes:
hidden 2048, 16 layers, 32 heads / 8 KV heads, vocabulary 128,256) scores synthetic
Psych-201-style sessions with :func:`cogfit.llm.score_transcripts` (teacher-forced NLL of every
response, batched with left padding), in bfloat16 on the GPU and in float32 on the CPU. Random
weights cost exactly what trained ones do. The tokenizer is trained offline on the same kind of
text; its ids are a subset of the model's vocabulary, and only positions that predict response
tokens are projected onto the vocabulary, as in real use.

Usage (device machine)::

    python benchmarks/gpu_llm.py --config 1b --out $OUT/gpu_llm.json

``--config tiny`` runs the same code in seconds on a CPU (the check before the device run).
Prints one JSON object: per device, tokens scored per second, sessions, tokens per session,
batch size, dtype and peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import torch
import transformers

import cogfit.llm as L

CONFIGS = {
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8, vocab_size=128_256, max_position_embeddings=32_768,
               tie_word_embeddings=True, rope_theta=500_000.0),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=512, max_position_embeddings=32_768),
}


def sessions(n: int, trials: int, seed: int) -> list[str]:
    return L.demo_corpus(n, trials, seed=seed)


def run(device: str, dtype: torch.dtype, cfg: dict, tok_dir: str, *, n: int, trials: int, batch: int,
        repeats: int) -> dict:
    tok = transformers.AutoTokenizer.from_pretrained(tok_dir)
    config = transformers.LlamaConfig(**cfg, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    with torch.device(device):
        model = transformers.LlamaForCausalLM(config).to(dtype)
    build_s = time.perf_counter() - t0
    lm = L.wrap(model, tok, name=f"random-llama-{sum(p.numel() for p in model.parameters()) / 1e9:.2f}B",
                device=device)
    texts = sessions(n, trials, seed=1)
    n_tokens = sum(len(L.tokenize(tok, t).ids) for t in L.as_transcripts(texts))
    L.score_transcripts(lm, texts[:batch], batch_size=batch, progress=False)  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        scores = L.score_transcripts(lm, texts, batch_size=batch, progress=False)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    best = min(times)
    return {
        "device": torch.cuda.get_device_name() if device == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
        "model": lm.name, "dtype": str(dtype).removeprefix("torch."), "sessions": n,
        "tokens_per_session": n_tokens / n, "responses": len(scores), "batch_size": batch,
        "seconds": best, "tokens_per_s": n_tokens / best, "responses_per_s": len(scores) / best,
        "all_times_s": times, "build_s": build_s,
        "peak_memory_gb": torch.cuda.max_memory_allocated() / 1e9 if device == "cuda" else None,
        "mean_nll": float(scores.nll.mean()),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", choices=sorted(CONFIGS), default="1b")
    ap.add_argument("--gpu-sessions", type=int, default=16)
    ap.add_argument("--gpu-trials", type=int, default=300, help="trials per session (12-40 tokens each)")
    ap.add_argument("--gpu-batch", type=int, default=4)
    ap.add_argument("--cpu-sessions", type=int, default=2)
    ap.add_argument("--cpu-trials", type=int, default=25)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--skip-cpu", action="store_true")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tok_dir = L.build_tiny_lm(os.path.join(tmp, "tok"), arch="llama", vocab_size=500, width=16, layers=1)
        cfg = CONFIGS[args.config]
        result = {"config": args.config, "torch": torch.__version__, "transformers": transformers.__version__}
        if torch.cuda.is_available():
            result["gpu"] = run("cuda", torch.bfloat16, cfg, tok_dir, n=args.gpu_sessions,
                                trials=args.gpu_trials, batch=args.gpu_batch, repeats=args.repeats)
        if not args.skip_cpu:
            result["cpu"] = run("cpu", torch.float32, cfg, tok_dir, n=args.cpu_sessions,
                                trials=args.cpu_trials, batch=1, repeats=1)
        if "gpu" in result and "cpu" in result:
            result["speedup"] = result["gpu"]["tokens_per_s"] / result["cpu"]["tokens_per_s"]
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
