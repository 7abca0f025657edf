"""Model comparison by PSIS-LOO (ArviZ), at the level where leaving data out is meaningful.

Two levels of pointwise log-likelihood:

``"trial"``
    One value per real trial: leave one trial out. Meaningful when trials are conditionally
    independent given the subject's parameters (prospect theory, drift-diffusion).
``"subject"``
    One value per subject, the sum over its trials: leave one subject out, i.e. how well the
    model predicts a new member of the population. The only meaningful level for learners, whose
    later choices depend on earlier ones (leaving out trial ``t`` does not remove it from the
    history that trials ``t+1, ...`` are conditioned on), and the level of a question about
    people rather than trials. The default for models that carry state across trials.

A trial whose log-likelihood is the same in every draw (e.g. a learner's first choice between
arms it has not tried) carries no information about the parameters; PSIS cannot fit a tail to
it, so the trial level refuses such data and names the trials.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Literal

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

Level = Literal["trial", "subject"]
LEVELS = ("trial", "subject")


def default_level(fit) -> str:
    """``"subject"`` for models that carry state across trials (learners), else ``"trial"``."""
    return "subject" if fit.model.stateful else "trial"


def pointwise(fit, level: Level | None = None) -> xr.DataArray:
    """Pointwise log-likelihood ``(chain, draw, obs)`` (``level="trial"``, real trials, coordinates
    ``obs_subject``) or ``(chain, draw, subject)`` (``level="subject"``, summed over each subject's
    trials), in nats."""
    level = default_level(fit) if level is None else level
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
    tree = fit.tree if "log_likelihood" in fit.tree else fit.with_log_likelihood().tree
    ll = tree["log_likelihood"]["choice"]
    if level == "trial":
        return ll
    subjects = ll["obs_subject"].values
    order = list(dict.fromkeys(subjects.tolist()))
    summed = ll.groupby(xr.DataArray(subjects, dims="obs", name="subject")).sum("obs")
    return summed.sel(subject=order)


def _tree(fit, ll: xr.DataArray) -> xr.DataTree:
    """A DataTree with the fit's posterior and the pointwise log-likelihood (what ArviZ reads)."""
    dim = ll.dims[-1]
    ll = ll.rename({dim: "choice_dim"}).drop_vars([c for c in ll.coords if c not in ("chain", "draw")])
    return xr.DataTree.from_dict({"posterior": fit.posterior, "log_likelihood": xr.Dataset({"choice": ll})})


def _constant(ll: xr.DataArray) -> np.ndarray:
    values = ll.values.reshape(-1, ll.shape[-1])
    return np.flatnonzero(values.max(0) - values.min(0) <= np.finfo(np.float32).eps * np.abs(values).max(0))


def loo(fit, level: Level | None = None):
    """PSIS-LOO of one fit at ``level`` (ArviZ's ``loo``, pointwise): an ``ELPDData``."""
    level = default_level(fit) if level is None else level
    ll = pointwise(fit, level)
    const = _constant(ll)
    if len(const):
        where = ll.isel({ll.dims[-1]: const[:5]})
        names = [f"subject {s}" for s in (where["obs_subject"].values if level == "trial" else where["subject"].values)]
        raise ValueError(f"{len(const)} {level}s have the same log-likelihood in every posterior draw (first: "
                         f"{names}; e.g. a learner's first choice): they say nothing about the parameters and PSIS "
                         f"cannot weight them. Compare at level='subject'.")
    return az.loo(_tree(fit, ll), pointwise=True)


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The result of :func:`compare`.

    ``table``: ArviZ's comparison (``rank``, ``elpd``, ``p``, ``elpd_diff``, ``weight``, ``se``,
    ``dse``, ``warning``) with ``level`` and ``n_high_k`` (points whose Pareto k exceeds ArviZ's
    threshold) added; ``loo``: each model's ``ELPDData``; ``notes``: what each warning means.
    """

    table: pd.DataFrame
    loo: dict
    level: str
    notes: tuple[str, ...]

    def __str__(self) -> str:
        head = f"PSIS-LOO comparison, leaving out one {self.level} at a time (elpd in nats, higher is better):"
        return "\n".join([head, self.table.to_string(), *self.notes])


def compare(fits: Mapping[str, object], *, level: Level | None = None, method: str = "stacking") -> Comparison:
    """Compare fits of the same data by PSIS-LOO (``arviz.compare``).

    ``fits`` maps a label to a :class:`~cogfit.Fit` (all of the same subjects and trials);
    ``level`` is ``"trial"`` or ``"subject"`` (default: ``"subject"`` if any model is a learner,
    else ``"trial"``); ``method`` is ArviZ's weighting (``"stacking"``, ``"BB-pseudo-BMA"``,
    ``"pseudo-BMA"``).
    """
    if len(fits) < 2:
        raise ValueError(f"compare needs at least two fits, got {len(fits)}")
    if level is None:
        level = "subject" if any(default_level(f) == "subject" for f in fits.values()) else "trial"
    first = next(iter(fits.values()))
    for name, f in fits.items():
        if list(f.data.subjects) != list(first.data.subjects) or f.data.n_trials.sum() != first.data.n_trials.sum():
            raise ValueError(f"fit {name!r} is of other data ({f.data.n_subjects} subjects, "
                             f"{int(f.data.n_trials.sum())} trials) than the first ({first.data.n_subjects}, "
                             f"{int(first.data.n_trials.sum())}): PSIS-LOO compares models of the same data")
    results = {name: loo(f, level) for name, f in fits.items()}
    table = az.compare(results, method=method).copy()
    high = {name: int((r.pareto_k.values > r.good_k).sum()) for name, r in results.items()}
    table["n_high_k"] = pd.Series(high)
    table["level"] = level
    notes = []
    for name, n in high.items():
        if n:
            k = results[name].good_k
            notes.append(f"{name}: {n} of {results[name].n_data_points} {level}s have Pareto k > {k:.2f}: leaving "
                         f"{'it' if n == 1 else 'each'} out changes the posterior too much for importance sampling, "
                         f"so their elpd is unreliable (usually an influential {level}, or a model that fits it "
                         "badly). Refit without them (exact LOO) or use K-fold cross-validation before trusting a "
                         "small elpd_diff.")
    if level == "subject":
        notes.append("Leaving out a whole subject asks how well each model predicts a new member of the population; "
                     "with few subjects the standard errors (se, dse) are wide.")
    return Comparison(table=table, loo=results, level=level, notes=tuple(notes))
