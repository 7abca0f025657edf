"""The five parts of ``device_run.py``: ``part(cfg, part) -> one-line summary``.

``cfg`` holds the part's sizes (:data:`PRESETS`); ``part`` (``device_run.Part``) records each
measured size as a row (the JSON is rewritten at once), records sizes left out and knows the
time left. JAX, cogfit and torch are imported inside the parts, so that ``--smoke`` can hide the
accelerators first and a part whose dependency is missing is skipped alone.

Timing convention: a figure "less compilation" subtracts the seconds JAX spent tracing,
lowering and compiling (or loading compiled programs) during the call, read from JAX's own
monitoring events (``_timing.compile_seconds``).
"""

from __future__ import annotations

import math
import os
import tempfile
import time

import numpy as np

PRESETS = {
    "device": {
        "wiener": dict(trials=(1e6, 1e7, 1e8), subjects=1000, cpu_trials=1e6),
        "nuts": dict(subjects=(1000, 10_000), trials=500, chains=4, tune=150, draws=100, init="svi", pilot=1000),
        "svi": dict(participants=101, choices=5_000_000, steps=250),
        "batch": dict(datasets=1000, subjects=30, trials=200, steps=1000),
        "llm": dict(config="published", sessions=64, trials=100, batches=(1, 8, 32), play_trials=100, threads=None),
    },
    "smoke": {
        "wiener": dict(trials=(1e3,), subjects=10, cpu_trials=1e3),
        # started at the prior median and non-centred: an SVI pilot's compilation adds ~20 s on 2 cores
        "nuts": dict(subjects=(6,), trials=30, chains=4, tune=20, draws=10, init="median", pilot=250,
                     centered=False),
        "svi": dict(participants=6, choices=20_000, steps=250),
        "batch": dict(datasets=4, subjects=5, trials=30, steps=250),
        "llm": dict(config="tiny", sessions=8, trials=4, batches=(1, 8, 32), play_trials=10, threads=1),
    },
}

# nuts: population mean and sd of each ddm parameter on its unconstrained scale (the truth).
DDM_GROUP = {"v": (1.0, 0.5), "a": (math.log(1.4), 0.2), "z": (0.0, 0.2), "t": (math.log(0.3), 0.15)}
# svi: the dezfouli2019 shape (101 participants: 34 / 34 / 33 per diagnosis, 12 blocks of 6-202
# choices, 1,309 on average) as simulated here: 12 blocks of 60-159 trials.
DIAGNOSES = ("Healthy", "Depression", "Bipolar")
BLOCKS, BLOCK_TRIALS = 12, (60, 159)
SVI_MODEL, BATCH_MODEL = "bandit_dual_rep_h_blocks", "bandit_rw"

# llm: the published configs (huggingface.co/google/gemma-3-270m, /HuggingFaceTB/SmolLM2-135M)
# and the tiny versions of the same architectures that --smoke runs.
ARCHS = {
    "gemma-3-270m": ("Gemma3TextConfig", dict(
        vocab_size=262_144, hidden_size=640, intermediate_size=2048, num_hidden_layers=18, num_attention_heads=4,
        num_key_value_heads=1, head_dim=256, query_pre_attn_scalar=256, sliding_window=512,
        layer_types=(["sliding_attention"] * 5 + ["full_attention"]) * 3, max_position_embeddings=32_768,
        rope_theta=1_000_000.0, rope_local_base_freq=10_000.0, rms_norm_eps=1e-6,
        hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True)),
    "SmolLM2-135M": ("LlamaConfig", dict(
        vocab_size=49_152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
        num_key_value_heads=3, max_position_embeddings=8192, rope_theta=100_000.0, rms_norm_eps=1e-5,
        hidden_act="silu", tie_word_embeddings=True)),
}
TINY = {
    "gemma-3-270m": dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=1, head_dim=16, query_pre_attn_scalar=16,
                         sliding_window=64, layer_types=["sliding_attention", "full_attention"]),
    "SmolLM2-135M": dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2),
}


class Unavailable(Exception):
    """A part's dependency is installed but cannot be imported (e.g. cogfit without ArviZ)."""


def _cogfit(module: str = "cogfit"):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise Unavailable(f"{module} cannot be imported here ({err}); benchmarks/RESULTS.md says what the "
                          "device run installs") from err


def _jax_device() -> str:
    import jax

    d = jax.devices()[0]
    return f"cpu ({os.cpu_count()} cores)" if d.platform == "cpu" else f"{d.platform}: {d.device_kind}"


def _precision() -> str:
    import jax.numpy as jnp

    return jnp.zeros(()).dtype.name


