"""Run a recovery study in chunks of datasets: in-process or on any executor, resumable.

A :class:`Study` is everything a chunk needs (picklable, so it travels to worker processes:
a registered model goes by name, a user's model as itself, which needs cloudpickle as Dask
uses). :func:`run_chunk` is a pure function of the study and the chunk's index: truths,
designs, responses and fit seeds of dataset ``d`` depend on the study's seed and ``d`` only,
so the same study gives the same tables in-process, on a ``ProcessPoolExecutor`` or on a
Dask cluster. :func:`run` sends the chunks to ``executor.submit`` (the
``concurrent.futures`` protocol, which ``dask.distributed.Client`` follows too), writes each
finished chunk to ``out/chunk-XXXXX.parquet`` and, when started again on the same folder,
reads finished chunks instead of fitting them again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from cogfit._model import Model
from cogfit.recovery import simulate as sim
from cogfit.recovery.metrics import estimates
from cogfit.recovery.truth import TruthSpec, draw

STUDY_FILE = "study.json"


@dataclasses.dataclass(frozen=True)
class Study:
    """The settings of a recovery study (see :func:`cogfit.recover`)."""

    model: Model | str
    n_datasets: int
    design: sim.Design
    truth: TruthSpec
    method: Any
    hierarchy: Any
    seed: int
    chunk: int
    n_rank: int = 99

    @property
    def n_chunks(self) -> int:
        return -(-self.n_datasets // self.chunk)

    def datasets(self, index: int) -> np.ndarray:
        """Global indices of the datasets of chunk ``index``."""
        return np.arange(index * self.chunk, min((index + 1) * self.chunk, self.n_datasets))

    def resolved(self) -> Model:
        from cogfit.models import get
        return get(self.model)

    def fingerprint(self) -> dict:
        """What must match for a folder of finished chunks to belong to this study (JSON)."""
        d = self.design
        design = None if d.table is None else _digest(pd.DataFrame(
            {k: v.reshape(d.n_subjects * d.n_trials, -1).tolist() for k, v in d.table.items()}))
        return dict(model=self.resolved().name, fixed=dict(self.resolved().fixed), n_datasets=self.n_datasets,
                    chunk=self.chunk, n_subjects=d.n_subjects, n_trials=d.n_trials, design=design,
                    populations=list(d.populations), truth=_describe_truth(self.truth), seed=self.seed,
                    n_rank=self.n_rank, method=type(self.method).__name__, method_settings=self.method.settings(),
                    hierarchy=self.hierarchy.settings())


def portable(model: Model) -> Model | str:
    """A registered model by name (any pickler can send it), else the model itself."""
    from cogfit.models import available, get
    return model.name if model.name in available() and get(model.name) is model else model


def _digest(table: pd.DataFrame) -> str:
    hashed = pd.util.hash_pandas_object(table.astype(str), index=True).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()[:16]


def _dist_text(d) -> str:
    """``Normal(loc=0, scale=1)`` for a NumPyro distribution (stable across runs), else ``repr``."""
    if not hasattr(d, "arg_constraints"):
        return repr(d)
    args = ", ".join(f"{k}={np.asarray(getattr(d, k)).tolist()!r}" for k in sorted(d.arg_constraints) if hasattr(d, k))
    return f"{type(d).__name__}({args})"


def _describe_truth(truth: TruthSpec) -> str:
    if isinstance(truth, str):
        return truth
    if isinstance(truth, Model):
        return f"prior of {truth.name}:" + ";".join(f"{p.name}~{_dist_text(p.prior)},{_dist_text(p.sd_prior)}"
                                                 for p in truth.params)
    if isinstance(truth, pd.DataFrame):
        return f"table:{_digest(truth)}"
    if isinstance(truth, Mapping):
        return "distributions:" + json.dumps({k: _dist_text(v) for k, v in truth.items()}, sort_keys=True)
    return f"callable:{getattr(truth, '__module__', '?')}.{getattr(truth, '__qualname__', repr(truth))}"


def fit_seeds(seed: int, datasets: np.ndarray) -> list[int]:
    """The fit seed of each dataset: a function of the study's seed and the dataset's index."""
    return [int(np.random.SeedSequence([seed, int(d)]).generate_state(1)[0] >> 1) for d in datasets]


def simulate_chunk(study: Study, datasets: np.ndarray):
    """``(model, truth, [TrialData, ...])`` of ``datasets``."""
    model, d = study.resolved(), study.design
    truth = draw(model, study.truth, seed=study.seed, datasets=datasets, n_subjects=d.n_subjects,
                 population=d.population, n_populations=len(d.populations),
                 hierarchical=study.hierarchy.pooling == "partial")
    fields = sim.stimuli(model, d, study.seed, datasets)
    out = sim.responses(model, study.seed, datasets, truth.subject, fields)
    return model, truth, sim.datasets(d, fields, out)


def nuts_batched() -> bool:
    """Whether NUTS chunks run as one vectorised program: on an accelerator, not on a CPU."""
    import jax

    return jax.default_backend() != "cpu"


def fit_chunk(model: Model, data: list, study: Study, seeds: list[int]) -> tuple[dict, np.ndarray]:
    """Draws ``site -> (D, chain, draw, ...)`` and a warning flag per dataset.

    SVI and MAP: one :func:`cogfit.fit_batch` call; when its loss is not finite for some
    dataset, each dataset is fitted alone and those that fail are flagged (their draws NaN).
    NUTS: on an accelerator, one :func:`cogfit.fit_batch` call (every chain of every dataset
    vectorised) when the method's options allow it (:func:`cogfit.inference.batch.batchable`);
    on a CPU, where lockstep chains cost the sum of their gradients at the longest trajectory
    (measured 4.6x slower than a loop, ``benchmarks/RESULTS.md``), :func:`cogfit.fit` per dataset.
    Flagged where :meth:`cogfit.Fit.check` fails (R-hat, bulk ESS, divergences).
    """
    import cogfit

    if isinstance(study.method, (cogfit.SVI, cogfit.MAP)):
        try:
            batch = cogfit.fit_batch(model, data, method=study.method, hierarchy=study.hierarchy, seed=seeds,
                                     progress=False)
            return batch.samples, np.zeros(len(data), bool)
        except FloatingPointError:
            if len(data) == 1:
                raise
        parts = []
        for one, s in zip(data, seeds):
            try:
                parts.append((fit_chunk(model, [one], study, [s])[0], False))
            except FloatingPointError:
                parts.append((None, True))
        like = next((p for p, _ in parts if p is not None), None)
        if like is None:
            raise FloatingPointError(f"the loss is not finite for any of {len(data)} datasets")
        samples = {k: np.concatenate([p[k] if p is not None else np.full_like(v, np.nan) for p, _ in parts])
                   for k, v in like.items()}
        return samples, np.array([w for _, w in parts])
    from cogfit.inference.batch import batchable

    if batchable(study.method) and nuts_batched():
        batch = cogfit.fit_batch(model, data, method=study.method, hierarchy=study.hierarchy, seed=seeds,
                                 progress=False)
        return batch.samples, np.array([not batch.fit(i).check()["ok"] for i in range(len(data))])
    fits = [cogfit.fit(model, one, method=study.method, hierarchy=study.hierarchy, seed=s, progress=False,
                       warn=False) for one, s in zip(data, seeds)]
    samples = {k: np.stack([f.posterior[k].values for f in fits]) for k in fits[0].posterior.data_vars}
    return samples, np.array([not f.check()["ok"] for f in fits])


def run_chunk(study: Study, index: int) -> pd.DataFrame:
    """The estimates table (:func:`cogfit.recovery.metrics.estimates`) of chunk ``index``, with
    ``chunk`` and ``seconds`` (simulation and fit of the whole chunk) columns."""
    t0 = time.perf_counter()
    datasets = study.datasets(index)
    model, truth, data = simulate_chunk(study, datasets)
    samples, warning = fit_chunk(model, data, study, fit_seeds(study.seed, datasets))
    table = estimates(model, samples, truth, datasets, study.design.populations, warning, study.n_rank)
    table.insert(0, "chunk", index)
    table["seconds"] = time.perf_counter() - t0
    return table


def chunk_path(out: Path, index: int) -> Path:
    return out / f"chunk-{index:05d}.parquet"


def _open_folder(out: Path, study: Study) -> None:
    """Create ``out`` with the study's fingerprint, or check that an existing one matches."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / STUDY_FILE
    mine = json.loads(json.dumps(study.fingerprint()))
    if path.exists():
        theirs = json.loads(path.read_text())
        diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        if diff:
            raise ValueError(f"{out} holds a different study ({', '.join(f'{k}: {theirs.get(k)!r} there, '
                             f'{mine.get(k)!r} here' for k in diff)}); use another out folder")
    else:
        path.write_text(json.dumps(mine, indent=1))


