"""Design sweep: recovery as a function of subjects and trials per subject, for planning."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from cogfit._model import Model
from cogfit.recovery.study import recover


def sweep(model: Model | str, *, n_subjects: Sequence[int], n_trials: Sequence[int], n_datasets: int,
          out: str | Path | None = None, **kwargs) -> pd.DataFrame:
    """:func:`cogfit.recover` on every combination of ``n_subjects`` x ``n_trials``: the rows of
    each study's ``summary()`` with ``n_subjects`` and ``n_trials`` columns (plot them with
    :func:`cogfit.recovery.plots.sweep`). ``out``: one resumable folder per combination,
    ``S<subjects>_T<trials>``. Other keyword arguments go to :func:`cogfit.recover`."""
    frames = []
    for s in n_subjects:
        for t in n_trials:
            where = None if out is None else Path(out) / f"S{s}_T{t}"
            res = recover(model, n_datasets=n_datasets, n_subjects=s, n_trials=t, out=where, **kwargs)
            frames.append(res.summary().assign(n_subjects=s, n_trials=t))
    return pd.concat(frames, ignore_index=True)