def _timed(fn, *args, **kwargs):
    """``(result, wall seconds, compile seconds)`` of ``fn(*args, **kwargs)``."""
    from _timing import compile_seconds

    c0, t0 = compile_seconds(), time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0, compile_seconds() - c0


def wiener(cfg: dict, part) -> str:
    """Log-likelihood + gradient throughput, float32 and float64, then the machine's CPU."""
    import jax
    import jax.numpy as jnp
    from bench_ddm import throughput

    _cogfit()

    def measure(n: float, dtype, device: str) -> dict:
        t0 = time.perf_counter()
        rate, comp = throughput(int(n), cfg["subjects"], dtype)
        row = dict(trials=int(n), subjects=cfg["subjects"], precision=jnp.dtype(dtype).name, device=device,
                   trials_per_s=rate, compile_s=comp, seconds=time.perf_counter() - t0)
        part.add(row)
        return row

    for x64 in (False, True):
        with jax.enable_x64(x64):
            dtype = jnp.float64 if x64 else jnp.float32
            last = None
            for n in cfg["trials"]:
                # compilation does not grow with the trials; making the data and the runs do
                predicted = last and last["compile_s"] + (last["seconds"] - last["compile_s"]) * n / last["trials"]
                if part.fits(f"{jnp.dtype(dtype).name} {n:.0e} trials", predicted):
                    last = measure(n, dtype, _jax_device())
            with jax.default_device(jax.devices("cpu")[0]):
                measure(cfg["cpu_trials"], dtype, f"cpu ({os.cpu_count()} cores)")
    best = {}
    for r in part.record["rows"]:                       # the largest size measured on each device
        key = (r["device"], r["precision"])
        if key not in best or r["trials"] > best[key]["trials"]:
            best[key] = r
    return "; ".join(f"{dev} {prec} {r['trials']:.0e}: {r['trials_per_s']:.3g} trials/s"
                     for (dev, prec), r in best.items())


def ddm_table(model, n_subjects: int, n_trials: int, seed: int):
    """Simulated ``ddm`` trials (tidy table) of subjects drawn from :data:`DDM_GROUP`."""
    import pandas as pd

    cogfit = _cogfit()
    rng = np.random.default_rng(seed)
    values = {p.name: np.asarray(p.transform.forward(DDM_GROUP[p.name][0] + DDM_GROUP[p.name][1]
                                                     * rng.standard_normal(n_subjects)), float)
              for p in model.params}
    design = pd.DataFrame({"subject": np.repeat(np.arange(n_subjects), n_trials),
                           "trial": np.tile(np.arange(n_trials), n_subjects)})
    return cogfit.simulate(model, design, values, seed=seed)


def nuts(cfg: dict, part) -> str:
    """Hierarchical ddm NUTS, vectorised chains, short warm-up after an SVI pilot."""
    from numpyro.diagnostics import effective_sample_size, split_gelman_rubin

    cogfit = _cogfit()
    model = cogfit.models.get("ddm")
    method = cogfit.NUTS(draws=cfg["draws"], tune=cfg["tune"], chains=cfg["chains"], chain_method="vectorized",
                         init=cfg["init"], pilot=cogfit.SVI(steps=cfg["pilot"]),
                         **{k: cfg[k] for k in ("centered",) if k in cfg})   # else NUTS's own default
    lines = []
    t0 = time.perf_counter()
    table = ddm_table(model, max(cfg["subjects"]), cfg["trials"], seed=0)   # one simulator program for all sizes
    simulate_s = time.perf_counter() - t0
    for n in cfg["subjects"]:
        t0 = time.perf_counter()
        data = cogfit.TrialData.from_table(table[table["subject"] < n], model)
        prep = time.perf_counter() - t0 + simulate_s * n / max(cfg["subjects"])
        fit, wall, comp = _timed(cogfit.fit, model, data, method=method, seed=0, progress=False, warn=False)
        post, stats = fit.posterior, fit.tree["sample_stats"]
        group = {f"{p}_{s}": np.asarray(post[f"{p}_{s}"].values) for p in DDM_GROUP for s in ("mu", "sigma")}
        ess = min(float(np.min(effective_sample_size(v))) for v in group.values())
        rhat = max(float(np.max(split_gelman_rubin(v))) for v in group.values())
        recovery = {}
        for p, (mu, _) in DDM_GROUP.items():
            x = group[f"{p}_mu"].ravel()
            q05, q95 = np.quantile(x, [0.05, 0.95])
            recovery[p] = dict(truth_mu=mu, mean=float(x.mean()), sd=float(x.std()), q05=float(q05), q95=float(q95),
                               inside_90=bool(q05 <= mu <= q95))
        run_s = wall - comp
        iterations = cfg["tune"] + cfg["draws"]
        row = dict(subjects=n, trials=cfg["trials"], chains=cfg["chains"], chain_method="vectorized",
                   tune=cfg["tune"], draws=cfg["draws"], init=cfg["init"],
                   pilot_steps=cfg["pilot"] if cfg["init"] == "svi" else 0, precision=_precision(),
                   device=_jax_device(), prep_s=prep, wall_s=wall, compile_s=comp,
                   s_per_100_iterations=100 * run_s / iterations,
                   leapfrog_steps_per_draw=float(np.mean(stats["n_steps"].values)),
                   divergences=int(np.sum(stats["diverging"].values)), min_ess_group=ess, ess_per_s=ess / run_s,
                   max_rhat_group=rhat, recovery=recovery)
        part.add(row)
        covered = sum(r["inside_90"] for r in recovery.values())
        lines.append(f"{n} x {cfg['trials']}: {row['s_per_100_iterations']:.2f} s/100 it, "
                     f"{row['leapfrog_steps_per_draw']:.0f} steps/draw, ESS/s {row['ess_per_s']:.2f}, "
                     f"{covered}/{len(recovery)} group means inside 90%")
    return "; ".join(lines)


