"""Matched twins: each LLM participant paired with one person (a persona from that person's
metadata, or the LLM continuing that person's transcript). Is an LLM participant closer to *its*
person than to a random other person?

Per pair ``(member, twin)`` and parameter, the distance between the two subject posteriors is the
Wasserstein-1 distance between their draws on the natural scale (the empirical quantile coupling:
the mean absolute difference of the sorted draws, in the parameter's units). Its baseline pairs
every member with the other persons of its twin's population (all of them, not its twin): the
distance a random person would have. Per parameter the table reports the pairs' median distance
and ``prob`` interval over pairs, the same for a random person (per pair the median over the other
persons), their ratio, and ``closer``: per pair the share of other persons farther from the member
than its twin, averaged over pairs (0.5: the twin is no closer than anyone; 1: always closest).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd


def _sorted_draws(values: np.ndarray) -> np.ndarray:
    """``(chain, draw, subject) -> (subject, draws)`` sorted along draws."""
    flat = values.reshape(-1, values.shape[-1]).T
    return np.sort(flat, axis=1)


def _w1(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Empirical W1 between sorted draw sets ``a (..., n)`` and ``b (..., n)``."""
    return np.mean(np.abs(a - b), axis=-1)


def twins(fit, pairs: Mapping[str, str] | pd.DataFrame, *, params: list[str] | None = None,
          prob: float = 0.94) -> pd.DataFrame:
    """Per parameter: how close matched members are to their twins (:mod:`cogfit.alignment.twins`).

    Parameters
    ----------
    pairs
        ``member -> twin`` subject ids (e.g. ``{"llm/3": "human/3"}``), or a table with columns
        ``member`` and ``twin``.
    prob
        Probability of the intervals over pairs.

    Returns
    -------
    One row per parameter: ``param``, ``pairs``, ``twin_w1`` (median over pairs, natural units)
    with ``twin_lo``, ``twin_hi``; ``random_w1``, ``random_lo``, ``random_hi``; ``ratio``
    (twin / random medians) and ``closer``.
    """
    if isinstance(pairs, pd.DataFrame):
        missing = {"member", "twin"} - set(pairs.columns)
        if missing:
            raise ValueError(f"pairs table needs columns 'member' and 'twin'; it lacks {sorted(missing)}")
        pairs = dict(zip(pairs["member"].astype(str), pairs["twin"].astype(str)))
    ids = [str(s) for s in fit.data.subjects]
    index = {s: i for i, s in enumerate(ids)}
    unknown = sorted({s for kv in pairs.items() for s in kv} - set(index))
    if unknown:
        raise ValueError(f"pairs name subjects not in the fit: {unknown[:10]}")
    if not pairs:
        raise ValueError("pairs is empty")
    members = np.array([index[m] for m in pairs])
    twin = np.array([index[t] for t in pairs.values()])
    pop = np.asarray(fit.data.population)
    q = [(1 - prob) / 2, (1 + prob) / 2]
    rows = []
    post = fit.posterior
    for name in params or list(fit.model.param_names):
        if "condition" in post[name].dims:
            raise ValueError(f"{name!r} varies by condition; compare twins per condition by selecting it first")
        draws = _sorted_draws(post[name].values)                          # (S, n)
        own = _w1(draws[members], draws[twin])                            # (pairs,)
        random, closer = np.empty(len(members)), np.empty(len(members))
        for k, (m, t) in enumerate(zip(members, twin)):
            others = np.flatnonzero((pop == pop[t]) & (np.arange(len(pop)) != t) & (np.arange(len(pop)) != m))
            if not len(others):
                raise ValueError(f"twin {ids[t]!r}'s population has no other member to compare with")
            d = _w1(draws[m][None], draws[others])
            random[k], closer[k] = np.median(d), np.mean(own[k] < d)
        rows.append(dict(param=name, pairs=len(members), twin_w1=float(np.median(own)),
                         twin_lo=float(np.quantile(own, q[0])), twin_hi=float(np.quantile(own, q[1])),
                         random_w1=float(np.median(random)), random_lo=float(np.quantile(random, q[0])),
                         random_hi=float(np.quantile(random, q[1])),
                         ratio=float(np.median(own) / np.median(random)) if np.median(random) > 0 else np.inf,
                         closer=float(np.mean(closer))))
    return pd.DataFrame(rows)
