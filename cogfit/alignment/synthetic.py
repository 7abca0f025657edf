"""A :class:`~cogfit.Fit` built from a synthetic posterior with known population distributions:
for tests, benchmarks and worked examples of alignment, without running inference.

Population ``g``'s members have unconstrained values ``u ~ mu_g + sigma_g * t`` (``t`` normal, or
Student-t with ``nu``); the synthetic posterior of draw ``d`` puts each member at its true value
plus noise of sd ``member_sd`` (its own data's uncertainty), ``mu`` at the members' mean plus
noise of sd ``sigma_g / sqrt(n_g)`` and ``sigma`` at their sd times ``exp`` of noise of sd
``1 / sqrt(2 n_g)``: roughly what a hierarchical fit of these members would return.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from cogfit._data import TrialData
from cogfit._fit import assemble
from cogfit._simulate import random_design, simulate
from cogfit.models import get


def synthetic_fit(model, populations: Mapping[str, tuple[int, Mapping[str, tuple[float, float]]]], *,
                  chains: int = 2, draws: int = 200, nu: float | None = None, member_sd: float = 0.1,
                  n_trials: int = 2, simulate_choices: bool = False, seed: int = 0, dtype=np.float32):
    """A Fit whose posterior is synthetic.

    Parameters
    ----------
    model
        A model or its registry name.
    populations
        ``name -> (n_members, {param: (mu, sigma)})``, ``mu`` and ``sigma`` on the unconstrained
        scale; populations in this order.
    nu
        Student-t populations with these degrees of freedom (``meta["nu"]``), else normal.
    n_trials, simulate_choices
        Trials per member (the model's random design); choices simulated from each member's true
        values with ``simulate_choices``, else uniformly random.
    """
    model = get(model)
    rng = np.random.default_rng(seed)
    names = list(populations)
    sizes = [populations[g][0] for g in names]
    labels = np.repeat(names, sizes)
    design = random_design(model, n_subjects=len(labels), n_trials=n_trials, seed=seed)
    design["population"] = labels[design["subject"].to_numpy()]
    design["choice"] = rng.integers(0, model.n_options or 2, len(design))
    spread = (lambda size: rng.standard_t(nu, size)) if nu else (lambda size: rng.normal(size=size))
    samples, truth = {}, {}
    for p in model.params:
        u_true = np.concatenate([populations[g][1][p.name][0] + populations[g][1][p.name][1] * spread(n)
                                 for g, n in zip(names, sizes)])
        truth[p.name] = np.asarray(p.transform.forward(u_true))
        u = u_true + member_sd * rng.normal(size=(chains, draws, len(u_true)))
        mu, sigma = [], []
        for g, n in zip(names, sizes):
            part = u_true[labels == g]
            mu.append(part.mean() + part.std(ddof=1) / np.sqrt(n) * rng.normal(size=(chains, draws)))
            sigma.append(part.std(ddof=1) * np.exp(rng.normal(size=(chains, draws)) / np.sqrt(2 * n)))
        mu, sigma = np.stack(mu, -1), np.stack(sigma, -1)
        samples[p.name] = np.asarray(p.transform.forward(u.astype(dtype)))
        samples[f"{p.name}_mu"] = mu.astype(dtype)
        samples[f"{p.name}_sigma"] = sigma.astype(dtype)
        samples[f"{p.name}_group"] = np.asarray(p.transform.forward(mu.astype(dtype)))
    if simulate_choices:
        design = simulate(model, design.drop(columns="choice"), truth, seed=seed + 1)
    data = TrialData.from_table(design, model, populations=names)
    attrs = dict(by_condition=[], method="synthetic", pooling="partial", chains=chains, draws=draws,
                 population="student_t" if nu else "normal", nu=nu, seed=seed,
                 precision=np.dtype(dtype).name)
    return assemble(model, data, samples, {}, attrs=attrs)


__all__ = ["synthetic_fit"]