def dezfouli_like(model, n_subjects: int, seed: int):
    """A simulated data set of the dezfouli2019 shape (tidy table): three diagnoses in turn,
    :data:`BLOCKS` blocks of :data:`BLOCK_TRIALS` trials, learners restarting at each block."""
    cogfit = _cogfit()
    rng = np.random.default_rng(seed)
    blocks = rng.integers(BLOCK_TRIALS[0], BLOCK_TRIALS[1] + 1, (n_subjects, BLOCKS))
    counts, ends = blocks.sum(1), np.cumsum(blocks, 1)
    design = cogfit.random_design(model, n_subjects=n_subjects, n_trials=int(counts.max()), seed=seed)
    subject, trial = design["subject"].to_numpy(), design["trial"].to_numpy()
    keep = trial < counts[subject]
    design = design[keep].assign(block=(trial[keep, None] >= ends[subject[keep]]).sum(1),
                                 population=np.asarray(DIAGNOSES)[subject[keep] % len(DIAGNOSES)])
    truth = dict(alpha_pos=rng.beta(3, 4, n_subjects), alpha_neg=rng.beta(2, 5, n_subjects),
                 beta_h=rng.lognormal(1.0, 0.4, n_subjects), beta_c=rng.normal(0.3, 0.5, n_subjects))
    return cogfit.simulate(model, design, truth, seed=seed)


def svi(cfg: dict, part) -> str:
    """SVI (mean-field normal guide) over the dezfouli-shaped table tiled to ``choices``."""
    import pandas as pd

    cogfit = _cogfit()
    model = cogfit.models.get(SVI_MODEL)
    t0 = time.perf_counter()
    table = dezfouli_like(model, cfg["participants"], seed=1)
    copies = max(1, math.ceil(cfg["choices"] / len(table)))
    n = cfg["participants"]
    tiled = pd.concat([table.assign(subject=table["subject"] + c * n) for c in range(copies)], ignore_index=True)
    data = cogfit.TrialData.from_table(tiled, model)
    prep = time.perf_counter() - t0
    steps = cfg["steps"]
    fit, wall, comp = _timed(cogfit.fit, model, data, method=cogfit.SVI(steps=steps, draws=10), seed=0,
                             progress=False, warn=False)
    row = dict(model=SVI_MODEL, participants=n, copies=copies, subjects=data.n_subjects, choices=len(tiled),
               populations=len(data.populations), steps=steps, precision=_precision(), device=_jax_device(),
               prep_s=prep, wall_s=wall, compile_s=comp, ms_per_step=1e3 * (wall - comp) / steps,
               final_loss=float(fit.meta["final_loss"]))
    part.add(row)
    return (f"{row['choices']:,} choices ({copies} x {n} dezfouli-shaped learners): {row['ms_per_step']:.1f} ms/step"
            f" ({row['precision']})")


