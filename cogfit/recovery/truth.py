"""True parameters of a recovery study: drawn from the model's prior (or another model's, to
check that calibration detects a wrong prior), a user's distributions, a callable, a table or a
grid.

Every source gives a :class:`Truth`: natural-scale subject values ``(D, S)`` per parameter and,
where the truth came from the hierarchical prior, the population's ``mu`` and ``sigma``
(unconstrained scale, ``(D, G)``; NaN otherwise). Dataset ``d`` draws with its own key
(``fold_in(seed, d)``), so a dataset's truth does not depend on how a study is cut into chunks.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pandas as pd

from cogfit._model import Model
from cogfit._transforms import Interval, Positive

TruthSpec = str | Model | pd.DataFrame | Mapping | Callable


class Truth(NamedTuple):
    """True values of ``D`` datasets.

    Attributes
    ----------
    subject
        ``name -> (D, S)`` natural-scale subject parameters.
    mu, sigma
        ``name -> (D, G)`` population mean and sd on the unconstrained scale (NaN where the
        truth did not come from the hierarchical prior).
    """

    subject: dict[str, np.ndarray]
    mu: dict[str, np.ndarray]
    sigma: dict[str, np.ndarray]

    @property
    def n_datasets(self) -> int:
        return next(iter(self.subject.values())).shape[0]


def prior(model: Model, keys: jax.Array, population: np.ndarray, n_populations: int,
          hierarchical: bool = True) -> Truth:
    """Draws from the fitted model's prior, one per key ``(D,)``.

    Hierarchical: ``mu ~ param.prior`` and ``sigma ~ param.sd_prior`` per population, subject
    ``u = mu[g] + sigma[g] * z`` with ``z ~ N(0, 1)``; else each subject ``u ~ param.prior``
    (the prior of ``pooling="none"``). ``population`` ``(S,)`` indexes populations.
    """
    pop = jnp.asarray(population)
    S, G = len(population), n_populations

    def one(key):
        out = {}
        for j, p in enumerate(model.params):
            k_mu, k_sd, k_z = jax.random.split(jax.random.fold_in(key, j), 3)
            if hierarchical:
                mu = p.prior.sample(k_mu, (G,))
                sigma = p.sd_prior.sample(k_sd, (G,))
                u = mu[pop] + sigma[pop] * jax.random.normal(k_z, (S,))
            else:
                mu = sigma = jnp.full((G,), jnp.nan)
                u = p.prior.sample(k_mu, (S,))
            out[p.name] = (p.transform.forward(u), mu, sigma)
        return out

    drawn = jax.vmap(one)(keys)
    return Truth(*({k: np.asarray(v[i], np.float64) for k, v in drawn.items()} for i in range(3)))


def _no_groups(model: Model, D: int, G: int) -> tuple[dict, dict]:
    nan = {p.name: np.full((D, G), np.nan) for p in model.params}
    return nan, dict(nan)


def _complete(model: Model, values: Mapping, what: str) -> None:
    missing = [n for n in model.param_names if n not in values]
    if missing:
        raise ValueError(f"truth {what} has no values for parameters {missing} of model {model.name!r}")


def from_distributions(model: Model, keys: jax.Array, n_subjects: int, n_populations: int,
                       spec: Mapping[str, dist.Distribution | float]) -> Truth:
    """Each subject's parameter drawn independently from ``spec[name]`` (a NumPyro distribution
    on the natural scale, or a number held fixed)."""
    _complete(model, spec, "mapping")
    D = keys.shape[0]
    subject = {}
    for j, p in enumerate(model.params):
        d = spec[p.name]
        if isinstance(d, dist.Distribution):
            draw = jax.vmap(lambda k, d=d, j=j: d.sample(jax.random.fold_in(k, j), (n_subjects,)))(keys)
        else:
            draw = jnp.full((D, n_subjects), float(d))
        subject[p.name] = _inside(model, p.name, np.asarray(draw, np.float64), "mapping")
    return Truth(subject, *_no_groups(model, D, n_populations))


def from_callable(model: Model, datasets: np.ndarray, seed: int, n_subjects: int, n_populations: int,
                  fn: Callable[[np.random.Generator, int], Mapping[str, Sequence[float]]]) -> Truth:
    """``fn(rng, n_subjects) -> {name: (S,) natural-scale values}``, called once per dataset with
    ``rng = numpy.random.default_rng([seed, dataset])``."""
    rows = [fn(np.random.default_rng([seed, int(d)]), n_subjects) for d in datasets]
    subject = {}
    for p in model.params:
        _complete(model, rows[0], "callable's result")
        arr = np.stack([np.broadcast_to(np.asarray(r[p.name], np.float64), (n_subjects,)) for r in rows])
        subject[p.name] = _inside(model, p.name, arr, "callable")
    return Truth(subject, *_no_groups(model, len(datasets), n_populations))


def from_table(model: Model, table: pd.DataFrame, datasets: np.ndarray, n_subjects: int,
               n_populations: int) -> Truth:
    """Rows ``dataset``, ``subject`` (position ``0..S-1`` in the design) and one natural-scale
    column per parameter."""
    for col in ("dataset", "subject"):
        if col not in table:
            raise ValueError(f"truth table needs a {col!r} column")
    _complete(model, table.columns, "table")
    t = table.set_index(["dataset", "subject"]).sort_index()
    if t.index.duplicated().any():
        d, s = t.index[t.index.duplicated()][0]
        raise ValueError(f"truth table: dataset {d}, subject {s} appears twice")
    want = pd.MultiIndex.from_product([datasets, range(n_subjects)], names=["dataset", "subject"])
    missing = want.difference(t.index)
    if len(missing):
        d, s = missing[0]
        raise ValueError(f"truth table has no row for dataset {d}, subject {s} ({len(missing)} missing; "
                         f"it needs datasets 0..{datasets.max()} x subjects 0..{n_subjects - 1})")
    t = t.loc[want]
    subject = {}
    for p in model.params:
        vals = pd.to_numeric(t[p.name], errors="coerce").to_numpy(np.float64)
        bad = ~np.isfinite(vals)
        if bad.any():
            d, s = want[np.flatnonzero(bad)[0]]
            raise ValueError(f"truth table, column {p.name!r}, dataset {d}, subject {s}: not a finite number")
        subject[p.name] = _inside(model, p.name, vals.reshape(len(datasets), n_subjects), "table")
    return Truth(subject, *_no_groups(model, len(datasets), n_populations))


def grid(values: Mapping[str, Sequence[float]], *, n_datasets: int, n_subjects: int) -> pd.DataFrame:
    """A truth table holding every combination of ``values`` (natural scale), tiled over the
    ``n_datasets x n_subjects`` slots in order (dataset-major; combinations repeat when there
    are more slots than combinations)."""
    names = list(values)
    combos = list(itertools.product(*(np.asarray(values[n], float).ravel() for n in names)))
    if not combos:
        raise ValueError("grid: every parameter needs at least one value")
    idx = np.arange(n_datasets * n_subjects)
    rows = np.asarray(combos)[idx % len(combos)]
    out = pd.DataFrame(rows, columns=names)
    out.insert(0, "subject", idx % n_subjects)
    out.insert(0, "dataset", idx // n_subjects)
    return out


def _inside(model: Model, name: str, values: np.ndarray, what: str) -> np.ndarray:
    """``values`` checked to lie inside the parameter's natural domain."""
    t = model.param(name).transform
    ok = np.isfinite(values)
    if isinstance(t, Positive):
        ok &= values > 0
    elif isinstance(t, Interval):
        ok &= (values > t.low) & (values < t.high)
    if not ok.all():
        d, s = np.argwhere(~ok)[0]
        raise ValueError(f"truth {what}: parameter {name!r} = {float(values[d, s]):g} (dataset {d}, subject {s}) lies "
                         f"outside its domain, {t.describe()}")
    return values


