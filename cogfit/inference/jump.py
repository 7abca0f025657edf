"""Mode-jump moves between NUTS transitions, for posteriors with separated modes.

NUTS follows Hamiltonian trajectories, so it crosses a valley of low density between two modes
only when a trajectory happens to carry enough energy in the right direction: a subject whose
choices fit a slow and a fast learner about equally well, with a valley of a few nats between,
can keep a chain in one regime for hundreds of draws, and R-hat stays above 1.01
(``benchmarks/RESULTS.md``, dezfouli). A *mode-jump* move
proposes ``z' = z + s d`` (``s = +-1`` with equal probability, ``d`` a displacement from one mode
to the other on the unconstrained scale) and accepts it with probability
``min(1, p(z') / p(z))``. The proposal is symmetric, so the move leaves the posterior unchanged
(Metropolis); NUTS in between explores within each mode (Tjelmeland & Hegstad 2001, Scand. J.
Stat. 28:205, "mode jumping"; Sminchisescu & Welling 2011). Several moves (one per subject) are
tried one after another after every NUTS iteration once warm-up is over, and the coordinates
they move get a wider diagonal mass for NUTS (:func:`cogfit.inference.chains.widen_mass`).

A displacement may depend on the state only through coordinates that no move changes (for a
non-centred subject value ``u = mu + sigma z`` a jump of ``d`` in ``u`` is ``d / sigma`` in
``z``): the reverse move then has the same size and the proposal stays symmetric.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.distributions.transforms import biject_to

from cogfit._data import TrialData
from cogfit._hierarchy import subject_sites
from cogfit._model import Model


def with_jumps(sample_kernel: Callable, potential_fn_gen: Callable, jumps: Callable[[dict], dict]) -> Callable:
    """NumPyro's ``sample_kernel`` (``hmc(...)[1]``) followed by mode-jump moves (after
    warm-up only: :func:`cogfit.inference.chains.sample` switches to this kernel when warm-up is over).

    ``jumps(z)`` maps the unconstrained latent values ``z`` (a dict of arrays) to displacements:
    a dict with the same keys, each array with a leading axis of length ``J`` (one row per move).
    The moves are tried in order, each accepted or rejected on its own (Metropolis); the
    potential energy, its gradient and the trajectory's energy are updated to the final ``z``.
    """

    def kernel(state, model_args=()):
        return jump(sample_kernel(state, model_args=model_args), model_args)

    def jump(state, model_args):
        potential = potential_fn_gen(*model_args)
        d = jumps(state.z)
        n = jax.tree.leaves(d)[0].shape[0]

        def move(carry, j):
            z, pe, key = carry
            key, k_sign, k_u = jax.random.split(key, 3)
            sign = jnp.where(jax.random.bernoulli(k_sign), 1.0, -1.0)
            proposal = jax.tree.map(lambda x, dx: x + sign * dx[j], z, d)
            pe_new = potential(proposal)
            ok = jnp.isfinite(pe_new) & (jnp.log(jax.random.uniform(k_u)) < pe - pe_new)
            z = jax.tree.map(lambda a, b: jnp.where(ok, a, b), proposal, z)
            return (z, jnp.where(ok, pe_new, pe), key), ok

        (z, pe, key), accepted = jax.lax.scan(move, (state.z, state.potential_energy, state.rng_key), jnp.arange(n))
        grad = jax.lax.cond(jnp.any(accepted), jax.grad(potential), lambda _: state.z_grad, z)
        return state._replace(z=z, z_grad=grad, potential_energy=pe,
                              energy=state.energy + pe - state.potential_energy, rng_key=key)

    return kernel


def subject_jumps(model: Model, data: TrialData, centred: np.ndarray, pooling: str | Mapping[str, str],
                  jumps: Mapping[object, Mapping[str, float]]) -> Callable[[dict], dict]:
    """``jumps(z)`` for :func:`with_jumps` from displacements of subjects' parameters.

    ``jumps`` maps a subject id (as in ``data.subjects``, or its ``str``) to ``{parameter: d}``,
    ``d`` on the parameter's unconstrained scale (logit of a rate, log of a positive value);
    parameters not named do not move. ``centred`` is the ``(S, P)`` centring mask of the model
    being sampled: a centred value moves by ``d``, a non-centred ``z`` by ``d / sigma`` of the
    subject's population (all of a parameter's conditions alike).
    """
    pooling = {p: pooling for p in model.param_names} if isinstance(pooling, str) else dict(pooling)
    if not jumps:
        raise ValueError("jumps is empty")
    index = {k: i for i, s in enumerate(data.subjects) for k in (str(s), s)}   # ids as in meta["jumps"] too
    names = model.param_names
    population = np.asarray(data.population)
    moves = []                  # per jump: (population, [(site, position in site, param, d, centred)])
    for subject, d in jumps.items():
        if subject not in index:
            raise KeyError(f"jumps: subject {subject!r} is not in the data")
        unknown = set(d) - set(names)
        if unknown:
            raise KeyError(f"jumps: subject {subject!r}: no parameters {sorted(unknown)} in {model.name!r} "
                           f"(parameters: {list(names)})")
        i, row = index[subject], []
        for j, p in enumerate(names):
            if p not in d:
                continue
            if pooling[p] == "complete":
                raise ValueError(f"jumps move subjects' own values; parameter {p!r} with pooling='complete' has none")
            sites = (((f"{p}_u", True, np.arange(data.n_subjects)),) if pooling[p] == "none"
                     else subject_sites(p, centred[:, j]))
            for site, is_centred, members in sites:
                hit = np.flatnonzero(members == i)
                if len(hit):
                    row.append((site, int(hit[0]), p, float(d[p]), is_centred))
        moves.append((int(population[i]), row))
    sd_support = {p.name: p.sd_prior.support for p in model.params}

    def displacements(z: dict) -> dict:
        out = {k: jnp.zeros((len(moves), *jnp.shape(v)), jnp.result_type(v)) for k, v in z.items()}
        for j, (g, row) in enumerate(moves):
            for site, k, p, dp, is_centred in row:
                if is_centred:
                    step = dp
                else:
                    step = dp / biject_to(sd_support[p])(z[f"{p}_sigma"])[g]   # () or (C,)
                out[site] = out[site].at[j, k].add(step)
        return out

    return displacements
