"""Stochastic variational inference: Adam on the ELBO of an autoguide, then draws from the guide.

The core is pure (:func:`optimise`, :func:`guide_draws`): functions of the NumPyro model, its
argument arrays and a key, run in compiled blocks of ``BLOCK`` Adam steps, so that many data
sets of one shape are fitted by the same functions under :func:`jax.vmap`
(:func:`cogfit.fit_batch`). The guide starts from the prior median found with a fixed key, so
a fit depends on its seed only through the ELBO's Monte-Carlo draws and the posterior draws.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import ClassVar, Literal

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import optax
from numpyro.infer import SVI as _NumPyroSVI
from numpyro.infer import Predictive, Trace_ELBO, autoguide, init_to_median
from tqdm import tqdm

from cogfit._data import TrialData
from cogfit._hierarchy import Hierarchy, default_centring, model_args
from cogfit._model import Model
from cogfit.inference.base import Draws, centring_info, check_centered, one_of, positive, positive_int, settings

BLOCK = 250          # Adam steps per compiled call (progress granularity)
GUIDES = ("normal", "lowrank")


class _Laplace(autoguide.AutoLaplaceApproximation):
    """NumPyro's Laplace guide, with the Hessian taken on the data it samples for (NumPyro's keeps
    the data it was first called with, which is wrong for every other data set of a batch)."""

    def sample_posterior(self, rng_key, params, *args, sample_shape=(), **kwargs):
        def loss(p):
            return Trace_ELBO().loss(jax.random.PRNGKey(0), p, self.model, self, *args, **kwargs)

        self._loss_fn = loss
        return super().sample_posterior(rng_key, params, *args, sample_shape=sample_shape, **kwargs)


def make_guide(kind: str, numpyro_model: Callable):
    """The autoguide ``kind`` (``"normal"``, ``"lowrank"``, ``"laplace"``) of ``numpyro_model``."""
    cls = {"normal": autoguide.AutoNormal, "lowrank": autoguide.AutoLowRankMultivariateNormal,
           "laplace": _Laplace}[kind]
    return cls(numpyro_model, init_loc_fn=init_to_median)


def make_svi(numpyro_model: Callable, guide, learning_rate: float, args: tuple) -> _NumPyroSVI:
    """NumPyro's SVI object with Adam; the guide's starting point (prior median) is set up here,
    with a fixed key, from one data set's ``args`` (unbatched)."""
    with numpyro.handlers.seed(rng_seed=0):
        guide(*args)
    return _NumPyroSVI(numpyro_model, guide, numpyro.optim.optax_to_numpyro(optax.adam(learning_rate)),
                       Trace_ELBO())


def _block(svi: _NumPyroSVI) -> Callable:
    """``(state, args, n_active) -> (state, losses (BLOCK,))``: ``BLOCK`` steps, the first ``n_active`` real."""

    def block(state, args, n_active):
        def body(s, j):
            new, loss = svi.update(s, *args)
            keep = j < n_active
            return jax.tree.map(lambda a, b: jnp.where(keep, a, b), new, s), jnp.where(keep, loss, jnp.nan)

        return jax.lax.scan(body, state, jnp.arange(BLOCK))

    return block


def programs(svi: _NumPyroSVI, batched: bool = False) -> tuple[Callable, Callable]:
    """The jitted ``(init (key, args) -> state, block)`` of :func:`optimise` (``batched``: vmapped
    over a leading data-set axis). Reusing them for arrays of the same shapes reuses their
    compiled programs (a fresh ``jax.jit`` of a fresh closure compiles again)."""
    def init(k, a):
        return svi.init(k, *a)

    block = _block(svi)
    if batched:
        init, block = jax.vmap(init), jax.vmap(block, in_axes=(0, 0, None))
    return jax.jit(init), jax.jit(block)


def optimise(svi: _NumPyroSVI, args: tuple, *, key: jax.Array, steps: int, progress: bool,
             batched: bool = False, label: str = "svi",
             compiled: tuple[Callable, Callable] | None = None) -> tuple[dict, np.ndarray]:
    """``steps`` of Adam from ``svi.init(key, *args)``: ``(params, losses (steps,))``.

    ``batched``: ``key`` ``(D, 2)`` and every array of ``args`` carry a leading data-set axis;
    the same steps run for all data sets at once (``jax.vmap``), giving ``params`` and
    ``losses (D, steps)`` with that axis. ``compiled``: :func:`programs` of ``svi`` (made here
    when None).
    """
    init, block = programs(svi, batched) if compiled is None else compiled
    state = init(key, args)
    losses = []
    with tqdm(total=steps, disable=not progress, desc=label, unit="step", dynamic_ncols=True) as bar:
        done = 0
        while done < steps:
            n = min(BLOCK, steps - done)
            state, loss = block(state, args, n)
            loss = np.asarray(loss)[..., :n]
            losses.append(loss)
            done += n
            bar.update(n)
            bar.set_postfix_str(f"loss {np.nanmean(loss[..., -1]):.4g}", refresh=False)
    return svi.get_params(state) if not batched else jax.vmap(svi.get_params)(state), np.concatenate(losses, -1)


