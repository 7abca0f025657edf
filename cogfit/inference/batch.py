"""Many data sets of one shape fitted by one compiled, vmapped SVI, MAP or NUTS call.

For parameter-recovery and calibration studies: every data set gets the fit
``cogfit.fit(model, datasets[i], method=method, hierarchy=hierarchy, seed=seeds[i])`` would
give it (the same functions, :func:`cogfit.inference.svi.optimise` and
:func:`~cogfit.inference.svi.guide_draws`, or NUTS's chain kernel
(:mod:`cogfit.inference.nuts_batch`), under :func:`jax.vmap`), equal up to floating-point
rounding of the batched arithmetic (NUTS: with ``chain_method="vectorized"``).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import OrderedDict
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from cogfit import _fit
from cogfit._data import TrialData
from cogfit._hierarchy import Hierarchy, default_centring, model_args
from cogfit._model import Model
from cogfit.inference.base import Draws, centring_info
from cogfit.inference.chains import sampler_stats
from cogfit.inference.fit import as_method, fit_attrs
from cogfit.inference.map import MAP
from cogfit.inference.nuts import NUTS
from cogfit.inference.nuts_batch import sample_batch
from cogfit.inference.svi import SVI, check_loss, guide_draws, make_guide, make_svi, optimise, programs
from cogfit.models import get


@dataclasses.dataclass(frozen=True, eq=False)
class Batch:
    """The fits of many data sets.

    Attributes
    ----------
    samples
        Site -> ``(dataset, chain, draw, ...)`` (SVI and MAP: one chain): natural-scale subject
        parameters ``<p>`` ``(..., subject[, condition])``, ``<p>_mu``, ``<p>_sigma``
        (unconstrained scale) and ``<p>_group`` ``(..., population[, condition])``, and the raw
        latent sites.
    losses
        ELBO loss per data set and step ``(dataset, steps)`` (NUTS: ``(dataset, 0)``).
    stats
        NUTS: sampler statistics ``(dataset, chain, draw)`` as a fit records them; else empty.
    """

    model: Model
    datasets: tuple[TrialData, ...]
    method: SVI | MAP | NUTS
    hierarchy: Hierarchy
    seeds: tuple[int, ...]
    samples: dict[str, np.ndarray]
    losses: np.ndarray
    info: dict
    seconds: float
    stats: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.datasets)

    def fit(self, i: int) -> "_fit.Fit":
        """Data set ``i`` as a :class:`~cogfit.Fit`."""
        method = self.method
        if isinstance(method, NUTS):
            info = dict(method.sampler_info("vectorized"), batched=len(self), **self.info)
        else:
            info = dict(steps=method.steps, learning_rate=method.learning_rate,
                        final_loss=float(self.losses[i, -1]), batched=len(self), **self.info)
        draws = Draws({k: v[i] for k, v in self.samples.items()}, {k: v[i] for k, v in self.stats.items()}, info)
        attrs = fit_attrs(method, self.hierarchy, draws, seed=self.seeds[i], seconds=self.seconds / len(self))
        return _fit.assemble(self.model, self.datasets[i], draws.samples, draws.stats, attrs=attrs)

    def fits(self) -> list["_fit.Fit"]:
        return [self.fit(i) for i in range(len(self))]


def batchable(method: SVI | MAP | NUTS) -> bool:
    """Whether :func:`fit_batch` runs ``method``: SVI, MAP, and NUTS with ``init="median"``, no
    ``jumps``, ``blocks="joint"`` and ``centered`` not ``"auto"`` (one program for every data set)."""
    if isinstance(method, NUTS):
        return (method.init == "median" and method.jumps is None and method.blocks == "joint"
                and not isinstance(method.centered, str))
    return isinstance(method, (SVI, MAP))


def fit_batch(model: Model | str, datasets: Sequence[TrialData], *, method: SVI | MAP | NUTS | str = "svi",
              hierarchy: Hierarchy | None = None, seed: int | Sequence[int] = 0, progress: bool = True) -> Batch:
    """Fit ``model`` to every data set at once with SVI, MAP or NUTS.

    Parameters
    ----------
    datasets
        Data sets with the same subjects count, populations and conditions (e.g. simulated on
        one design). Trial counts may differ: then every subject is padded to the longest one
        (one length bucket), which changes only the rounding of the log density.
    method
        :class:`~cogfit.SVI` or :class:`~cogfit.MAP` (or ``"svi"``, ``"map"``), or
        :class:`~cogfit.NUTS` with its plain options (``init="median"``, no ``jumps``,
        ``blocks="joint"``, ``centered`` not ``"auto"``): every chain of every data set
        vectorised in one program, whatever its ``chain_method`` (see
        :mod:`cogfit.inference.nuts_batch` for when that pays on a CPU).
    seed
        One seed per data set, or an int ``s`` for seeds ``s, s + 1, ...``.
    """
    model = get(model)
    method = as_method(method)
    if not isinstance(method, (SVI, MAP, NUTS)):
        raise ValueError(f"fit_batch runs SVI, MAP or NUTS, not {type(method).__name__}")
    if isinstance(method, NUTS) and not batchable(method):
        raise ValueError("fit_batch runs NUTS with init='median', no jumps, blocks='joint' and centered not 'auto' "
                         f"(one program for every data set); got {method}; fit such runs per data set with "
                         "cogfit.fit")
    hierarchy = Hierarchy() if hierarchy is None else hierarchy
    datasets = tuple(datasets)
    if not datasets:
        raise ValueError("fit_batch needs at least one data set")
    seeds = tuple(range(seed, seed + len(datasets))) if isinstance(seed, (int, np.integer)) else tuple(seed)
    if len(seeds) != len(datasets):
        raise ValueError(f"{len(seeds)} seeds for {len(datasets)} data sets")
    first = datasets[0]
    for i, d in enumerate(datasets):
        hierarchy.check(model, d)
        if (d.n_subjects, d.populations, d.conditions) != (first.n_subjects, first.populations, first.conditions):
            raise ValueError(f"data set {i} has {d.n_subjects} subjects, populations {d.populations} and conditions "
                             f"{d.conditions}; data set 0 has {first.n_subjects}, {first.populations}, "
                             f"{first.conditions}: fit_batch needs one shape")
    masks = [default_centring(model, d, method.centered) for d in datasets]
    bad = [i for i, m in enumerate(masks) if not np.array_equal(m, masks[0])]
    if bad:
        raise ValueError(f"the default centring (subjects with >= 100 trials) differs between data sets {bad[:5]} and "
                         "data set 0; give the method centered=True or centered=False")
    t0 = time.perf_counter()
    args = _stacked_args(datasets)
    if isinstance(method, NUTS):
        samples, raw = sample_batch(hierarchy.build(model, first, masks[0]), args,
                                    keys=jnp.stack([jax.random.PRNGKey(s) for s in seeds]), chains=method.chains,
                                    tune=method.tune, draws=method.draws, target_accept=method.target_accept,
                                    dense_mass=method.dense_mass, progress=progress)
        return Batch(model=model, datasets=datasets, method=method, hierarchy=hierarchy, seeds=seeds,
                     samples=samples, losses=np.zeros((len(datasets), 0)), info=centring_info(model, masks[0]),
                     seconds=time.perf_counter() - t0, stats=sampler_stats(raw))
    prog = _program(model, hierarchy, first, masks[0], method, args)
    keys = jnp.stack([jax.random.split(jax.random.PRNGKey(s)) for s in seeds])     # (D, 2, 2): fit, draws
    params, losses = optimise(prog.svi, args, key=keys[:, 0], steps=method.steps, progress=progress, batched=True,
                              label=f"{method.name} x {len(datasets)}", compiled=prog.steps)
    check_loss(losses, method.name, method.steps)
    out = prog.draws(params, args, keys[:, 1])
    samples = {k: np.asarray(v)[:, None] for k, v in out.items()}
    return Batch(model=model, datasets=datasets, method=method, hierarchy=hierarchy, seeds=seeds, samples=samples,
                 losses=np.asarray(losses), info=centring_info(model, masks[0]), seconds=time.perf_counter() - t0)


@dataclasses.dataclass(frozen=True, eq=False)
class _Program:
    """What one shape of batch compiles: the SVI object and its jitted steps and draws."""

    model: Model                 # held so that its id in the cache key stays its own
    svi: object
    steps: tuple
    draws: object


_PROGRAMS: OrderedDict[tuple, _Program] = OrderedDict()
_KEEP = 4    # programs kept (the most recent shapes)


def _program(model: Model, hierarchy: Hierarchy, first: TrialData, mask: np.ndarray, method: SVI | MAP,
             args: tuple) -> _Program:
    """The compiled program of this model, hierarchy, method and batch shape, reused from an earlier
    call when they match (the chunks of a recovery study: one compilation, not one per chunk)."""
    shapes = tuple((tuple(x.shape), str(x.dtype)) for x in jax.tree.leaves(args))
    key = (id(model), json.dumps(hierarchy.settings(), sort_keys=True), first.n_subjects, first.populations,
           first.conditions, mask.tobytes(), mask.shape, type(method).__name__, repr(method), shapes)
    if key in _PROGRAMS:
        _PROGRAMS.move_to_end(key)
        return _PROGRAMS[key]
    one = jax.tree.map(lambda x: x[0], args)
    numpyro_model = hierarchy.build(model, first, mask)
    guide = make_guide("laplace" if isinstance(method, MAP) else method.guide, numpyro_model)
    svi = make_svi(numpyro_model, guide, method.learning_rate, one)
    point = isinstance(method, MAP) and not method.laplace

    def draws(p, a, k):
        return guide_draws(numpyro_model, guide, p, a, key=k, draws=method.draws, point=point)

    _PROGRAMS[key] = prog = _Program(model, svi, programs(svi, batched=True), jax.jit(jax.vmap(draws)))
    while len(_PROGRAMS) > _KEEP:
        _PROGRAMS.popitem(last=False)
    return prog


def _stacked_args(datasets: tuple[TrialData, ...]) -> tuple:
    """``model_args`` of every data set stacked on a leading axis: their own length buckets when
    all have the same trial counts, else one bucket padded to the longest subject."""
    counts = [np.asarray(d.n_trials) for d in datasets]
    if all(np.array_equal(c, counts[0]) for c in counts):
        each = [model_args(d) for d in datasets]
    else:
        T = max(d.max_trials for d in datasets)
        each = [_padded(model_args(d, max_buckets=1), T) for d in datasets]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *each)


def _padded(args: tuple, T: int) -> tuple:
    """One-bucket ``model_args`` with every trial array padded to ``T`` slots (last slot repeated,
    masked out)."""
    ((idx, fields, cond),), pop = args

    def pad(x):
        x = np.asarray(x)
        return jnp.asarray(np.pad(x, [(0, 0), (0, T - x.shape[1])] + [(0, 0)] * (x.ndim - 2), mode="edge"))

    counts = np.asarray(fields["mask"]).sum(1)
    fields = jax.tree.map(pad, fields)
    mask = np.arange(T)[None, :] < counts[:, None]
    return ((idx, fields.replace(mask=jnp.asarray(mask)), pad(cond)),), pop
