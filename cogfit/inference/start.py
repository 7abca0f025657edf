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

import jax
from numpyro.distributions.transforms import biject_to
from numpyro.handlers import seed, substitute, trace
from numpyro.infer import init_to_median
from numpyro.infer.util import get_potential_fn, transform_fn

__all__ = ["median_start", "potential_fns", "sites"]


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
