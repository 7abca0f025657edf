"""Start NUTS from a mean-field SVI fit (as PyMC's ``init="advi+adapt_diag"``).

NumPyro's warm-up starts every chain at the prior median with a unit diagonal mass matrix. On a
hierarchical model whose posterior scales differ by orders of magnitude (a learning rate's
logit known to +-1.5, a perseveration weight to +-0.05) the first adaptation window (75
iterations) then runs at up to 1023 leapfrog steps per iteration. A short SVI fit with a
mean-field normal guide on the same unconstrained space gives better starting points (one draw
from the guide per chain, so chains still start apart) and a diagonal inverse mass matrix (the
guide's variances) that the usual windowed adaptation then refines.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import optax
from jax.flatten_util import ravel_pytree
from numpyro.infer import SVI, Trace_ELBO, autoguide, init_to_median


def pilot(numpyro_model: Callable, args: tuple, *, key: jax.Array, steps: int, learning_rate: float,
          progress: bool) -> tuple[dict, dict, float]:
    """``(loc, scale, final_loss)``: a mean-field normal guide fitted by ``steps`` of Adam.

    ``loc`` and ``scale`` map each latent site to its guide mean and sd on the unconstrained scale.
    """
    guide = autoguide.AutoNormal(numpyro_model, init_loc_fn=init_to_median)
    svi = SVI(numpyro_model, guide, numpyro.optim.optax_to_numpyro(optax.adam(learning_rate)), Trace_ELBO())
    result = svi.run(key, steps, *args, progress_bar=progress)
    loss = float(result.losses[-1])
    if not np.isfinite(loss):
        raise FloatingPointError(f"the SVI pilot (init='svi' or centered='auto') ends at an ELBO loss of "
                                 f"{loss} after {steps} steps; lower learning_rate, or use init='median' "
                                 "and centered=None")
    sites = sorted(k[: -len("_auto_loc")] for k in result.params if k.endswith("_auto_loc"))
    loc = {s: result.params[f"{s}_auto_loc"] for s in sites}
    scale = {s: result.params[f"{s}_auto_scale"] for s in sites}
    return loc, scale, loss


def svi_start(numpyro_model: Callable, args: tuple, *, key: jax.Array, chains: int, steps: int,
              learning_rate: float, progress: bool) -> tuple[dict, jax.Array, float]:
    """``(init, inverse_mass, final_loss)`` from ``steps`` of Adam on the ELBO (:func:`pilot`).

    ``init`` maps each latent site to ``(chains, *site_shape)`` unconstrained values;
    ``inverse_mass`` is the flat diagonal ``(n_latent,)`` in NumPyro's order (sites sorted by
    name, each raveled), the layout :func:`numpyro.infer.hmc.hmc`'s ``init_kernel`` takes under
    the key ``tuple(sorted(sites))``.
    """
    k_fit, k_draw = jax.random.split(key)
    loc, scale, loss = pilot(numpyro_model, args, key=k_fit, steps=steps, learning_rate=learning_rate,
                             progress=progress)
    sites = sorted(loc)
    keys = jax.random.split(k_draw, len(sites))
    init = {s: loc[s] + scale[s] * jax.random.normal(k, (chains, *jnp.shape(loc[s])))
            for s, k in zip(sites, keys)}
    inverse_mass = ravel_pytree(tuple(scale[s] ** 2 for s in sites))[0]
    return init, inverse_mass, loss
