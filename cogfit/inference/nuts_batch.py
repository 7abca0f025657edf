"""NUTS chains of many data sets of one shape, vectorised across data sets and chains.

:func:`sample_batch` is :func:`cogfit.inference.chains.sample` (NumPyro's NUTS kernel, its
warm-up schedule, prior-median start) for ``D`` data sets at once: every array of the model's
arguments carries a leading data-set axis, and the chain kernel runs under two ``jax.vmap``
(data sets, then chains) in compiled blocks of iterations, so one compiled program serves every
chain of every data set. Each data set gets the draws ``chains.sample(...,
chain_method="vectorized")`` would give it with the same key, equal up to floating-point
rounding of the batched arithmetic (NUTS trajectories amplify rounding, so long runs part
ways draw by draw; their distribution does not).

Vectorised chains move in lockstep: every iteration costs the longest trajectory in the whole
batch. On an accelerator a batch costs about what one chain costs; on a CPU it costs about the
sum of the lanes' gradients at the longest trajectory, so it pays where compiling one program
per data set (seconds each) outweighs that (``benchmarks/RESULTS.md``, recovery).
"""

from __future__ import annotations

import jax
import numpy as np
from tqdm import tqdm

from cogfit.inference import start
from cogfit.inference.chains import BLOCK, Step, _block_fn

__all__ = ["sample_batch"]


def sample_batch(numpyro_model, args: tuple, *, keys: jax.Array, chains: int, tune: int, draws: int,
                 target_accept: float, dense_mass: bool, progress: bool) -> tuple[dict, dict]:
    """``chains`` NUTS chains of ``tune`` + ``draws`` iterations for each of ``D`` data sets.

    ``args``: ``model_args`` of every data set stacked on a leading axis ``(D, ...)``; ``keys``
    ``(D, 2)``, data set ``d``'s key as :func:`~cogfit.inference.chains.sample` takes it.
    Returns ``(samples, stats)``: constrained sites ``(D, chain, draw, ...)`` and the sampler
    statistics ``(D, chain, draw)`` of :func:`~cogfit.inference.chains.sample`.
    """
    if draws < 1 or tune < 0 or chains < 1:
        raise ValueError(f"need draws >= 1, tune >= 0 and chains >= 1, got {draws}, {tune}, {chains}")
    D = keys.shape[0]
    split = jax.vmap(jax.random.split)(keys)                                   # (D, 2, 2): init, run
    init_keys = jax.vmap(lambda k: jax.random.split(k, chains))(split[:, 0])   # (D, C, 2)
    run_keys = jax.vmap(lambda k: jax.random.split(k, chains))(split[:, 1])
    # the start chains.sample takes (drawn in the jitted init, else NumPyro's search), per data set
    chain_start, state = start.initial_state(
        numpyro_model, args, init_keys, run_keys, lambda f: _per_dataset(f, (0, 0, None), (0, 0, 0)),
        one=jax.tree.map(lambda x: x[0], args), tune=tune, target_accept=target_accept, dense_mass=dense_mass)
    sample_kernel, postprocess_fn_gen = chain_start.sample_kernel, chain_start.postprocess_fn_gen
    length = max(1, min(BLOCK, tune + draws))
    block = _per_dataset(_block_fn(sample_kernel, length), (0, None, None), (0, 0, None))
    kept, done, total = [], 0, tune + draws
    with tqdm(total=total * D * chains, disable=not progress, unit="it", dynamic_ncols=True,
              desc=f"nuts {D} data sets x {chains} chains") as bar:
        while done < total:
            active = min(length, total - done)
            state, out = block(state, args, active)
            first = max(0, tune - done)               # this block's first kept iteration
            if first < active:
                kept.append(jax.tree.map(lambda x: np.asarray(x)[:, :, first:active], out))
            done += active
            bar.update(active * D * chains)
    steps = jax.tree.map(lambda *xs: np.concatenate(xs, axis=2), *kept)                 # (D, C, draws, ...)

    def constrain(z, a):
        return jax.vmap(postprocess_fn_gen(*a))(z)

    flat = jax.tree.map(lambda x: x.reshape(D, chains * draws, *x.shape[3:]), steps.z)
    values = jax.jit(jax.vmap(constrain))(flat, args)
    samples = {k: np.asarray(v).reshape(D, chains, draws, *v.shape[2:]) for k, v in values.items()}
    return samples, {f: np.asarray(getattr(steps, f)) for f in Step._fields if f != "z"}


def _per_dataset(f, chain_axes, dataset_axes):
    """``f`` of one chain, vmapped over chains and then data sets, jitted."""
    return jax.jit(jax.vmap(jax.vmap(f, in_axes=chain_axes), in_axes=dataset_axes))
