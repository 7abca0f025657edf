"""Where NUTS chains start, without compiling the model three times before the sampler.

NumPyro's ``initialize_model`` runs the model eagerly once (every primitive its own small
XLA program, and the learners' ``scan`` a large one) and then searches for a valid start per
chain in a compiled ``lax.map`` over a ``while_loop`` that evaluates the potential and its
gradient: two more compilations of the model before the sampler's own. For a 20 x 100 learner
that was about a third of the first fit's XLA time (``benchmarks/RESULTS.md``, first fit).

Here the model is traced abstractly (``jax.eval_shape``: no compilation) to find its latent
sites and their supports, and each chain's prior-median start is drawn inside the jitted
program that also initialises the kernel (:func:`median_start`). When a support depends on
other values (it cannot be read from an abstract trace) :func:`sites` returns ``None`` and
the caller falls back to ``initialize_model``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np
from numpyro.distributions.transforms import biject_to
from numpyro.handlers import seed, substitute, trace
from numpyro.infer import init_to_median
from numpyro.infer.hmc import hmc
from numpyro.infer.util import get_potential_fn, initialize_model, transform_fn

__all__ = ["Start", "initial_state", "kernel", "median_start", "potential_fns", "sites"]


def sites(numpyro_model: Callable, args: tuple) -> dict | None:
    """``{site: transform}`` (unconstrained -> constrained) of every continuous latent site, from an
    abstract trace; ``None`` when a support depends on traced values, or a site is discrete."""
    found: dict = {}

    def run(a):
        tr = trace(seed(numpyro_model, 0)).get_trace(*a)
        for name, site in tr.items():
            if site["type"] == "sample" and not site["is_observed"]:
                found[name] = site["fn"].support
        return 0

    jax.eval_shape(run, args)
    out = {}
    for name, support in found.items():
        if support.is_discrete:
            return None
        try:
            t = biject_to(support)
            leaves = jax.tree.leaves(vars(t)) + jax.tree.leaves(vars(support))
        except (TypeError, NotImplementedError):
            return None
        if any(isinstance(x, jax.core.Tracer) for x in leaves):
            return None                          # a support built from traced values: replay needed
        out[name] = t
    return out


def potential_fns(numpyro_model: Callable, transforms: dict) -> tuple[Callable, Callable]:
    """``(potential_fn_gen, postprocess_fn_gen)`` of ``args``, as ``initialize_model(dynamic_args=True)``
    gives them (deterministic sites replayed)."""
    return get_potential_fn(numpyro_model, transforms, replay_model=True, dynamic_args=True)


def median_start(numpyro_model: Callable, transforms: dict, key: jax.Array, args: tuple) -> dict:
    """One chain's start: every latent site at the median of 15 prior draws (``init_to_median``),
    on the unconstrained scale. Traceable, so it runs inside the kernel's jitted init."""
    tr = trace(substitute(seed(numpyro_model, key), substitute_fn=init_to_median)).get_trace(*args)
    return transform_fn(transforms, {k: tr[k]["value"] for k in transforms}, invert=True)


class Start(NamedTuple):
    """NUTS's kernel for one model and where each chain starts.

    ``names``: the latent sites, sorted (the order of a flat mass matrix). ``first`` holds per
    chain its key (``drawn``: the prior-median start is drawn inside
    ``init_one``) or its unconstrained values; ``init_one(first_c, rng_key, args)`` (traceable)
    gives the chain's initial ``HMCState``; ``sample_kernel``, ``potential_fn_gen`` and
    ``postprocess_fn_gen`` are NumPyro's (:func:`numpyro.infer.hmc.hmc`,
    :func:`numpyro.infer.util.initialize_model` with ``dynamic_args=True``).
    """

    names: tuple[str, ...]
    first: Any
    init_one: Callable
    sample_kernel: Callable
    potential_fn_gen: Callable
    postprocess_fn_gen: Callable
    drawn: bool


def kernel(numpyro_model: Callable, args: tuple, keys: jax.Array, *, searched: bool, tune: int,
           target_accept: float, dense_mass: bool, init: dict | None = None,
           inverse_mass: jax.Array | None = None) -> Start | None:
    """The :class:`Start` of chains with keys ``keys`` ``(..., 2)`` (any leading chain shape) of a
    model with arguments ``args`` (one data set's).

    ``searched=False``: starts drawn inside the jitted init (``None`` when :func:`sites` cannot
    read the supports); ``True``: NumPyro's ``initialize_model`` search for a valid start.
    ``init`` (unconstrained values, leading chain shape) replaces the prior-median start;
    ``inverse_mass`` (flat diagonal, sites sorted by name) warm-up's first mass matrix.
    """
    transforms = None
    if searched:
        init_params, potential_fn_gen, postprocess_fn_gen, _ = initialize_model(
            keys.reshape(-1, 2), numpyro_model, init_strategy=init_to_median, dynamic_args=True, model_args=args)
        names = tuple(sorted(init_params.z))
        first = jax.tree.map(lambda x: x.reshape(*keys.shape[:-1], *x.shape[1:]), init_params.z)
    else:
        transforms = sites(numpyro_model, args)
        if transforms is None:
            return None
        potential_fn_gen, postprocess_fn_gen = potential_fns(numpyro_model, transforms)
        names, first = tuple(sorted(transforms)), keys
    drawn = init is None and not searched
    first = first if init is None else init      # a plain pytree: the kernel computes its potential
    init_kernel, sample_kernel = hmc(potential_fn_gen=potential_fn_gen, algo="NUTS")
    structure = [names] if dense_mass else []
    imm = None if inverse_mass is None else {names: inverse_mass}

    def init_one(x, rng_key, a):
        params = median_start(numpyro_model, transforms, x, a) if drawn else x
        return init_kernel(params, num_warmup=tune, target_accept_prob=target_accept, dense_mass=structure,
                           inverse_mass_matrix=imm, model_args=a, rng_key=rng_key)

    return Start(names, first, init_one, sample_kernel, potential_fn_gen, postprocess_fn_gen, drawn)


def initial_state(numpyro_model: Callable, args: tuple, keys: jax.Array, run_keys: jax.Array, compile_init,
                  *, one: tuple | None = None, **options) -> tuple[Start, Any]:
    """``(start, state)``: the chains' initial ``HMCState``, ``compile_init(start.init_one)`` (the
    caller's jit and vmap over chains, or data sets and chains) applied to ``(start.first,
    run_keys, args)``.

    Starts are drawn inside the jitted init; NumPyro's search runs instead when the supports
    cannot be read or a drawn start has a non-finite potential. ``one``: the arguments of one
    data set when ``args`` are stacked (default ``args``); ``options`` go to :func:`kernel`.
    """
    one = args if one is None else one
    drawn = kernel(numpyro_model, one, keys, searched=False, **options)
    if drawn is not None:
        state = compile_init(drawn.init_one)(drawn.first, run_keys, args)
        if not drawn.drawn or bool(np.all(np.isfinite(np.asarray(state.potential_energy)))):
            return drawn, state
    searched = kernel(numpyro_model, one, keys, searched=True, **options)
    return searched, compile_init(searched.init_one)(searched.first, run_keys, args)
