"""``fit(model, data, method=...)``: build the hierarchy, hand it to the method, assemble the Fit."""

from __future__ import annotations

import time
import warnings

import jax.numpy as jnp
import numpy as np

from cogfit import _fit
from cogfit._data import TrialData
from cogfit._hierarchy import Hierarchy
from cogfit._model import Model
from cogfit.inference.base import Draws, Method
from cogfit.inference.map import MAP
from cogfit.inference.nuts import NUTS
from cogfit.inference.svi import SVI
from cogfit.models import get

SHORTHANDS = {"nuts": NUTS, "svi": SVI, "map": MAP}

# Where each keyword of fit() before version 0.2 lives now.
_MOVED = {**{k: "NUTS" for k in ("tune", "chains", "target_accept", "dense_mass", "chain_method", "init",
                                  "jumps", "blocks")},
          **{k: "SVI" for k in ("steps", "learning_rate", "guide")}, "laplace": "MAP",
          "draws": "NUTS/SVI/MAP", "centered": "NUTS/SVI/MAP",
          **{k: "Hierarchy" for k in ("pooling", "population", "nu", "by_condition")}}


def as_method(method: Method | str) -> Method:
    """A method object; the strings ``"nuts"``, ``"svi"``, ``"map"`` stand for the defaults."""
    if isinstance(method, str):
        if method not in SHORTHANDS:
            raise ValueError(f"method must be one of {tuple(SHORTHANDS)} or a method object such as "
                             f"cogfit.NUTS(...), not {method!r}")
        return SHORTHANDS[method]()
    if not callable(getattr(method, "run", None)):
        raise TypeError(f"method must be cogfit.NUTS(...), cogfit.SVI(...), cogfit.MAP(...) or one of "
                        f"{tuple(SHORTHANDS)}, not {method!r}")
    return method


def fit(
    model: Model | str,
    data: TrialData,
    *,
    method: Method | str = "nuts",
    hierarchy: Hierarchy | None = None,
    seed: int = 0,
    log_likelihood: bool = False,
    posterior_predictive: bool = False,
    progress: bool = True,
    warn: bool = True,
    **moved,
) -> "_fit.Fit":
    """Fit ``model`` hierarchically to ``data``.

    Parameters
    ----------
    model
        A :class:`~cogfit.Model` or a registered name.
    data
        Packed trials (:meth:`~cogfit.TrialData.from_table`).
    method
        How the posterior is computed, with its own options: :class:`~cogfit.NUTS` (default),
        :class:`~cogfit.SVI` or :class:`~cogfit.MAP`; the strings ``"nuts"``, ``"svi"``,
        ``"map"`` give each with its defaults.
    hierarchy
        How subjects' parameters relate (:class:`~cogfit.Hierarchy`: pooling, population shape,
        conditions); default partial pooling with a normal population.
    seed
        The same seed (and settings) gives identical draws.
    log_likelihood
        Store per-trial log-likelihoods (``log_likelihood`` group) so ``arviz.loo`` works.
    posterior_predictive
        Simulate the data's design from posterior draws (``posterior_predictive`` group).
    progress
        Show progress bars.
    warn
        Warn (with a hint) on R-hat > 1.01, bulk ESS < 400 or divergences (NUTS), and on
        settings known to mislead (MAP of a hierarchical model).

    Returns
    -------
    Fit
        The draws as an ArviZ DataTree; ``fit.method`` and ``fit.hierarchy`` rebuild the
        settings, ``fit.meta`` records them with the precision (float32/float64) and timing.
    """
    if moved:
        name = next(iter(moved))
        where = _MOVED.get(name)
        hint = (f"it is an option of cogfit.{where.split('/')[0]}(...), e.g. cogfit.fit(model, data, "
                f"{'hierarchy' if where == 'Hierarchy' else 'method'}=cogfit.{where.split('/')[0]}({name}=...))"
                if where else "see help(cogfit.fit)")
        raise TypeError(f"cogfit.fit() got an unexpected keyword argument {name!r}: {hint}")
    model = get(model)
    method = as_method(method)
    hierarchy = Hierarchy() if hierarchy is None else hierarchy
    if not isinstance(hierarchy, Hierarchy):
        raise TypeError(f"hierarchy must be a cogfit.Hierarchy(...), not {hierarchy!r}")
    hierarchy.check(model, data)
    data = hierarchy.prepare(model, data)          # formulas' designs (unchanged without formulas)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        if not warn:
            warnings.simplefilter("ignore", UserWarning)
        draws = method.run(model, data, hierarchy, seed=seed, progress=progress)
    attrs = fit_attrs(method, hierarchy, draws, seed=seed, seconds=time.perf_counter() - t0)
    result = _fit.assemble(model, data, draws.samples, draws.stats, attrs=attrs)
    if log_likelihood:
        result = result.with_log_likelihood()
    if posterior_predictive:
        result = result.with_posterior_predictive(seed=seed + 1)
    if warn and method.name == "nuts":
        result.check(warn=True)
    return result


def fit_attrs(method: Method, hierarchy: Hierarchy, draws: Draws, *, seed: int, seconds: float) -> dict:
    """The metadata a fit records: how it was made (flat keys, and ``method_settings`` and
    ``hierarchy`` for :func:`rebuild_method`), its size, precision and time, and what the method
    found (``draws.info``)."""
    chains, n_draws = next(iter(draws.samples.values())).shape[:2]
    return dict(method=method.name, seed=seed, **hierarchy.settings(), blocks=getattr(method, "blocks", "joint"),
                draws=n_draws, chains=chains, precision=_precision(), seconds=seconds, **draws.info,
                method_settings=method.settings(), hierarchy=hierarchy.settings())


def _precision() -> str:
    return "float64" if jnp.zeros(()).dtype == jnp.float64 else "float32"


def rebuild_method(meta: dict) -> Method:
    """The method object recorded in a fit's metadata (``method`` and ``method_settings``);
    fits saved before method objects existed get the defaults with their recorded options."""
    cls = SHORTHANDS[meta["method"]]
    recorded = meta.get("method_settings")
    if recorded is None:
        names = {f for f in cls.__dataclass_fields__ if f not in ("pilot", "centered", "jumps")}
        recorded = {k: meta[k] for k in names if k in meta}
        if cls is MAP and "guide" in meta:
            recorded["laplace"] = meta["guide"] != "delta"
    options = dict(recorded)
    if isinstance(options.get("pilot"), dict):
        options["pilot"] = SVI(**{k: v for k, v in options["pilot"].items() if k != "kind"})
    if isinstance(options.get("centered"), list):
        options["centered"] = np.asarray(options["centered"], bool)
    return cls(**options)