def run(study: Study, *, executor=None, out: str | Path | None = None, progress: bool = True,
        on_chunk: Callable[[int, pd.DataFrame], None] | None = None) -> pd.DataFrame:
    """All chunks' estimates, in dataset order.

    ``executor``: any object with ``submit(fn, *args) -> future`` (``future.result()``); None
    runs in this process. ``out``: a folder; finished chunks are written there as Parquet and
    read back instead of refitted when the study is run again.
    """
    out = Path(out) if out is not None else None
    if out is not None:
        _open_folder(out, study)
    tables: dict[int, pd.DataFrame] = {}
    todo = []
    for i in range(study.n_chunks):
        if out is not None and chunk_path(out, i).exists():
            tables[i] = pd.read_parquet(chunk_path(out, i))
        else:
            todo.append(i)

    def finish(i: int, table: pd.DataFrame) -> None:
        if out is not None:
            tmp = chunk_path(out, i).with_suffix(".tmp")
            table.to_parquet(tmp, index=False)
            tmp.replace(chunk_path(out, i))
        tables[i] = table
        if on_chunk is not None:
            on_chunk(i, table)

    with tqdm(total=study.n_chunks, initial=len(tables), disable=not progress, desc="recovery", unit="chunk",
              dynamic_ncols=True) as bar:
        if executor is None:
            for i in todo:
                finish(i, run_chunk(study, i))
                bar.update()
        else:
            futures = [(i, executor.submit(run_chunk, study, i)) for i in todo]
            for i, f in futures:
                finish(i, f.result())
                bar.update()
    return pd.concat([tables[i] for i in sorted(tables)], ignore_index=True)
