"""Model recovery: simulate from each of several models, fit every candidate, compare by PSIS-LOO.

For each generating model, datasets are simulated as in :func:`cogfit.recover` (truths from
its prior, the first model's design unless a design table is given); every candidate is fitted
to every dataset with :func:`cogfit.fit_batch`, and the candidate with the highest ELPD
(PSIS-LOO, ArviZ, per-trial log-likelihoods of the model's own ``loglik``) is the best fit. The confusion matrix is
``P(best = c | true = g)``; the inversion matrix ``P(true = g | best = c)`` assumes every
generating model equally likely a priori (Wilson & Collins 2019).

LOO over SVI or MAP/Laplace draws estimates the ELPD of the approximate posterior; its
Pareto k (reported per fit) says how far the importance weights can be trusted.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from tqdm import tqdm

from cogfit._model import Model
from cogfit._record import Record
from cogfit.recovery import plots
from cogfit.recovery.run import fit_seeds, simulate_chunk
from cogfit.recovery.simulate import compiled
from cogfit.recovery.study import study


@dataclasses.dataclass(frozen=True, eq=False)
class ModelRecovery:
    """Result of :func:`model_recovery`.

    ``table``: one row per generating model, dataset and candidate: ``true_model``,
    ``dataset``, ``candidate``, ``elpd`` (PSIS-LOO, log scale), ``se``, ``p_loo``,
    ``max_pareto_k``, ``best`` (the highest ELPD of that dataset).
    """

    table: pd.DataFrame

    def to_pandas(self) -> pd.DataFrame:
        return self.table.copy()

    def confusion(self) -> pd.DataFrame:
        """``P(best = column | true = row)``: each row sums to 1."""
        best = self.table[self.table["best"]]
        m = pd.crosstab(best["true_model"], best["candidate"], normalize="index")
        names = list(dict.fromkeys(self.table["candidate"]))
        m = m.reindex(index=list(dict.fromkeys(self.table["true_model"])), columns=names, fill_value=0.0)
        m.index.name, m.columns.name = "true model", "best-fitting model"
        return m

    def inversion(self) -> pd.DataFrame:
        """``P(true = row | best = column)`` with equal prior weight on the generating models:
        each column sums to 1 (NaN where no dataset was best fitted by that candidate)."""
        c = self.confusion()
        return c / c.sum(axis=0).replace(0.0, np.nan)

    def plot_confusion(self):
        return plots.confusion(self.confusion(), title="Confusion: P(best-fitting | true)")

    def plot_inversion(self):
        return plots.confusion(self.inversion(), title="Inversion: P(true | best-fitting)")


def pointwise_loglik(model: Model, data: list, samples: dict) -> np.ndarray:
    """Per-trial log-likelihoods ``(D, draws, S * T)`` of every dataset (all trials real, as
    simulated datasets are) under its own draws ``samples[<p>]`` ``(D, 1, draws, S)``: one
    compiled program for all datasets, where ``Fit.with_log_likelihood`` compiles one per fit."""
    fields = {k: jnp.asarray(np.stack([np.asarray(d.fields[k]) for d in data])) for k in data[0].fields}
    values = {p.name: jnp.asarray(samples[p.name][:, 0]) for p in model.params}
    D, N, S = values[model.params[0].name].shape
    theta = Record({**{k: jnp.full((D, N, S), v) for k, v in model.fixed.items()}, **values})
    per_subject = jax.vmap(model.loglik)                                   # subjects
    per_draw = jax.vmap(per_subject, in_axes=(0, None))                     # draws share the trials
    ll = compiled(model, "loglik", lambda: jax.vmap(per_draw))(theta, Record(fields))   # datasets
    return np.asarray(ll, np.float64).reshape(D, N, -1)


def loo_row(ll: np.ndarray) -> dict:
    """PSIS-LOO (ArviZ) of one dataset's per-trial log-likelihoods ``(draws, trials)``; the draws
    are independent (SVI, Laplace), so the relative efficiency is 1."""
    tree = az.from_dict({"log_likelihood": {"choice": ll[None]}})
    with warnings.catch_warnings():          # ArviZ warns per fit at k > 0.7; max_pareto_k reports it
        warnings.simplefilter("ignore", UserWarning)
        res = az.loo(tree, reff=1.0)
    return dict(elpd=float(res.elpd), se=float(res.se), p_loo=float(res.p),
                max_pareto_k=float(np.nanmax(np.asarray(res.pareto_k))))


def model_recovery(models: Sequence[Model | str], *, n_datasets: int, n_subjects: int | None = None,
                   n_trials: int | None = None, design: pd.DataFrame | None = None, method=None,
                   hierarchical=True, seed: int = 0, progress: bool = True) -> ModelRecovery:
    """Simulate ``n_datasets`` datasets from each of ``models`` and fit each of them to every
    dataset (see the module docstring). The models must read columns the design and the
    simulators provide (e.g. prospect-theory variants on lottery designs)."""
    import cogfit

    models = [cogfit.models.get(m) for m in models]
    if len({m.name for m in models}) != len(models):
        raise ValueError(f"model names must differ: {[m.name for m in models]}")
    design_fn = models[0].design
    rows = []
    bar = tqdm(total=len(models) ** 2, disable=not progress, desc="model recovery", unit="fit batch")
    for g, true in enumerate(models):
        gen = true if design is not None or true.design is design_fn else dataclasses.replace(true, design=design_fn)
        st = study(gen, n_datasets=n_datasets, n_subjects=n_subjects, n_trials=n_trials, design=design,
                   method=method, hierarchical=hierarchical, seed=seed + 1000 * g, chunk=n_datasets)
        datasets = st.datasets(0)
        _, _, data = simulate_chunk(st, datasets)
        for cand in models:
            missing = [c for c in cand.requires if c not in data[0].fields]
            if missing:
                raise ValueError(f"candidate {cand.name!r} needs columns {missing} that {true.name!r}'s simulated "
                                 f"data lack; model recovery needs models of one design")
            batch = cogfit.fit_batch(cand, data, method=st.method, hierarchy=st.hierarchy,
                                     seed=fit_seeds(st.seed, datasets), progress=False)
            ll = pointwise_loglik(cand, data, batch.samples)
            for i in range(len(data)):
                rows.append(dict(true_model=true.name, dataset=int(datasets[i]), candidate=cand.name,
                                 **loo_row(ll[i])))
            bar.update()
    bar.close()
    table = pd.DataFrame(rows)
    top = table.groupby(["true_model", "dataset"])["elpd"].transform("max")
    table["best"] = table["elpd"] == top
    return ModelRecovery(table)