def batch(cfg: dict, part) -> str:
    """``cogfit.fit_batch`` over simulated ``bandit_rw`` data sets of one design."""
    import pandas as pd

    cogfit = _cogfit()
    model = cogfit.models.get(BATCH_MODEL)
    D, S, T, steps = cfg["datasets"], cfg["subjects"], cfg["trials"], cfg["steps"]
    t0 = time.perf_counter()
    rng = np.random.default_rng(2)
    truth = dict(alpha=rng.beta(2, 3, (D, S)), beta=rng.lognormal(1.0, 0.4, (D, S)))
    design = cogfit.random_design(model, n_subjects=S, n_trials=T, seed=2)
    big = pd.concat([design.assign(subject=design["subject"] + d * S) for d in range(D)], ignore_index=True)
    sim = cogfit.simulate(model, big, {k: v.ravel() for k, v in truth.items()}, seed=2)
    dataset = sim["subject"].to_numpy() // S
    sim = sim.assign(subject=sim["subject"] % S)
    datasets = [cogfit.TrialData.from_table(g, model) for _, g in sim.groupby(dataset, sort=True)]
    prep = time.perf_counter() - t0
    fits, wall, comp = _timed(cogfit.fit_batch, model, datasets, method=cogfit.SVI(steps=steps, draws=100), seed=0,
                              progress=False)
    recovery = {f"{k}_r": float(np.corrcoef(fits.samples[k].mean(axis=(1, 2)).ravel(), v.ravel())[0, 1])
                for k, v in truth.items()}
    row = dict(model=BATCH_MODEL, datasets=D, subjects=S, trials=T, choices=D * S * T, steps=steps,
               precision=_precision(), device=_jax_device(), prep_s=prep, total_s=wall, compile_s=comp,
               ms_per_step=1e3 * (wall - comp) / steps, finite_losses=bool(np.isfinite(fits.losses).all()),
               **recovery)
    part.add(row)
    return (f"{D} data sets x {S} x {T}: {wall:.1f} s ({comp:.1f} s compiling), subject alpha recovered "
            f"r = {recovery['alpha_r']:.2f}")


def build_lm(name: str, tokenizer, *, tiny: bool, device: str, dtype):
    """A randomly initialised ``name`` architecture (its published config, or :data:`TINY`)."""
    import torch
    import transformers

    L = _cogfit("cogfit.llm")
    cls, published = ARCHS[name]
    config = getattr(transformers, cls)(**{**published, **(TINY[name] if tiny else {})},
                                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                        pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    with torch.device(device):
        model = transformers.AutoModelForCausalLM.from_config(config).to(dtype)
    return L.wrap(model, tokenizer, name=f"random-{name}{'-tiny' if tiny else ''}", device=device)


def llm(cfg: dict, part) -> str:
    """Scoring throughput at several batch sizes and a KV-cache bandit session, per architecture."""
    import torch
    import transformers

    L = _cogfit("cogfit.llm")
    from bench_llm import bench_cache, bench_score

    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = L.pick_dtype(torch.device(device))
    where = torch.cuda.get_device_name() if device == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        # a tokenizer trained offline on the same kind of text; its ids are a subset of every vocabulary
        tok = transformers.AutoTokenizer.from_pretrained(
            L.build_tiny_lm(os.path.join(tmp, "tok"), arch="llama", vocab_size=500, width=16, layers=1))
        for name in ARCHS:
            t0 = time.perf_counter()
            lm = build_lm(name, tok, tiny=cfg["config"] == "tiny", device=device, dtype=dtype)
            build_s = time.perf_counter() - t0
            score = bench_score(lm, sessions=cfg["sessions"], trials=cfg["trials"], batches=cfg["batches"])
            cache = bench_cache(lm, lengths=[cfg["play_trials"]])[0]
            n_params = sum(p.numel() for p in lm.model.parameters())
            row = dict(architecture=name, config=cfg["config"], parameters=n_params,
                       dtype=str(dtype).removeprefix("torch."), device=where, build_s=build_s,
                       sessions=cfg["sessions"], trials_per_session=cfg["trials"], tokens=score["tokens"],
                       **{k: v for k, v in score.items() if k.startswith("tokens_per_s")},
                       play_trials=cfg["play_trials"], **{k: cache[k] for k in (
                           "cached_forward_tokens", "recompute_forward_tokens", "cached_s", "recompute_s",
                           "max_prob_difference")})
            part.add(row)
            del lm
            rates = "/".join(f"{score[f'tokens_per_s_batch{b}']:.3g}" for b in cfg["batches"])
            lines.append(f"{name} ({row['dtype']}): {rates} tokens/s at batch {'/'.join(map(str, cfg['batches']))}, "
                         f"{cfg['play_trials']}-trial play {cache['cached_s']:.1f} s "
                         f"(re-read {cache['recompute_s']:.1f} s)")
    return "; ".join(lines)
