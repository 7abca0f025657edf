"""``cogfit.recover``: a parameter-recovery and calibration study in one call."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pandas as pd

from cogfit._model import Model
from cogfit.recovery import simulate as sim
from cogfit.recovery.metrics import prior_sd
from cogfit.recovery.result import Recovery
from cogfit.recovery.run import Study, portable, run
from cogfit.recovery.truth import TruthSpec


def study(model: Model | str, *, n_datasets: int, n_subjects: int | None = None, n_trials: int | None = None,
          design: pd.DataFrame | None = None, truth: TruthSpec = "prior", method=None, hierarchical=True,
          seed: int = 0, chunk: int = 100, n_rank: int = 99) -> Study:
    """The validated :class:`~cogfit.recovery.run.Study` of :func:`recover`'s arguments."""
    import cogfit

    model = cogfit.models.get(model)
    method = cogfit.SVI() if method is None else method
    if isinstance(method, str):
        method = {"svi": cogfit.SVI, "map": cogfit.MAP, "nuts": cogfit.NUTS}[method]()
    if isinstance(hierarchical, cogfit.Hierarchy):
        hierarchy = hierarchical
    elif isinstance(hierarchical, bool):
        hierarchy = cogfit.Hierarchy() if hierarchical else cogfit.Hierarchy(pooling="none")
    else:
        raise TypeError(f"hierarchical must be True, False or a cogfit.Hierarchy, not {hierarchical!r}")
    if (not isinstance(hierarchy.pooling, str) or hierarchy.pooling == "complete" or hierarchy.population != "normal"
            or hierarchy.by_condition):
        raise ValueError(f"recovery studies support Hierarchy(pooling='partial') with a normal population and "
                         f"pooling='none'; got {hierarchy}")
    for name, v, low in (("n_datasets", n_datasets, 1), ("chunk", chunk, 1), ("n_rank", n_rank, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
            raise ValueError(f"{name} must be an integer >= {low}, not {v!r}")
    if isinstance(truth, str) and truth != "prior":
        raise ValueError(f"truth must be 'prior', a table, a mapping of distributions or a callable; got {truth!r}")
    d = sim.design(model, n_subjects=n_subjects, n_trials=n_trials, table=design)
    return Study(portable(model), int(n_datasets), d, truth, method, hierarchy, int(seed), int(min(chunk, n_datasets)),
                 int(n_rank))


def recover(model: Model | str, *, n_datasets: int, n_subjects: int | None = None, n_trials: int | None = None,
            design: pd.DataFrame | None = None, truth: TruthSpec = "prior", method=None, hierarchical=True,
            seed: int = 0, executor=None, out: str | Path | None = None, chunk: int = 100, n_rank: int = 99,
            progress: bool = True) -> Recovery:
    """Simulate ``n_datasets`` datasets from known parameters, fit each and compare.

    Parameters
    ----------
    model
        A model or its registered name.
    n_subjects, n_trials, design
        The design of every dataset: drawn per dataset and subject from the model's ``design``
        (as :func:`cogfit.random_design`), or one design table (``subject``, ``trial``, the
        stimulus columns, optional ``population``; every subject the same number of trials)
        shared by all datasets.
    truth
        ``"prior"`` (the fitted model's prior: population ``mu``, ``sigma``, then subjects; the
        only source for which SBC is meaningful), a mapping ``name -> numpyro distribution``
        on the natural scale (or a number), a callable ``(numpy Generator, n_subjects) ->
        {name: (S,) values}`` called per dataset, or a table (``dataset``, ``subject``
        position, one column per parameter; :func:`cogfit.recovery.grid` makes one from a grid).
    method
        ``cogfit.SVI(...)`` (default) or ``cogfit.MAP(...)``: every chunk of datasets is fitted
        by one compiled, vmapped call (:func:`cogfit.fit_batch`); ``cogfit.NUTS(...)``: one
        :func:`cogfit.fit` per dataset, one after another within a chunk (NUTS with chains
        vectorised across datasets is not written yet).
    hierarchical
        True: partial pooling (``Hierarchy()``); False: independent subjects
        (``Hierarchy(pooling="none")``); or a :class:`cogfit.Hierarchy`.
    seed
        Dataset ``d``'s truth, design, responses and fit depend on ``seed`` and ``d`` only.
    executor
        Any object with ``submit(fn, *args)``: a ``concurrent.futures.ProcessPoolExecutor``
        (with ``mp_context=multiprocessing.get_context("spawn")``: JAX does not survive a fork;
        a user's model or truth callable must then be importable, as pickle sends it by name)
        or a ``dask.distributed.Client`` (cloudpickle sends closures too); chunks of ``chunk``
        datasets go to it. None: this process.
    out
        A folder: each finished chunk is written there (Parquet) and a later call with the same
        settings reads it instead of fitting it again (resume).
    n_rank
        Thinned posterior draws among which the truth's SBC rank is taken.

    Returns
    -------
    :class:`~cogfit.recovery.Recovery`: ``to_pandas()``, ``summary()``, ``sbc()``, plots.
    """
    st = study(model, n_datasets=n_datasets, n_subjects=n_subjects, n_trials=n_trials, design=design, truth=truth,
               method=method, hierarchical=hierarchical, seed=seed, chunk=chunk, n_rank=n_rank)
    table = run(st, executor=executor, out=out, progress=progress)
    model = st.resolved()
    psd = prior_sd(model, jax.random.PRNGKey(seed), hierarchical=st.hierarchy.pooling == "partial")
    return Recovery(table=table, prior_sd=psd, settings=st.fingerprint())
