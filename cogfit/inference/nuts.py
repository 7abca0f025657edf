"""The No-U-Turn sampler, composed of optional steps around NumPyro's NUTS kernel.

``NUTS.run`` is the road: (population blocks: each population on its own, :mod:`.blocks`) ->
(centring chosen from an SVI pilot, ``centered="auto"``) -> (start from an SVI fit,
``init="svi"``, :mod:`.warmstart`) -> warm-up and sampling of all chains (:mod:`.chains`) with
(mode-jump moves found after warm-up or given, :mod:`.modes`, :mod:`.jump`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import ClassVar, Literal

import jax
import numpy as np

from cogfit._data import TrialData
from cogfit._hierarchy import Hierarchy, centring_from_guide, default_centring, model_args
from cogfit._model import Model
from cogfit.inference import blocks, chains
from cogfit.inference.base import Draws, centring_info, check_centered, one_of, positive_int, settings
from cogfit.inference.chains import sampler_stats
from cogfit.inference.jump import subject_jumps
from cogfit.inference.modes import find_jumps, population_means
from cogfit.inference.svi import SVI
from cogfit.inference.warmstart import pilot, svi_start

CHAIN_METHODS = ("sequential", "vectorized", "parallel")


def default_chain_method(n_chains: int) -> str:
    """Parallel across devices (in rounds when there are fewer devices than chains); on a single
    device, sequential on a CPU and vectorised on an accelerator.

    Vectorised chains move in lockstep, so every iteration costs the longest trajectory of the
    batch, and on a CPU a batch of 4 gradients costs about 4 single ones, so sequential chains
    are faster there; a GPU batches them nearly free. One chain keeps one CPU core busy: to run
    chains on several cores, give JAX one CPU device per core before it starts
    (``jax.config.update("jax_num_cpu_devices", n)``; the ``cogfit`` command does it).
    """
    devices, cpu = jax.local_device_count(), jax.default_backend() == "cpu"
    if n_chains > 1 and devices > 1 and (cpu or devices >= n_chains):
        return "parallel"
    return "sequential" if cpu else "vectorized"


@dataclasses.dataclass(frozen=True)
class NUTS:
    """NumPyro's NUTS with ``tune`` warm-up and ``draws`` kept iterations per chain.

    Attributes
    ----------
    draws, tune, chains
        Kept iterations, warm-up iterations (step size and mass matrix adaptation) and chains.
    target_accept
        Target acceptance probability of warm-up's step-size adaptation (0 < x < 1): higher
        means smaller steps, fewer divergences, longer trajectories.
    dense_mass
        Adapt a dense mass matrix (learns posterior correlations) instead of a diagonal one.
    chain_method
        ``"parallel"`` (one chain per device, in rounds), ``"sequential"`` or ``"vectorized"``;
        ``None`` picks :func:`default_chain_method`. A CPU is one JAX device unless
        ``jax.config.update("jax_num_cpu_devices", n)`` runs before any JAX work.
    init
        ``"median"`` (every chain at the prior median, unit mass matrix) or ``"svi"`` (each chain
        at its own draw from a mean-field SVI fit, ``pilot``, whose variances start warm-up's
        diagonal inverse mass matrix): shortens warm-up on large hierarchical models.
    centered
        Centred subject effects (``u ~ N(mu, sigma)``) instead of non-centred ones
        (``mu + sigma * z``). ``"auto"`` (the default; used with partial pooling): per subject and
        parameter from a mean-field SVI ``pilot``, centred where the pilot's posterior sd of the
        subject's unconstrained value is below ``CENTRE_BELOW`` (0.35) times ``sigma``, i.e. where
        the subject's own data clearly dominate its population (``benchmarks/robustness.py``);
        ``None`` for subjects with at least 100 trials; a bool for all or none; a bool array per
        subject ``(S,)`` or per subject and parameter ``(S, P)`` (``model.params`` order). The
        same posterior, another geometry.
    jumps
        Mode-jump moves for subjects whose posterior has two separated modes: ``{subject:
        {parameter: d}}`` with ``d`` the displacement between the modes on the unconstrained
        scale, proposed at ``+-d`` after every iteration past warm-up and accepted by Metropolis
        (the posterior is unchanged). ``"auto"`` (partial pooling, no ``by_condition``) finds
        them after warm-up by optimising each subject under its population from several starts.
    blocks
        ``"joint"`` (one NUTS run on the whole posterior) or ``"population"`` (each population
        alone, draws joined: the same posterior when populations share no parameter, i.e. a
        normal population or a fixed ``nu``; every population gets its own warm-up, pilot and
        mode search).
    pilot
        The SVI settings of ``init="svi"`` and ``centered="auto"`` (a mean-field ``SVI``;
        ``steps`` and ``learning_rate`` are used).
    """

    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    target_accept: float = 0.9
    dense_mass: bool = False
    chain_method: Literal["sequential", "vectorized", "parallel"] | None = None
    init: Literal["median", "svi"] = "median"
    centered: bool | np.ndarray | Literal["auto"] | None = "auto"
    jumps: Mapping[object, Mapping[str, float]] | Literal["auto"] | None = None
    blocks: Literal["joint", "population"] = "joint"
    pilot: SVI = SVI(steps=5000, learning_rate=0.01)
    name: ClassVar[str] = "nuts"

    def __post_init__(self):
        positive_int("NUTS", "draws", self.draws)
        positive_int("NUTS", "tune", self.tune, minimum=0)
        positive_int("NUTS", "chains", self.chains)
        t = self.target_accept
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t < 1:
            raise ValueError(f"NUTS: target_accept must be a number between 0 and 1, not {t!r}")
        if not isinstance(self.dense_mass, bool):
            raise ValueError(f"NUTS: dense_mass must be True or False, not {self.dense_mass!r}")
        if self.chain_method is not None:
            one_of("NUTS", "chain_method", self.chain_method, CHAIN_METHODS)
        one_of("NUTS", "init", self.init, ("median", "svi"))
        check_centered("NUTS", self.centered, allow_auto=True)
        if not (self.jumps is None or self.jumps == "auto" or isinstance(self.jumps, Mapping)):
            raise ValueError(f"NUTS: jumps must be None, 'auto' or a mapping {{subject: {{parameter: d}}}}, "
                             f"not {self.jumps!r}")
        if isinstance(self.jumps, Mapping) and not self.jumps:
            raise ValueError("NUTS: jumps is empty (use None for no moves)")
        one_of("NUTS", "blocks", self.blocks, ("joint", "population"))
        if not isinstance(self.pilot, SVI) or self.pilot.guide != "normal":
            raise ValueError(f"NUTS: pilot must be a mean-field cogfit.SVI(guide='normal', ...), not {self.pilot!r}")

    def settings(self) -> dict:
        return settings(self)

    def run(self, model: Model, data: TrialData, hierarchy: Hierarchy, *, seed: int, progress: bool) -> Draws:
        """Sample the posterior of ``hierarchy`` around ``model`` given ``data``."""
        auto_jumps = self.jumps == "auto"
        if auto_jumps and (not hierarchy.all_partial(model) or hierarchy.by_condition or hierarchy.formulas):
            raise ValueError(f"NUTS(jumps='auto') finds modes under each subject's population, so it needs "
                             f"Hierarchy(pooling='partial') without by_condition or formulas (here {hierarchy})")
        if self.blocks == "population":
            if not hierarchy.factorises:
                raise ValueError("NUTS(blocks='population') samples each population alone, the same posterior "
                                 "only when populations share no parameter: with population='student_t' it "
                                 "needs a fixed nu, e.g. Hierarchy(population='student_t', nu=4)")
            return self._by_population(model, data, hierarchy, seed=seed, progress=progress)
        key = jax.random.PRNGKey(seed)
        auto = isinstance(self.centered, str)
        mask = default_centring(model, data, None if auto else self.centered)
        numpyro_model = hierarchy.build(model, data, mask)
        args = model_args(data)
        info: dict = {}
        if isinstance(self.jumps, Mapping):   # bad subjects or parameters are refused before the pilot
            subject_jumps(model, data, mask, hierarchy.poolings(model), self.jumps)
        if auto and hierarchy.any_partial(model):
            key, k_pilot = jax.random.split(key)
            loc, scale, loss = pilot(numpyro_model, args, key=k_pilot, steps=self.pilot.steps,
                                     learning_rate=self.pilot.learning_rate, progress=progress)
            mask = centring_from_guide(model, data, mask, loc, scale)
            numpyro_model = hierarchy.build(model, data, mask)
            info.update(centring_pilot_loss=loss)
        info.update(centring_info(model, mask))
        after_warmup = None
        if auto_jumps:
            key, k_modes = jax.random.split(key)
            after_warmup = _search(model, data, hierarchy, mask, k_modes, info)
        elif self.jumps is not None:
            info.update(jumps={str(s): {p: float(v) for p, v in d.items()} for s, d in self.jumps.items()})
            moves = subject_jumps(model, data, mask, hierarchy.poolings(model), self.jumps)   # errors before sampling

            def after_warmup(warm: dict):
                return moves
        chain_method = self.chain_method or default_chain_method(self.chains)
        start, inverse_mass = None, None
        if self.init == "svi":
            key, k_init = jax.random.split(key)
            start, inverse_mass, loss = svi_start(numpyro_model, args, key=k_init, chains=self.chains,
                                                  steps=self.pilot.steps, learning_rate=self.pilot.learning_rate,
                                                  progress=progress)
            info.update(init_steps=self.pilot.steps, init_learning_rate=self.pilot.learning_rate, init_loss=loss)
        samples, raw = chains.sample(numpyro_model, args, key=key, chains=self.chains, tune=self.tune,
                                     draws=self.draws, target_accept=self.target_accept,
                                     dense_mass=self.dense_mass, chain_method=chain_method, progress=progress,
                                     init=start, inverse_mass=inverse_mass, jumps=after_warmup)
        stats = sampler_stats(raw)
        info.update(self.sampler_info(chain_method))
        return Draws(samples, stats, info)

    def sampler_info(self, chain_method: str) -> dict:
        """How the chains ran, as a fit's metadata records it."""
        return dict(chain_method=chain_method, tune=self.tune, target_accept=self.target_accept,
                    dense_mass=self.dense_mass, init=self.init)

    def _by_population(self, model: Model, data: TrialData, hierarchy: Hierarchy, *, seed: int,
                       progress: bool) -> Draws:
        """Each population alone (:mod:`.blocks`), joined."""

        def one(part: TrialData, part_seed: int, split: dict) -> Draws:
            if progress:
                print(f"population {part.populations[0]!r}: {part.n_subjects} subjects", flush=True)
            return dataclasses.replace(self, blocks="joint", **split).run(model, part, hierarchy, seed=part_seed,
                                                                           progress=progress)

        parts, runs = blocks.run(one, data, seed, dict(centered=self.centered, jumps=self.jumps))
        return blocks.join(parts, runs, data)


def _search(model: Model, data: TrialData, hierarchy: Hierarchy, mask: np.ndarray, key: jax.Array, info: dict):
    """``after_warmup`` of ``jumps="auto"``: the moves found under the populations of the last
    warm-up draws of all chains (recorded in ``info``)."""

    def after_warmup(warm: dict):
        t0 = time.perf_counter()
        loc = {k: np.mean(v, axis=(0, 1)) for k, v in warm.items()}
        found = find_jumps(model, data, *population_means(model, loc, hierarchy.population, hierarchy.nu), key=key)
        info.update(jumps={str(s): d for s, d in found.items()}, jumps_auto=True,
                    jumps_search_s=round(time.perf_counter() - t0, 1))
        return subject_jumps(model, data, mask, hierarchy.poolings(model), found) if found else None

    return after_warmup
