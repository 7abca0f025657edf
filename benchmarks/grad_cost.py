"""Cost of one log-density + gradient evaluation of a hierarchical model on a named data set.

    COGFIT_DATA_MIRROR=../shared/data python benchmarks/grad_cost.py --model cpt_linear \
        --dataset psych201/spektor2024lossaversion
"""

import argparse
import time

import jax
import jax.numpy as jnp
from numpyro.infer.util import initialize_model

import cogfit
from cogfit._hierarchy import build, model_args

ap = argparse.ArgumentParser()
ap.add_argument("--model", default="cpt_linear")
ap.add_argument("--dataset", default="psych201/spektor2024lossaversion")
ap.add_argument("--centered", action="store_true")
ap.add_argument("--batch", type=int, default=1, help="chains evaluated together (vmap)")
args = ap.parse_args()
table = cogfit.datasets.load(args.dataset)
model = cogfit.models.get(args.model)
data = cogfit.TrialData.from_table(table, model)
fn = build(model, data, centered=args.centered)
info = initialize_model(jax.random.PRNGKey(0), fn, model_args=model_args(data))
pe = info.potential_fn
x0 = info.param_info.z
xs = jax.tree.map(lambda v: jnp.stack([v] * args.batch), x0)
g = jax.jit(jax.vmap(jax.value_and_grad(pe)))
jax.block_until_ready(g(xs))
n = 20
t = time.perf_counter()
for _ in range(n):
    jax.block_until_ready(g(xs))
dt = (time.perf_counter() - t) / n
trials = int(data.mask.sum())
print(f"{args.model} on {args.dataset}: {data.n_subjects} subjects, {trials} trials, batch {args.batch}: "
      f"{dt * 1e3:.2f} ms per value+grad, {trials * args.batch / dt:.3g} trials/s")
