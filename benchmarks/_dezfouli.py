"""Shared parts of the dezfouli2019 benchmark scripts (``rl_*.py``): the data, the fit settings,
the command line every script shares and its JSON output.

Dezfouli et al. (2019): a two-armed bandit, 101 participants, 132,251 choices in 12 blocks,
diagnosis (Healthy / Depression / Bipolar) as population. Results: ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from typing import NamedTuple

import jax
import numpy as np
import pandas as pd

import cogfit

DIAGNOSES = ("Healthy", "Depression", "Bipolar")
REAL_MODEL = "bandit_dual_rep_h_blocks"   # beta_h for the inverse temperature (models/bandit.py)
BETA_MODEL = "bandit_dual_rep_blocks"     # the same likelihood with beta itself (rl_profile.py)
# Draws per chain of rl_nuts.py and rl_block.py: what every diagnosis needs for R-hat <= 1.01 and
# no divergences (benchmarks/RESULTS.md, dezfouli).
NUTS_DRAWS = 2000
# Participants whose likelihood has a fast and a slow regime (rl_profile.py, rl_modes.py defaults).
TWO_REGIMES = ("s_20_d", "s_022_", "s_133_", "s_146_")


class Settings(NamedTuple):
    """How ``rl_nuts.py`` fits dezfouli by default: ``cogfit.fit(..., method=method,
    hierarchy=hierarchy)``."""

    method: cogfit.NUTS
    hierarchy: cogfit.Hierarchy


# A Student-t population with nu fixed at 4, centring per participant and parameter and the start
# from an SVI pilot, mode-jump moves found after warm-up, each diagnosis alone.
DEFAULT_FIT = Settings(
    cogfit.NUTS(draws=NUTS_DRAWS, centered="auto", init="svi", jumps="auto", blocks="population"),
    cogfit.Hierarchy(population="student_t", nu=4.0),
)


def dezfouli_table(n_per_group: int | None = None) -> pd.DataFrame:
    """The tidy dezfouli2019 table, optionally the first ``n_per_group`` participants per diagnosis."""
    import cogfit.datasets

    table = cogfit.datasets.load("psych201/dezfouli2019")
    if n_per_group is not None:
        keep = table.groupby("population")["subject"].unique().apply(lambda s: list(s[:n_per_group])).sum()
        table = table[table["subject"].isin(keep)]
    return table


def participants(table: pd.DataFrame, ids) -> dict[str, pd.DataFrame]:
    """The rows of each participant in ``ids`` (``SystemExit`` naming the ids not in ``table``)."""
    missing = [s for s in ids if s not in set(table.subject)]
    if missing:
        raise SystemExit(f"no participants {missing} in dezfouli2019")
    return {s: table[table.subject == s] for s in ids}


def parser(doc: str) -> argparse.ArgumentParser:
    """A parser with the options every script shares: ``--seed``, ``--cores``, ``--progress``, ``--out``."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cores", type=int, default=1,
                    help="CPU devices, one chain each at a time (1: chains one after another)")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--out", default=None, help="also write the JSON result to this file")
    return ap


def start(ap: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parse the command line and give JAX ``--cores`` CPU devices (before any JAX work)."""
    args = ap.parse_args(argv)
    if args.cores > 1:
        jax.config.update("jax_num_cpu_devices", args.cores)
    return args


def emit(result: dict, out: str | None) -> None:
    """Print the JSON result and, with ``out``, also write it there."""
    text = json.dumps(result, indent=1)
    print(text)
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as f:
            f.write(text + "\n")


def chain_stats(stats) -> dict:
    """Per chain of one NUTS run's ``sample_stats``: mean acceptance, step size and leapfrog
    steps per draw."""
    def by_chain(name):
        return [round(float(v), 3) for v in stats[name].mean("draw").values]

    return dict(acceptance=by_chain("acceptance_rate"), step_size=by_chain("step_size"),
                leapfrog_steps=by_chain("n_steps"))


def populations(hier: cogfit.Fit) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Posterior means of the hierarchical fit ``hier``'s populations on the unconstrained scale:
    ``mu`` and ``sigma`` shaped ``(diagnosis, param)`` (rows in ``DIAGNOSES`` order, columns in
    the model's parameter order) and, for a Student-t population, ``nu`` shaped ``(param,)``
    (``None`` for a normal one)."""
    post, names = hier.posterior, hier.model.param_names
    mu, sigma = (np.stack([post[f"{p}_{k}"].mean(("chain", "draw")).sel(population=list(DIAGNOSES)).values
                           for p in names], axis=-1) for k in ("mu", "sigma"))
    nu = None
    if hier.meta.get("population") == "student_t":
        nu = np.array([hier.meta.get("nu") or float(post[f"{p}_nu"].mean()) for p in names])
    return mu, sigma, nu


def under_population(hier: cogfit.Fit, pop: str) -> cogfit.Model:
    """The fitted model with each parameter's prior set to population ``pop``'s distribution of
    subjects in the hierarchical fit ``hier`` (:func:`populations`), on the unconstrained scale:
    one subject alone under it."""
    import numpyro.distributions as dist

    mu, sigma, nu = populations(hier)
    g = DIAGNOSES.index(pop)

    def prior(j):
        if nu is not None:
            return dist.StudentT(float(nu[j]), float(mu[g, j]), float(sigma[g, j]))
        return dist.Normal(float(mu[g, j]), float(sigma[g, j]))

    base = hier.model
    return dataclasses.replace(base, name=f"{base.name}_under_{pop}",
                               params=tuple(p._replace(prior=prior(j)) for j, p in enumerate(base.params)))
