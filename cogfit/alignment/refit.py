"""The group-level ceiling from refits: the reference's members fitted again as two populations,
its size-matched part ``A`` and the rest ``B``, once per split, all splits in one vmapped SVI call
(:func:`cogfit.fit_batch`). Each part's ``(mu, sigma)`` then comes from a hierarchical fit of
that part alone, shrinkage included, instead of from the members' values in the joint fit
(:func:`cogfit.alignment.ceiling.part_posterior`, the default)."""

from __future__ import annotations

import dataclasses

import numpy as np

from cogfit._hierarchy import Hierarchy
from cogfit.alignment.ceiling import Splits
from cogfit.inference import SVI, fit_batch
from cogfit.inference.blocks import subset


def refit_parts(fit, reference: str, splits: Splits, *, method: SVI, seed: int = 0) -> dict[str, np.ndarray]:
    """Refit the reference as parts ``B`` (population 0) and ``A`` (population 1) per split.

    Returns site -> draws: ``<p>_mu``, ``<p>_sigma`` with shape ``(n_splits, draws, 2)`` (B, A),
    and ``<p>_nu`` ``(n_splits, draws)`` where the fit's Student-t populations fit ``nu``.
    """
    data, meta = fit.data, fit.meta
    g = list(data.populations).index(reference)
    ref = np.flatnonzero(np.asarray(data.population) == g)
    base = subset(data, ref, g)
    position = {int(s): i for i, s in enumerate(ref)}
    datasets = []
    for a in splits.a:
        labels = np.zeros(len(ref), np.asarray(base.population).dtype)
        labels[[position[int(s)] for s in a]] = 1
        datasets.append(dataclasses.replace(base, population=labels, populations=(f"{reference} B", f"{reference} A")))
    hierarchy = Hierarchy(population=meta.get("population", "normal") or "normal", nu=meta.get("nu"),
                          by_condition=tuple(meta.get("by_condition", ())))
    batch = fit_batch(fit.model, datasets, method=method, hierarchy=hierarchy, seed=seed, progress=False)
    out = {}
    for p in fit.model.params:
        for suffix in ("_mu", "_sigma", "_nu"):
            if p.name + suffix in batch.samples:
                out[p.name + suffix] = batch.samples[p.name + suffix][:, 0]
    return out