def draw(model: Model, spec: TruthSpec, *, seed: int, datasets: np.ndarray, n_subjects: int,
         population: np.ndarray, n_populations: int, hierarchical: bool) -> Truth:
    """The truths of ``datasets`` (their global indices) from any source (see module docstring)."""
    keys = dataset_keys(seed, datasets, 0)
    if isinstance(spec, str):
        if spec != "prior":
            raise ValueError(f"truth must be 'prior', a table, a mapping of distributions or a callable; "
                             f"got {spec!r}")
        return prior(model, keys, population, n_populations, hierarchical)
    if isinstance(spec, Model):
        if spec.param_names != model.param_names:
            raise ValueError(f"truth model {spec.name!r} has parameters {spec.param_names}; the fitted model "
                             f"{model.name!r} has {model.param_names}")
        return prior(spec, keys, population, n_populations, hierarchical)
    if isinstance(spec, pd.DataFrame):
        return from_table(model, spec, datasets, n_subjects, n_populations)
    if isinstance(spec, Mapping):
        return from_distributions(model, keys, n_subjects, n_populations, spec)
    if callable(spec):
        return from_callable(model, datasets, seed, n_subjects, n_populations, spec)
    raise TypeError(f"truth must be 'prior', a DataFrame, a mapping or a callable, not {type(spec).__name__}")


def dataset_keys(seed: int, datasets: np.ndarray, stream: int) -> jax.Array:
    """One key per dataset ``(D,)`` for ``stream`` (0 truth, 1 design, 2 responses): a dataset's
    draws depend on the seed and its own index only."""
    base = jax.random.fold_in(jax.random.PRNGKey(seed), stream)
    return jax.vmap(lambda d: jax.random.fold_in(base, d))(jnp.asarray(datasets, jnp.uint32))
