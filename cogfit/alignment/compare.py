"""``align``: every divergence of every population from the reference, per posterior draw, next to
its split-half ceiling (vectorised over draws with :func:`jax.vmap`)."""

from __future__ import annotations

from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from cogfit._transforms import Transform
from cogfit.alignment.ceiling import location_scale, make_splits, part_posterior, split_of_draw
from cogfit.alignment.divergences import MEASURES, all_measures
from cogfit.alignment.members import standardised_energy
from cogfit.alignment.populations import ParamDraws, population_draws
from cogfit.alignment.refit import refit_parts
from cogfit.alignment.result import Alignment, summarise
from cogfit.inference import SVI

GROUP_MEASURES = MEASURES + ("shift",)
MEMBER_BATCH = 64          # draws per batch of the member-level pairwise distances


@lru_cache(maxsize=None)
def _measures_fn(transform: Transform, student: bool):
    """jit(vmap) of :func:`all_measures` over draws: ``(ma, sa, mb, sb[, nu]) (D,) -> {name: (D,)}``."""
    if student:
        return jax.jit(jax.vmap(lambda ma, sa, mb, sb, nu: all_measures(ma, sa, mb, sb, nu, transform=transform)))
    return jax.jit(jax.vmap(lambda ma, sa, mb, sb: all_measures(ma, sa, mb, sb, transform=transform)))


@lru_cache(maxsize=None)
def _location_scale_fn(student: bool):
    if student:
        return jax.jit(jax.vmap(location_scale))
    return jax.jit(jax.vmap(lambda u: location_scale(u)))


@jax.jit
def _energies(x, ref_idx, other_idx):
    """Per draw: standardised energy distance between members ``ref_idx[d]`` and ``other_idx[d]``
    of ``x[d]``; ``x (D, S, F)``, index arrays ``(D, n)`` and ``(D, m)``."""
    def one(args):
        xd, r, o = args
        return standardised_energy(xd[r], xd[o])
    return jax.lax.map(one, (x, ref_idx, other_idx), batch_size=MEMBER_BATCH)


def _group(pd_: ParamDraws, ma, sa, mb, sb) -> dict[str, np.ndarray]:
    nu = None if pd_.nu is None else jnp.asarray(pd_.nu)
    args = [jnp.asarray(a) for a in (ma, sa, mb, sb)] + ([] if nu is None else [nu])
    out = {k: np.asarray(v) for k, v in _measures_fn(pd_.transform, nu is not None)(*args).items()}
    out["shift"] = np.asarray((mb - ma) / sa)
    return out


