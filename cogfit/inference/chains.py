"""NUTS chains on NumPyro's functional kernel: one compiled program for every chain.

``numpyro.infer.MCMC`` with sequential chains builds a fresh ``jit`` wrapper per chain, so
each chain traces, lowers and loads the whole sampler again (seconds per chain even with a
warm persistent cache: ``benchmarks/RESULTS.md``, spektor), and it initialises
each chain by re-running the model eagerly. Here the chains are initialised together (one
vmapped, jitted program), then run in blocks of iterations by one jitted ``lax.scan``
that every chain reuses (``sequential``: one chain after another; ``vectorized``: all chains
as one batch; ``parallel``: one chain per device, ``pmap``, in rounds of as many chains as
there are devices); a progress bar advances per block. Samples are constrained
(deterministic sites included) by one more jitted program at the end.

The kernel, its warm-up schedule (step size and diagonal/dense mass adaptation) and its
defaults are NumPyro's (:func:`numpyro.infer.hmc.hmc`, ``algo="NUTS"``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer.hmc_util import dual_averaging
from tqdm import tqdm

from cogfit.inference import start
from cogfit.inference.jump import with_jumps

ChainMethod = Literal["sequential", "vectorized", "parallel"]
BLOCK = 25  # iterations per compiled block (progress granularity)
RETUNE = 100  # most iterations that re-adapt the step size once mode jumps start (a tenth of tune)


class Step(NamedTuple):
    """What each NUTS iteration records (leading axes: draw, or chain and draw)."""

    z: dict
    diverging: jax.Array
    energy: jax.Array
    num_steps: jax.Array
    step_size: jax.Array
    accept_prob: jax.Array
    potential_energy: jax.Array


def _block_fn(sample_kernel: Callable, length: int) -> Callable:
    """``(state, args, n_active) -> (state, Step)``: ``length`` iterations, the first ``n_active`` real."""

    def block(state, args, n_active):
        def body(s, j):
            s = jax.lax.cond(j < n_active, lambda x: sample_kernel(x, model_args=args), lambda x: x, s)
            return s, Step(s.z, s.diverging, s.energy, s.num_steps, s.adapt_state.step_size,
                           s.accept_prob, s.potential_energy)

        return jax.lax.scan(body, state, jnp.arange(length))

    return block


def _trim(out: Step, n: int, batched: bool) -> Step:
    """The first ``n`` iterations of a block, on the host (axis 1 when chains are batched)."""
    return jax.tree.map(lambda x: np.asarray(x)[:, :n] if batched else np.asarray(x)[:n], out)


def widen_mass(state, moves: Callable[[dict], dict], sites: tuple[str, ...]):
    """One chain's warmed-up NUTS ``state`` with the diagonal inverse mass of every coordinate a
    mode-jump move displaces raised to the squared displacement ``d**2``, at most
    ``1 / (4 eps)**2`` times its adapted value (``eps`` the adapted step size).

    Warm-up adapts each chain in one mode, so a moved coordinate's inverse mass (a variance)
    is its spread within that mode; the posterior spans both, and beyond the second optimum it
    may run on along a plateau (a learning rate near 1 fits as well as 1). With the narrow
    variance NUTS random-walks there in steps of the mode's width (see ``benchmarks/RESULTS.md``,
    dezfouli). The bound keeps a leapfrog step within a quarter of the mode's width in the
    chain's own mode.
    """
    d = moves(state.z)                                                    # site -> (J, ...)
    reach = jnp.concatenate([jnp.max(jnp.abs(d[k]), axis=0).ravel() for k in sites])
    adapt = state.adapt_state
    inv = adapt.inverse_mass_matrix[sites]
    top = inv / (4.0 * adapt.step_size) ** 2
    new = jnp.where(reach > 0, jnp.maximum(inv, jnp.minimum(reach ** 2, top)), inv)
    adapt = adapt._replace(inverse_mass_matrix={sites: new}, mass_matrix_sqrt={sites: jax.lax.rsqrt(new)},
                           mass_matrix_sqrt_inv={sites: jnp.sqrt(new)})
    return state._replace(adapt_state=adapt)


def restart_step_size(state, iterations: int):
    """One chain's warmed-up NUTS ``state`` set back ``iterations`` warm-up iterations into
    NumPyro's final adaptation window: the kernel then adapts the step size alone (dual
    averaging restarted from 10 times the current step, as NumPyro does after each mass update,
    and its average kept at the end); the mass matrix stays as it is.

    Used once mode jumps start: the widened mass (:func:`widen_mass`) and chains that now visit
    both modes need another step size than the one adapted in one mode (without the restart a
    chain's acceptance can collapse after warm-up: ``benchmarks/RESULTS.md``, dezfouli).
    """
    adapt = state.adapt_state
    ss_init, _ = dual_averaging()
    adapt = adapt._replace(ss_state=ss_init(jnp.log(10.0 * adapt.step_size)), window_idx=adapt.window_idx - 1)
    return state._replace(i=state.i - iterations, adapt_state=adapt)


def sample(
    numpyro_model: Callable,
    args: tuple,
    *,
    key: jax.Array,
    chains: int,
    tune: int,
    draws: int,
    target_accept: float,
    dense_mass: bool,
    chain_method: ChainMethod,
    progress: bool,
    init: dict | None = None,
    inverse_mass: jax.Array | None = None,
    jumps: Callable[[dict], Callable[[dict], dict] | None] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Run ``chains`` NUTS chains of ``tune`` warm-up and ``draws`` kept iterations.

    ``init`` (unconstrained values per latent site, ``(chains, ...)``) replaces the prior-median
    start; ``inverse_mass`` (flat diagonal, sites sorted by name) replaces the unit mass
    matrix that warm-up starts from (see :mod:`cogfit.inference.warmstart`). ``jumps`` adds mode-jump
    moves after every kept iteration (:func:`cogfit.inference.jump.with_jumps`): every chain is warmed
    up first, then ``jumps`` is called once with the last warm-up block's unconstrained draws
    (site -> ``(chain, draw, ...)``; the start when ``tune`` is 0) and returns the displacement
    function, or ``None`` for no moves. No moves during warm-up: a mass matrix adapted while a
    chain jumps takes the distance between the modes for a variance, and NUTS then needs a tiny
    step for the narrow modes; each chain adapts in one mode, and the moved coordinates'
    diagonal inverse mass is then widened (:func:`widen_mass`; not for a dense mass matrix).

    Returns ``(samples, stats)``: constrained sample and deterministic sites shaped
    ``(chain, draw, ...)`` and per-draw sampler statistics ``(chain, draw)`` (keys
    ``diverging, energy, num_steps, step_size, accept_prob, potential_energy``).
    """
    if chain_method not in ("sequential", "vectorized", "parallel"):
        raise ValueError(f"chain_method must be 'sequential', 'vectorized' or 'parallel', not {chain_method!r}")
    if draws < 1 or tune < 0 or chains < 1:
        raise ValueError(f"need draws >= 1, tune >= 0 and chains >= 1, got {draws}, {tune}, {chains}")
    k_init, k_run = jax.random.split(key)
    chain_start, states = start.initial_state(
        numpyro_model, args, jax.random.split(k_init, chains), jax.random.split(k_run, chains),
        lambda f: jax.jit(jax.vmap(f, in_axes=(0, 0, None))), tune=tune, target_accept=target_accept,
        dense_mass=dense_mass, init=init, inverse_mass=inverse_mass)
    sites, sample_kernel = chain_start.names, chain_start.sample_kernel
    potential_fn_gen, postprocess_fn_gen = chain_start.potential_fn_gen, chain_start.postprocess_fn_gen

    length = max(1, min(BLOCK, tune + draws))
    n_dev = jax.local_device_count()
    # chain sets: (chain indices, batched); each set's chains advance together
    if chain_method == "sequential":
        sets = [([c], False) for c in range(chains)]
    elif chain_method == "vectorized":
        sets = [(list(range(chains)), True)]
    else:   # one chain per device, in rounds when there are more chains than devices
        sets = [(list(range(c, min(c + n_dev, chains))), True) for c in range(0, chains, n_dev)]

    def over_set(f, in_axes=0):
        """``f`` of one chain compiled for a chain set: as is (sequential), vmapped or pmapped
        (a chain per device, so each state stays on its device) over the chain axis."""
        return {"sequential": jax.jit, "vectorized": lambda f: jax.jit(jax.vmap(f, in_axes=in_axes)),
                "parallel": lambda f: jax.pmap(f, in_axes=in_axes)}[chain_method](f)

    def compiled(kernel):
        return over_set(_block_fn(kernel, length), in_axes=(0, None, None))

    retune = min(RETUNE, tune // 10)
    bar = tqdm(total=(tune + draws) * chains, disable=not progress, unit="it", dynamic_ncols=True)
    diverging = 0
    pick = jax.jit(lambda s, c: jax.tree.map(lambda x: x[c], s))   # one program for every chain (set)

    def advance(fn, state, cs, batched, phase, n):
        """``n`` iterations of one chain set: ``(state, [Step blocks])``, in warm-up only the last block."""
        nonlocal diverging
        blocks, done = [], 0
        while done < n:
            active = min(length, n - done)
            state, out = fn(state, args, active)
            out = _trim(out, active, batched=batched)
            out = out if batched else jax.tree.map(lambda x: x[None], out)              # (chain, draw, ...)
            if phase == "sample":
                blocks.append(out)
                diverging += int(out.diverging.sum())
            else:
                blocks = [out]                  # the search after warm-up reads the last block only
            done += active
            bar.update(active * len(cs))
            if progress:
                label = f"chains {cs[0] + 1}-{cs[-1] + 1}/{chains}" if len(cs) > 1 else f"chain {cs[0] + 1}/{chains}"
                bar.set_description(f"{label} {phase}", refresh=False)
                bar.set_postfix_str(f"{int(np.max(out.num_steps))} steps of size "
                                    f"{float(np.ravel(out.step_size)[-1]):.2e}, {diverging} divergent")
        return state, blocks

    fn = compiled(sample_kernel)
    warm, last = [], []                     # per chain set: state after warm-up, its last block's z
    for cs, batched in sets:
        state, blocks = advance(fn, pick(states, jnp.asarray(cs) if batched else cs[0]), cs, batched, "warmup", tune)
        warm.append(state)
        last.append(blocks[-1].z if blocks else jax.tree.map(lambda x: np.asarray(x)[cs][:, None], states.z))
    if jumps is not None:
        moves = jumps(jax.tree.map(lambda *xs: np.concatenate(xs, axis=0), *last))
        if moves is not None:
            fn = compiled(with_jumps(sample_kernel, potential_fn_gen, moves))
            if not dense_mass:
                widen = over_set(functools.partial(widen_mass, moves=moves, sites=sites))
                warm = [widen(w) for w in warm]
            if retune:
                rewind = over_set(functools.partial(restart_step_size, iterations=retune))
                bar.total += retune * chains
                warm = [advance(fn, rewind(w), cs, batched, "retune", retune)[0]
                        for (cs, batched), w in zip(sets, warm)]
    per_set: list[Step] = []
    for (cs, batched), state in zip(sets, warm):
        _, blocks = advance(fn, state, cs, batched, "sample", draws)
        per_set.append(jax.tree.map(lambda *xs: np.concatenate(xs, axis=1), *blocks))
    bar.close()
    steps = jax.tree.map(lambda *xs: np.concatenate(xs, axis=0), *per_set)   # (chain, draw, ...)

    flat_z = jax.tree.map(lambda x: x.reshape(chains * draws, *x.shape[2:]), steps.z)
    constrain = jax.jit(lambda z, args: jax.vmap(postprocess_fn_gen(*args))(z))
    values = constrain(flat_z, args)
    samples = {k: np.asarray(v).reshape(chains, draws, *v.shape[1:]) for k, v in values.items()}
    stats = {f: np.asarray(getattr(steps, f)) for f in Step._fields if f != "z"}
    return samples, stats


def sampler_stats(raw: dict) -> dict:
    """The sampler statistics a fit records (``diverging``, ``energy``, ``n_steps``,
    ``tree_depth``, ``step_size``, ``acceptance_rate``, ``lp``) from :func:`sample`'s (or
    :func:`~cogfit.inference.nuts_batch.sample_batch`'s)."""
    return {"diverging": raw["diverging"], "energy": raw["energy"], "n_steps": raw["num_steps"],
            "tree_depth": np.floor(np.log2(raw["num_steps"])).astype(np.int64) + 1,
            "step_size": raw["step_size"], "acceptance_rate": raw["accept_prob"], "lp": -raw["potential_energy"]}
