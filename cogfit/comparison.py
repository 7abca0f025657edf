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

A point whose log-likelihood is the same in every draw (a learner's first choice between arms it
has not tried) carries no information about the parameters; its leave-one-out density is that
value exactly (see :func:`loo`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Literal

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import logsumexp

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
    ll = ll.rename({dim: "choice_dim"})
    ll = ll.drop_vars([c for c in ll.coords if c not in ("chain", "draw")])
    return xr.DataTree.from_dict({"posterior": fit.posterior, "log_likelihood": xr.Dataset({"choice": ll})})


FLAT_TAIL = 5   # the fewest tail draws ArviZ fits a Pareto tail to


def _flat(ll: xr.DataArray) -> np.ndarray:
    """Points whose largest ``FLAT_TAIL`` importance log-weights (``-ll``) are equal, e.g. the same
    value in every draw: ArviZ cannot fit a tail to them ("All tail values are the same")."""
    values = -ll.values.reshape(-1, ll.shape[-1])
    top = np.sort(values, axis=0)[-FLAT_TAIL:]
    return np.flatnonzero(top.max(0) == top.min(0))


def loo(fit, level: Level | None = None):
    """PSIS-LOO of one fit at ``level`` (ArviZ's ``loo``, pointwise): an ``ELPDData``.

    Points whose largest importance weights are tied (the same log-likelihood in every draw, as a
    learner's first choice; or a choice predicted with probability 1 to float precision by most
    draws) have bounded weights, which need no Pareto smoothing but defeat ArviZ's tail fit: their
    ``elpd_i`` is the plain importance-sampling estimate ``-log mean(exp(-ll))`` (the value itself
    when it is constant) and their Pareto k is 0; the other points go to ArviZ, and the two are
    joined.
    """
    level = default_level(fit) if level is None else level
    ll = pointwise(fit, level)
    dim, n = ll.dims[-1], ll.shape[-1]
    flat = _flat(ll)
    keep = np.setdiff1d(np.arange(n), flat)
    if not len(keep):
        raise ValueError(f"every {level}'s importance weights are tied: the log-likelihood hardly varies "
                         "over the posterior draws")
    result = az.loo(_tree(fit, ll.isel({dim: keep})), pointwise=True)
    if not len(flat):
        return result
    draws = ll.values.reshape(-1, n)[:, flat]
    log_s = np.log(draws.shape[0])
    elpd_flat = -(logsumexp(-draws, axis=0) - log_s)
    lppd_flat = logsumexp(draws, axis=0) - log_s
    elpd_i, k = np.empty(n), np.zeros(n)
    elpd_i[keep], k[keep] = result.elpd_i.values, result.pareto_k.values
    elpd_i[flat] = elpd_flat
    return dataclasses.replace(result, elpd=float(elpd_i.sum()), se=float(np.sqrt(n * np.var(elpd_i))),
                               p=float(result.p + np.sum(lppd_flat - elpd_flat)), n_data_points=n,
                               elpd_i=xr.DataArray(elpd_i, dims="choice_dim"),
                               pareto_k=xr.DataArray(k, dims="choice_dim"), log_weights=None, p_loo_i=None,
                               n_eff_i=None, influence_pareto_k=None)


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
        return "\n".join([head, self.table.to_string(float_format=lambda x: f"{x:.4g}"), *self.notes])


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
    table = az.compare(results, method=method, round_to="none").copy()
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