def guide_draws(numpyro_model: Callable, guide, params: dict, args: tuple, *, key: jax.Array, draws: int,
                point: bool = False) -> dict[str, jax.Array]:
    """Latent and deterministic sites ``(draws, ...)`` from the fitted guide (``point``: the
    guide's median alone, ``(1, ...)``); the ``loglik`` factor is left out."""
    if point:
        latent = {k: v[None] for k, v in guide.median(params).items()}
    else:
        latent = guide.sample_posterior(key, params, *args, sample_shape=(draws,))
    out = Predictive(numpyro_model, posterior_samples=latent)(key, *args)
    return {k: v for k, v in {**latent, **out}.items() if k != "loglik"}


def check_loss(losses: np.ndarray, kind: str, steps: int) -> None:
    last = np.asarray(losses)[..., -1]
    if not np.all(np.isfinite(last)):
        bad = "" if last.ndim == 0 else f" (data sets {np.flatnonzero(~np.isfinite(last)).tolist()[:10]})"
        raise FloatingPointError(f"{kind}: the loss is not finite after {steps} steps{bad}; lower "
                                 "learning_rate or check the data")


@dataclasses.dataclass(frozen=True)
class Optimised:
    """What :class:`SVI` and :class:`~cogfit.MAP` share: ``steps`` of Adam (``learning_rate``) on
    an autoguide's ELBO, then ``draws`` draws (one "chain"), with centred subject effects where
    ``centered`` says (``None``: subjects with at least 100 trials; a bool; a bool array ``(S,)``
    or ``(S, P)``; it changes the guide's family, not the posterior)."""

    steps: int = 5000
    learning_rate: float = 0.01
    draws: int = 1000
    centered: bool | np.ndarray | None = None

    def __post_init__(self):
        owner = type(self).__name__
        positive_int(owner, "steps", self.steps)
        positive(owner, "learning_rate", self.learning_rate)
        positive_int(owner, "draws", self.draws)
        check_centered(owner, self.centered, allow_auto=False)

    def settings(self) -> dict:
        return settings(self)


@dataclasses.dataclass(frozen=True)
class SVI(Optimised):
    """Stochastic variational inference: ``steps`` of Adam (``learning_rate``) on the ELBO of a
    ``guide`` over the unconstrained latent space, then ``draws`` posterior draws from it.

    Attributes
    ----------
    steps, learning_rate, draws, centered
        See :class:`Optimised`.
    guide
        ``"normal"`` (mean-field normal: fast, underestimates posterior correlations and often
        the spread) or ``"lowrank"`` (multivariate normal with a low-rank plus diagonal covariance).
    """

    guide: Literal["normal", "lowrank"] = "normal"
    name: ClassVar[str] = "svi"

    def __post_init__(self):
        super().__post_init__()
        one_of("SVI", "guide", self.guide, GUIDES)

    def run(self, model: Model, data: TrialData, hierarchy: Hierarchy, *, seed: int, progress: bool) -> Draws:
        return run_guide(self, self.guide, model, data, hierarchy, key=jax.random.PRNGKey(seed), progress=progress)


def run_guide(method, kind: str, model: Model, data: TrialData, hierarchy: Hierarchy, *, key: jax.Array,
              progress: bool, point: bool = False) -> Draws:
    """SVI or MAP (``kind`` the autoguide) of one data set."""
    mask = default_centring(model, data, method.centered)
    numpyro_model = hierarchy.build(model, data, mask)
    args = model_args(data)
    guide = make_guide(kind, numpyro_model)
    svi = make_svi(numpyro_model, guide, method.learning_rate, args)
    k_fit, k_draw = jax.random.split(key)
    params, losses = optimise(svi, args, key=k_fit, steps=method.steps, progress=progress, label=method.name)
    check_loss(losses, method.name, method.steps)
    out = jax.jit(lambda p, a, k: guide_draws(numpyro_model, guide, p, a, key=k, draws=method.draws,
                                              point=point))(params, args, k_draw)
    samples = {k: np.asarray(v)[None] for k, v in out.items()}
    info = dict(steps=method.steps, learning_rate=method.learning_rate, final_loss=float(losses[-1]),
                guide="delta" if point else kind, **centring_info(model, mask))
    return Draws(samples, {}, info)
