"""Multi-armed bandit environments: fixed, drifting (random-walk) and reversal.

An environment is seeded and model-free: it holds a payoff schedule ``payoffs[t, k]`` (what
arm ``k`` pays on trial ``t``) drawn once from its seed, so any player (a learner, a person, a
language model) facing the same seed meets the same world, and the schedule exports as a design
table (``payoff_1..payoff_K``) that the bandit models' simulators read.
"""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd

from cogfit.tasks import _schedules as sched


class Bandit:
    """A K-armed bandit with a precomputed payoff schedule.

    Parameters
    ----------
    payoffs
        ``(n_trials, K)`` payoff of every arm on every trial (e.g. 0/1 food rewards).
    probabilities
        ``(n_trials, K)`` the reward probability (or mean payoff) behind each payoff, kept for
        plots and for scoring a player; not shown to the player.

    Use ``reset()`` to start over, ``step(choice) -> payoff`` to play one trial (``choice`` is
    the arm code ``0..K-1``), ``design()`` for the schedule as a tidy table.
    """

    def __init__(self, payoffs: np.ndarray, probabilities: np.ndarray):
        payoffs = np.asarray(payoffs, dtype=float)
        probabilities = np.asarray(probabilities, dtype=float)
        if payoffs.ndim != 2 or payoffs.shape != probabilities.shape:
            raise ValueError(
                f"payoffs and probabilities must both be (n_trials, n_arms); got "
                f"{payoffs.shape} and {probabilities.shape}"
            )
        self.payoffs = payoffs
        self.probabilities = probabilities
        self.trial = 0

    @property
    def n_trials(self) -> int:
        return self.payoffs.shape[0]

    @property
    def n_arms(self) -> int:
        return self.payoffs.shape[1]

    @property
    def done(self) -> bool:
        return self.trial >= self.n_trials

    def reset(self) -> None:
        """Back to trial 0 (the schedule is fixed by the seed)."""
        self.trial = 0

    def step(self, choice: int) -> float:
        """Play arm ``choice`` on the current trial and return its payoff."""
        if self.done:
            raise RuntimeError(f"the bandit has no trials left (n_trials={self.n_trials})")
        if not (isinstance(choice, (int, np.integer)) and 0 <= choice < self.n_arms):
            raise ValueError(f"choice must be an arm code 0..{self.n_arms - 1}, got {choice!r}")
        payoff = float(self.payoffs[self.trial, choice])
        self.trial += 1
        return payoff

    def design(self) -> pd.DataFrame:
        """The payoff schedule: columns ``trial`` (0-based) and ``payoff_1..payoff_K``."""
        table = pd.DataFrame(self.payoffs, columns=[f"payoff_{k + 1}" for k in range(self.n_arms)])
        table.insert(0, "trial", np.arange(self.n_trials))
        return table


def _draw(key: jax.Array, probabilities: jax.Array, noise_sd: float | None) -> np.ndarray:
    if noise_sd is None:
        return np.asarray(sched.bernoulli_payoffs(key, probabilities))
    return np.asarray(sched.gaussian_payoffs(key, probabilities, noise_sd))


def fixed_bandit(
    probabilities, n_trials: int, *, seed: int, noise_sd: float | None = None
) -> Bandit:
    """Arms with constant reward probabilities ``probabilities`` (K,).

    With ``noise_sd=None`` payoffs are Bernoulli(p) (0/1); otherwise they are Gaussian with
    mean ``probabilities[k]`` and standard deviation ``noise_sd``.
    """
    p = np.broadcast_to(np.asarray(probabilities, dtype=float), (n_trials, len(probabilities)))
    return Bandit(_draw(jax.random.key(seed), p, noise_sd), p)


def drifting_bandit(
    n_arms: int,
    n_trials: int,
    *,
    seed: int,
    sd: float = 0.025,
    low: float = 0.25,
    high: float = 0.75,
    noise_sd: float | None = None,
) -> Bandit:
    """Restless bandit: each arm's probability (or mean) follows a reflected Gaussian random walk.

    Starts uniform in ``[low, high]``; step sd ``sd`` per trial. Defaults follow Daw et al.
    (2011). Payoffs as in :func:`fixed_bandit`.
    """
    k_start, k_walk, k_pay = jax.random.split(jax.random.key(seed), 3)
    start = jax.random.uniform(k_start, (n_arms,), minval=low, maxval=high)
    p = sched.random_walk(k_walk, start, n_trials, sd=sd, low=low, high=high)
    return Bandit(_draw(k_pay, p, noise_sd), np.asarray(p))


def reversal_bandit(
    probabilities, n_trials: int, *, every: int, seed: int, noise_sd: float | None = None
) -> Bandit:
    """Arms whose probabilities swap (order reversed) every ``every`` trials."""
    p = sched.reversal_schedule(probabilities, n_trials, every)
    return Bandit(_draw(jax.random.key(seed), p, noise_sd), np.asarray(p))
