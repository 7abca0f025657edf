"""``fit(model, data, method=...)``: NUTS, SVI or MAP(+Laplace) on the hierarchical model.

Thin and functional: everything a fit depends on is an argument; the result is a :class:`Fit`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import optax
from numpyro.infer import SVI, Predictive, Trace_ELBO, autoguide, init_to_median

from cogfit import _blocks, _fit, _nuts
from cogfit._data import TrialData
from cogfit._hierarchy import Pooling, Population, build, centring_from_guide, centring_mask, model_args
from cogfit._jump import subject_jumps
from cogfit._model import Model
from cogfit._modes import find_jumps, population_means
from cogfit._warmstart import pilot, svi_start
from cogfit.models import get

Method = Literal["nuts", "svi", "map"]
CENTERED_MIN_TRIALS = 100


def _chain_method(chains: int) -> str:
    """Parallel across devices (in rounds when there are fewer devices than chains); on a single
    device, sequential on a CPU and vectorised on an accelerator.

    Vectorised chains move in lockstep, so every iteration costs the longest trajectory of
    the batch, and on a CPU a batch of 4 gradients costs 4 single ones (spektor, 73k trials:
    13.7 vs 3.5 ms), so sequential chains are faster there; a GPU batches them nearly free.
    One chain keeps one CPU core busy: to run chains on several cores, give JAX one CPU device
    per core before it starts (``jax.config.update("jax_num_cpu_devices", n)``; the ``cogfit``
    command does it).
    """
    devices, cpu = jax.local_device_count(), jax.default_backend() == "cpu"
    if chains > 1 and devices > 1 and (cpu or devices >= chains):
        return "parallel"
    return "sequential" if cpu else "vectorized"


def fit(
    model: Model | str,
    data: TrialData,
    *,
    method: Method = "nuts",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = 0,
    pooling: Pooling = "partial",
    population: Population = "normal",
    nu: float | None = None,
    by_condition: Sequence[str] = (),
    centered: bool | np.ndarray | Literal["auto"] | None = None,
    blocks: Literal["joint", "population"] = "joint",
    dense_mass: bool = False,
    target_accept: float = 0.9,
    chain_method: Literal["vectorized", "parallel", "sequential"] | None = None,
    init: Literal["median", "svi"] = "median",
    jumps: Mapping[object, Mapping[str, float]] | Literal["auto"] | None = None,
    steps: int = 5000,
    learning_rate: float = 0.01,
    guide: Literal["normal", "lowrank"] = "normal",
    laplace: bool = True,
    log_likelihood: bool = False,
    posterior_predictive: bool = False,
    progress: bool = True,
    warn: bool = True,
) -> "_fit.Fit":
    """Fit ``model`` hierarchically to ``data``.

    Parameters
    ----------
    model
        A :class:`Model` or a registered name.
    data
        Packed trials (:meth:`TrialData.from_table`).
    method
        ``"nuts"`` (NumPyro NUTS; ``tune`` warm-up and ``draws`` draws per chain),
        ``"svi"`` (``steps`` of Adam on the ELBO with a mean-field ``"normal"`` or
        ``"lowrank"`` multivariate-normal guide; ``draws`` posterior draws from the guide) or
        ``"map"`` (posterior mode; with ``laplace=True`` ``draws`` from the Laplace
        approximation, else the mode alone).
    chains, chain_method
        NUTS chains: ``"parallel"`` (one per device, in rounds when there are more chains than
        devices) on several CPU devices or at least ``chains`` accelerators, else one after
        another (``"sequential"``) on a CPU and ``"vectorized"`` on an accelerator
        (``chain_method`` overrides). JAX shows a CPU as one device, which one chain keeps
        busy; ``jax.config.update("jax_num_cpu_devices", 4)`` right after ``import jax``
        (before any computation) runs 4 chains at once on 4 cores.
    init
        Where NUTS starts: ``"median"`` (every chain at the prior median, unit mass matrix:
        NumPyro's default) or ``"svi"`` (first ``steps`` of Adam with ``learning_rate`` on a
        mean-field guide; each chain starts at its own draw from the guide, and warm-up starts
        from the guide's variances as the diagonal inverse mass matrix). It shortens the first
        warm-up windows on large hierarchical models (dezfouli2019, 101 learners, one chain:
        1,000 warm-up iterations in 16 min, against 475 in 15 min from the median, whose step
        size had fallen to 0.01), but does not cure a funnel-shaped posterior.
    jumps
        NUTS only: mode-jump moves for subjects whose posterior has two separated modes, as
        ``{subject: {parameter: d}}`` with ``d`` the displacement from one mode to the other on
        the parameter's unconstrained scale (logit of a rate, log of a positive value). After
        every NUTS iteration past warm-up each listed subject's values are proposed at ``+d``
        or ``-d`` and the move is accepted with the Metropolis probability, which leaves the posterior
        unchanged (:mod:`cogfit._jump`): a chain then visits both modes instead of staying in
        the one it started in. Costs one evaluation of the log density per subject listed.
        ``"auto"`` (partial pooling) finds them once warm-up is over: each population's
        ``mu``, ``sigma`` (and ``nu``) are averaged over the last warm-up draws of every chain,
        and every subject's values are maximised alone under its population from ``1 + 2P + 8``
        starts; a subject with a second optimum behind a valley and within 8 nats of its best
        gets the move between them (:mod:`cogfit._modes`; dezfouli2019, 101 learners: 25 s on
        2 CPU cores). The mean-field pilot's populations are too narrow for this (measured on
        dezfouli2019: they gave 7 subjects a move where the posterior's give 24, and the fit
        kept R-hat 1.07 on subjects left without one).
        Recorded in the fit's metadata (``jumps``, and ``jumps_auto``).
    seed
        The same seed gives identical draws.
    pooling
        ``"partial"`` (hierarchical), ``"none"`` (independent subjects) or ``"complete"``
        (one value per population).
    population
        How subjects spread around their population's ``mu`` (partial pooling), on the
        unconstrained scale: ``"normal"`` (``N(mu, sigma)``) or ``"student_t"``
        (``StudentT(nu, mu, sigma)``, ``<name>_nu ~ Gamma(2, 0.1)`` one per parameter, in the
        posterior). Heavy tails let a few outlying subjects sit far out without widening
        ``sigma`` for everyone: on dezfouli2019 one Healthy participant's negative learning
        rate (0.13 among 31 at 0.95-0.995) gives a normal population's ``sigma`` two modes, the
        narrow one a funnel (``benchmarks/bench_rl.py``).
    nu
        With ``population="student_t"``: hold every parameter's degrees of freedom at this
        number instead of fitting them (no ``<name>_nu``; recorded as ``meta["nu"]``). A
        fitted ``nu`` can slow NUTS badly (dezfouli2019, 2 x 100 + 100: 611 leapfrog steps per
        draw fitted, 170 with ``nu=4``, ~80 with a normal population).
    by_condition
        Parameters that take one value per level of the data's ``condition`` column.
    centered
        Centred subject effects (``u ~ N(mu, sigma)``) instead of non-centred ones
        (``mu + sigma * z``): for every subject (``True``) or none (``False``), per subject
        (bool array ``(S,)``) or per subject and parameter (``(S, P)``, ``model.params`` order).
        ``None`` (default) decides per subject: centred for subjects with at least
        ``CENTERED_MIN_TRIALS`` trials, whose own data pin them down (the non-centred form then
        has the harder geometry: on 20 spektor subjects with 352 trials NUTS needed 6x fewer
        leapfrog steps per draw centred, 68 vs 400), non-centred for the others. ``"auto"``
        (NUTS with partial pooling) decides per subject and parameter from a mean-field pilot
        (``steps`` of Adam, ``learning_rate``) of the ``None`` layout: centred where the
        pilot's posterior sd of the subject's unconstrained value is below ``sigma / sqrt(2)``
        (its own trials outweigh the population), non-centred elsewhere, e.g. a learning rate
        the data put anywhere near 1 (dezfouli2019: see ``benchmarks/bench_rl.py``). The
        number of centred (subject, parameter) pairs is recorded in the fit's metadata
        (``centered``, and per parameter ``centered_by_param``), and which they are in
        ``centered_mask`` (per parameter a string of ``0``/``1``, one per subject in data order;
        pass it back as an ``(S, P)`` array to refit with the same layout without a pilot).
    blocks
        NUTS on the whole posterior at once (``"joint"``) or on each population alone
        (``"population"``), its draws joined into one fit (chain ``c`` of every population is
        chain ``c`` of the whole). The posterior factorises over populations when they share no
        parameter (a normal population, or ``nu`` held fixed), so it is the same posterior, but
        every population gets its own warm-up (step size, mass matrix, trajectory length),
        centring pilot and mode search, and a hard population no longer slows or traps the
        others (:mod:`cogfit._blocks`). Sampler statistics other than ``diverging`` (a
        divergence in any population; ``diverging_population`` keeps each), ``lp`` and
        ``energy`` (sums) then have a ``population`` dim; ``meta["blocks"]`` records it.
    dense_mass
        NUTS with a dense mass matrix (learns posterior correlations between parameters).
    log_likelihood
        Store per-trial log-likelihoods (``log_likelihood`` group) so ``arviz.loo`` works.
    posterior_predictive
        Simulate the data's design from posterior draws (``posterior_predictive`` group).
    warn
        Warn (with a hint) on R-hat > 1.01, bulk ESS < 400, or divergences.

    Returns
    -------
    Fit
        Holding the ArviZ DataTree; the precision (float32/float64) is recorded in its attrs.
    """
    model = get(model)
    if blocks == "population":
        if method != "nuts" or (population == "student_t" and nu is None):
            raise ValueError(f"blocks='population' runs NUTS on each population alone, which samples the same "
                             f"posterior only when populations share no parameter: it needs method='nuts' and, "
                             f"with population='student_t', a fixed nu (here method={method!r}, nu={nu!r})")
        options = dict(method=method, draws=draws, tune=tune, chains=chains, pooling=pooling,
                       population=population, nu=nu, by_condition=by_condition, dense_mass=dense_mass,
                       target_accept=target_accept, chain_method=chain_method, init=init, steps=steps,
                       learning_rate=learning_rate, progress=progress, blocks="joint", warn=False)
        t0 = time.perf_counter()

        def fit_one(part: TrialData, part_seed: int, split: dict) -> _fit.Fit:
            if progress:
                print(f"population {part.populations[0]!r}: {part.n_subjects} subjects", flush=True)
            return fit(model, part, seed=part_seed, **options, **split)

        parts, fits = _blocks.run(fit_one, data, seed, dict(centered=centered, jumps=jumps))
        samples, stats, settings = _blocks.join(parts, fits, data.n_subjects)
        result = _fit.assemble(model, data, samples, stats, attrs=dict(
            settings, method=method, seed=seed, pooling=pooling, population=population, nu=nu,
            by_condition=list(by_condition), draws=draws, chains=chains, blocks=blocks,
            seconds=time.perf_counter() - t0))
        return _finish(result, log_likelihood, posterior_predictive, seed, warn)
    if blocks != "joint":
        raise ValueError(f"blocks must be 'joint' or 'population', not {blocks!r}")
    by_condition = tuple(by_condition)
    auto = isinstance(centered, str)
    if auto and centered != "auto":
        raise ValueError(f"centered must be a bool, a bool array, 'auto' or None, not {centered!r}")
    cen = data.n_trials >= CENTERED_MIN_TRIALS if centered is None or auto else centered
    mask = centring_mask(model, data, cen)
    hierarchy = partial(build, model, data, pooling=pooling, by_condition=by_condition, population=population, nu=nu)
    numpyro_model = hierarchy(centered=mask)
    args = model_args(data)
    key = jax.random.PRNGKey(seed)
    t0 = time.perf_counter()
    info: dict = {}
    search = isinstance(jumps, str)
    if search and (jumps != "auto" or method != "nuts" or pooling != "partial" or by_condition):
        raise ValueError(f"jumps={jumps!r}: jumps must be a mapping, None or 'auto'; 'auto' finds modes under each "
                         f"subject's population, so it needs method='nuts', pooling='partial' and no "
                         f"by_condition (here method={method!r}, pooling={pooling!r}, by_condition={by_condition})")
    if method == "nuts" and auto and pooling == "partial":
        key, k_pilot = jax.random.split(key)
        loc, scale, loss = pilot(numpyro_model, args, key=k_pilot, steps=steps, learning_rate=learning_rate,
                                 progress=progress)
        mask = centring_from_guide(model, data, mask, loc, scale)
        numpyro_model = hierarchy(centered=mask)
        info.update(centring_pilot_loss=loss)
    info.update(centered=int(mask.sum()), centered_by_param=[int(n) for n in mask.sum(0)],
                centered_mask={p.name: "".join("1" if c else "0" for c in mask[:, j])
                               for j, p in enumerate(model.params)})
    if jumps is not None and method != "nuts":
        raise ValueError(f"jumps are moves of the NUTS sampler; method={method!r} takes none")
    if method == "nuts":
        after_warmup = None
        if search:
            key, k_modes = jax.random.split(key)

            def after_warmup(warm: dict):
                """The moves found under the populations of the last warm-up draws (all chains)."""
                t_search = time.perf_counter()
                loc = {k: np.mean(v, axis=(0, 1)) for k, v in warm.items()}
                found = find_jumps(model, data, *population_means(model, loc, population, nu), key=k_modes)
                info.update(jumps={str(s): d for s, d in found.items()}, jumps_auto=True,
                            jumps_search_s=round(time.perf_counter() - t_search, 1))
                return subject_jumps(model, data, mask, pooling, found) if found else None
        elif jumps is not None:
            info.update(jumps={str(s): {p: float(v) for p, v in d.items()} for s, d in jumps.items()})
            jump_fn = subject_jumps(model, data, mask, pooling, jumps)    # errors before sampling

            def after_warmup(warm: dict):
                return jump_fn
        if chain_method is None:
            chain_method = _chain_method(chains)
        start, inverse_mass = None, None
        if init == "svi":
            key, k_init = jax.random.split(key)
            start, inverse_mass, loss = svi_start(numpyro_model, args, key=k_init, chains=chains, steps=steps,
                                                  learning_rate=learning_rate, progress=progress)
            info.update(init_steps=steps, init_learning_rate=learning_rate, init_loss=loss)
        elif init != "median":
            raise ValueError(f"init must be 'median' or 'svi', not {init!r}")
        samples, raw = _nuts.sample(numpyro_model, args, key=key, chains=chains, tune=tune, draws=draws,
                                    target_accept=target_accept, dense_mass=dense_mass,
                                    chain_method=chain_method, progress=progress,
                                    init=start, inverse_mass=inverse_mass, jumps=after_warmup)
        stats = {
            "diverging": raw["diverging"],
            "energy": raw["energy"],
            "n_steps": raw["num_steps"],
            "tree_depth": np.floor(np.log2(raw["num_steps"])).astype(np.int64) + 1,
            "step_size": raw["step_size"],
            "acceptance_rate": raw["accept_prob"],
            "lp": -raw["potential_energy"],
        }
        info.update(chain_method=chain_method, tune=tune, target_accept=target_accept,
                    dense_mass=dense_mass, init=init)
    elif method in ("svi", "map"):
        if method == "map" and pooling == "partial" and warn:
            warnings.warn("MAP of a hierarchical model drives the group sd towards 0 (the joint density is "
                          "unbounded there), so subject estimates shrink to the group mean and a Laplace "
                          "approximation is too narrow; use method='nuts' or 'svi', or pooling='none'.",
                          UserWarning, stacklevel=2)
        if method == "svi":
            g = (autoguide.AutoNormal(numpyro_model, init_loc_fn=init_to_median) if guide == "normal"
                 else autoguide.AutoLowRankMultivariateNormal(numpyro_model, init_loc_fn=init_to_median))
        else:
            g = autoguide.AutoLaplaceApproximation(numpyro_model, init_loc_fn=init_to_median)
        optim = numpyro.optim.optax_to_numpyro(optax.adam(learning_rate))
        svi = SVI(numpyro_model, g, optim, Trace_ELBO())
        k_fit, k_draw = jax.random.split(key)
        result = svi.run(k_fit, steps, *args, progress_bar=progress)
        params = result.params
        losses = np.asarray(result.losses)
        if not np.isfinite(losses[-1]):
            raise FloatingPointError(f"{method}: the loss is {losses[-1]} after {steps} steps; "
                                     "lower learning_rate or check the data")
        if method == "map" and not laplace:
            latent = {k: v[None] for k, v in g.median(params).items()}
        else:
            latent = g.sample_posterior(k_draw, params, *args, sample_shape=(draws,))
        pred = Predictive(numpyro_model, posterior_samples=latent)
        out = pred(k_draw, *args)
        samples = {k: np.asarray(v)[None] for k, v in {**latent, **out}.items() if k != "loglik"}
        stats = {}
        info.update(steps=steps, learning_rate=learning_rate, final_loss=float(losses[-1]),
                    guide=guide if method == "svi" else ("laplace" if laplace else "delta"))
        chains = 1
    else:
        raise ValueError(f"method must be 'nuts', 'svi' or 'map', not {method!r}")
    seconds = time.perf_counter() - t0
    precision = "float64" if jnp.zeros(()).dtype == jnp.float64 else "float32"
    result = _fit.assemble(
        model, data, samples, stats,
        attrs=dict(method=method, seed=seed, pooling=pooling, population=population, nu=nu,
                   by_condition=list(by_condition), blocks=blocks,
                   draws=draws, chains=chains, precision=precision, seconds=seconds, **info),
    )
    return _finish(result, log_likelihood, posterior_predictive, seed, warn and method == "nuts")


def _finish(result: "_fit.Fit", log_likelihood: bool, posterior_predictive: bool, seed: int,
            warn: bool) -> "_fit.Fit":
    if log_likelihood:
        result = result.with_log_likelihood()
    if posterior_predictive:
        result = result.with_posterior_predictive(seed=seed + 1)
    if warn:
        result.check(warn=True)
    return result
