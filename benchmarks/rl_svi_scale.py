"""Seconds per SVI step of a hierarchical bandit learner on many synthetic subjects (a script,
not a test).

Synthetic subjects x trials (default 10,000 x 500 = 5 million choices) simulated from
``bandit_dual_rep`` on drifting bandits, then SVI (mean-field normal guide, Adam 0.01) on the
hierarchical model. Prints compile time and seconds per SVI step and per 1,000 steps for each
scan ``--unroll`` factor, on whatever device JAX uses (printed; the H200 target is < 50 ms per
step).

Usage::

    python benchmarks/rl_svi_scale.py [--subjects 10000 --trials 500 --steps 20 --unroll 1 8]
    python benchmarks/rl_svi_scale.py --steps 100 --unroll 1 4 16 --out $OUT/svi_h200.json   # on a GPU
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from _dezfouli import emit, parser, start

import cogfit

NAME = "bandit_dual_rep"


def synthetic_data(model: cogfit.Model, n_subjects: int, n_trials: int, seed: int) -> cogfit.TrialData:
    """Simulate ``n_subjects`` learners on their own drifting bandits, packed as TrialData."""
    keys = jax.random.split(jax.random.key(seed), 3)
    rng = np.random.default_rng(seed)
    theta = cogfit.Record(alpha_pos=rng.beta(3, 4, n_subjects), alpha_neg=rng.beta(2, 5, n_subjects),
                          beta=rng.lognormal(1.0, 0.4, n_subjects), beta_c=rng.normal(0.3, 0.5, n_subjects))
    design = jax.vmap(lambda k: model.design(k, n_trials))(jax.random.split(keys[0], n_subjects))
    sim = jax.jit(jax.vmap(model.simulate))(jax.random.split(keys[1], n_subjects), theta, cogfit.Record(design))
    table = pd.DataFrame({
        "subject": np.repeat(np.arange(n_subjects), n_trials),
        "trial": np.tile(np.arange(n_trials), n_subjects),
        "choice": np.asarray(sim["choice"]).ravel(),
        "reward": np.asarray(sim["reward"]).ravel(),
    })
    return cogfit.TrialData.from_table(table, model)


def time_steps(model: cogfit.Model, data: cogfit.TrialData, steps: int, seed: int) -> dict:
    """Compile time of one SVI update and seconds per update over ``steps`` more."""
    import numpyro
    import optax
    from numpyro.infer import SVI, Trace_ELBO, autoguide, init_to_median

    from cogfit._hierarchy import model_args

    numpyro_model = cogfit.Hierarchy().build(model, data)
    guide = autoguide.AutoNormal(numpyro_model, init_loc_fn=init_to_median)
    svi = SVI(numpyro_model, guide, numpyro.optim.optax_to_numpyro(optax.adam(0.01)), Trace_ELBO())
    inputs = model_args(data)
    state = svi.init(jax.random.key(seed), *inputs)
    update = jax.jit(svi.update)
    t0 = time.perf_counter()
    state, loss = update(state, *inputs)
    jax.block_until_ready(loss)
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        state, loss = update(state, *inputs)
    jax.block_until_ready(loss)
    per_step = (time.perf_counter() - t0) / steps
    return dict(compile_s=round(t_compile, 1), s_per_step=round(per_step, 5),
                s_per_1000_steps=round(1000 * per_step, 1), final_loss=float(loss))


def main(argv=None) -> None:
    from cogfit.models import bandit

    ap = parser(__doc__)
    ap.add_argument("--subjects", type=int, default=10_000)
    ap.add_argument("--trials", type=int, default=500)
    ap.add_argument("--steps", type=int, default=20, help="timed steps after compilation")
    ap.add_argument("--unroll", type=int, nargs="+", default=[1],
                    help="scan unroll factors to time (e.g. 1 4 16 on a GPU)")
    args = start(ap, argv)
    t0 = time.perf_counter()
    data = synthetic_data(cogfit.models.get(NAME), args.subjects, args.trials, args.seed)
    t_data = time.perf_counter() - t0
    timings = [dict(unroll=u, **time_steps(bandit.bandit(NAME, bandit.MODELS[NAME], unroll=u), data, args.steps,
                                           args.seed))
               for u in args.unroll]
    emit(dict(part="svi", model=NAME, subjects=args.subjects, trials=args.trials,
              choices=int(data.mask.sum()), steps_timed=args.steps, simulate_and_pack_s=round(t_data, 1),
              timings=timings, device=str(jax.devices()[0]), n_devices=jax.device_count(),
              precision=str(jnp.zeros(()).dtype)), args.out)


if __name__ == "__main__":
    main()