def _part(pd_: ParamDraws, members: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-draw ``(mu, sigma)`` of a part of the reference given its ``members (D, n)``
    (unconstrained values; :func:`~cogfit.alignment.ceiling.part_posterior`)."""
    args = (jnp.asarray(members),) + (() if pd_.nu is None else (jnp.asarray(pd_.nu),))
    loc, scale = _location_scale_fn(pd_.nu is not None)(*args)
    mu, sigma = part_posterior(np.asarray(loc), np.asarray(scale), members.shape[1], pd_.nu, rng)
    return mu.astype(pd_.mu.dtype), sigma.astype(pd_.mu.dtype)


def _refit_draws(pd_: ParamDraws, refits: dict, which: np.ndarray):
    """Per comparison draw ``d``: split ``which[d]``'s refit, its draw ``(d // n_splits) mod draws``;
    ``(pd_ with the refit's nu where it fitted one, (mu_B, mu_A), (sigma_B, sigma_A))``."""
    if pd_.label != pd_.param:
        raise ValueError("ceiling='refit' compares parameters without a condition dim")
    mu, sigma = refits[f"{pd_.param}_mu"], refits[f"{pd_.param}_sigma"]   # (splits, draws, 2)
    k = (np.arange(len(which)) // mu.shape[0]) % mu.shape[1]
    if f"{pd_.param}_nu" in refits:
        pd_ = pd_._replace(nu=refits[f"{pd_.param}_nu"][which, k].astype(pd_.mu.dtype))
    m, s = mu[which, k].astype(pd_.mu.dtype), sigma[which, k].astype(pd_.mu.dtype)
    return pd_, (m[:, 0], m[:, 1]), (s[:, 0], s[:, 1])


def align(fit, reference: str = "human", *, params: list[str] | None = None, prob: float = 0.94,
          n_splits: int = 50, seed: int = 0, ceiling: str = "members", refit: SVI | None = None) -> Alignment:
    """How far each population's cognitive parameters are from the reference population's.

    Parameters
    ----------
    fit
        A :class:`~cogfit.Fit` with partial pooling and at least two populations (the data's
        ``population`` column).
    reference
        The reference population (e.g. ``"human"``).
    params
        Parameters compared (default all of the model's).
    prob
        Probability of the equal-tailed intervals (0.94: 3% each side).
    n_splits
        Random splits of the reference for the ceiling (:mod:`cogfit.alignment.ceiling`).
    seed
        Seed of the splits.
    ceiling
        Where the group-level ceiling's ``(mu, sigma)`` of each part come from: ``"members"``
        (the members' values in this fit, :mod:`cogfit.alignment.ceiling`; fast) or ``"refit"``
        (the reference fitted again as two populations per split, all splits in one vmapped SVI
        call, :mod:`cogfit.alignment.refit`; ``refit`` sets its options, default
        ``SVI(steps=2000, draws=200)``). The member-level ceiling always uses this fit.

    Returns
    -------
    Alignment
        Per parameter and compared population (group level, :mod:`cogfit.alignment.divergences`:
        ``w1``, ``js``, ``kl_ref_pop``, ``kl_pop_ref``, ``overlap`` and ``shift`` = (mu_pop -
        mu_ref) / sigma_ref) and per population over all parameters (``energy``,
        :mod:`cogfit.alignment.members`), each per posterior draw with its ceiling.
    """
    if not 0 < prob < 1:
        raise ValueError(f"prob must lie in (0, 1), not {prob!r}")
    if n_splits < 1:
        raise ValueError(f"n_splits must be >= 1, not {n_splits!r}")
    if ceiling not in ("members", "refit"):
        raise ValueError(f"ceiling must be 'members' or 'refit', not {ceiling!r}")
    order = list(fit.data.populations)
    if reference not in order:
        raise ValueError(f"reference {reference!r} is not a population of the fit; populations are {order}")
    if len(order) < 2:
        raise ValueError(f"alignment needs at least two populations; the fit has {order}")
    draws = population_draws(fit, params)
    pop_of = np.asarray(fit.data.population)
    r = order.index(reference)
    ref_members = np.flatnonzero(pop_of == r)
    compared = [g for g in order if g != reference]
    D = draws[0].mu.shape[0]
    which = split_of_draw(D, n_splits)
    x = np.stack([p.members for p in draws], axis=-1)                     # (D, S, F)
    group = {m: np.empty((len(draws), len(compared), D)) for m in GROUP_MEASURES}
    ceil = {m: np.empty_like(v) for m, v in group.items()}
    energy, energy_ceiling = np.empty((len(compared), D)), np.empty((len(compared), D))
    parts = {}
    rng = np.random.default_rng([seed, 1])
    for j, pop in enumerate(compared):
        members = np.flatnonzero(pop_of == order.index(pop))
        splits = make_splits(ref_members, len(members), n_splits, seed + j)
        a, b = splits.a[which], splits.b[which]                           # (D, m), (D, N - m)
        refits = (refit_parts(fit, reference, splits, method=refit or SVI(steps=2000, draws=200), seed=seed + j)
                  if ceiling == "refit" else None)
        for i, pd_ in enumerate(draws):
            g = order.index(pop)
            for m, v in _group(pd_, pd_.mu[:, r], pd_.sigma[:, r], pd_.mu[:, g], pd_.sigma[:, g]).items():
                group[m][i, j] = v
            rows = np.arange(D)[:, None]
            if refits is None:
                loc_a, sc_a = _part(pd_, pd_.members[rows, a], rng)
                loc_b, sc_b = _part(pd_, pd_.members[rows, b], rng)
            else:
                pd_, (loc_b, loc_a), (sc_b, sc_a) = _refit_draws(pd_, refits, which)
            parts[pd_.label, pop] = (loc_a, sc_a)
            for m, v in _group(pd_, loc_b, sc_b, loc_a, sc_a).items():
                ceil[m][i, j] = v
        xj = jnp.asarray(x)
        energy[j] = np.asarray(_energies(xj, jnp.broadcast_to(jnp.asarray(ref_members), (D, len(ref_members))),
                                         jnp.broadcast_to(jnp.asarray(members), (D, len(members)))))
        energy_ceiling[j] = np.asarray(_energies(xj, jnp.asarray(b), jnp.asarray(a)))
    coords = {"param": [p.label for p in draws], "population": compared, "draw": np.arange(D)}
    ds = xr.Dataset(
        {**{m: (("param", "population", "draw"), v) for m, v in group.items()},
         **{f"{m}_ceiling": (("param", "population", "draw"), v) for m, v in ceil.items()},
         "energy": (("population", "draw"), energy), "energy_ceiling": (("population", "draw"), energy_ceiling)},
        coords=coords)
    return Alignment(table=summarise(ds, draws, order, reference, prob), draws=ds, reference=reference,
                     prob=prob, params=tuple(draws), order=tuple(order), parts=parts,
                     split_size={pop: int(min((pop_of == order.index(pop)).sum(), len(ref_members) // 2))
                                 for pop in compared}, ceiling=ceiling)
