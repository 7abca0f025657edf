"""The two-step task (Daw et al. 2011) with drifting reward probabilities.

Stage 1: choose action 0 or 1; action ``a`` leads to second-stage state ``a`` with the common
probability (0.7) and to the other state otherwise. Stage 2: in state ``s`` choose action 0 or
1 and receive a 0/1 reward with probability ``p[t, s, a]``; the four probabilities follow
reflected Gaussian random walks (sd 0.025 in [0.25, 0.75]).

The environment is seeded and model-free: whether trial ``t``'s transition is common and what
each (state, action) would pay are drawn in advance, so the whole world exports as a design
table (``common``, ``payoff_1..payoff_4``) that the two-step model's simulator reads.
"""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd

from cogfit.tasks import _schedules as sched

PAYOFF_ORDER = ("state 0 action 0", "state 0 action 1", "state 1 action 0", "state 1 action 1")


class TwoStep:
    """Seeded two-step task.

    Parameters
    ----------
    n_trials
        Number of trials.
    seed
        Fixes transitions, reward probabilities and rewards.
    common
        Probability of the common transition (action ``a`` -> state ``a``).
    sd, low, high
        Random walk of the reward probabilities.

    Play a trial with ``step(choice)`` twice: the first call (stage 1) returns the
    second-stage state (0/1), the second (stage 2) returns the reward (0.0/1.0).
    ``stage`` tells which call is next (1 or 2).
    """

    def __init__(
        self,
        n_trials: int,
        *,
        seed: int,
        common: float = 0.7,
        sd: float = 0.025,
        low: float = 0.25,
        high: float = 0.75,
    ):
        if not 0.0 <= common <= 1.0:
            raise ValueError(f"common transition probability must be in [0, 1], got {common}")
        k_tr, k_start, k_walk, k_pay = jax.random.split(jax.random.key(seed), 4)
        start = jax.random.uniform(k_start, (2, 2), minval=low, maxval=high)
        p = sched.random_walk(k_walk, start, n_trials, sd=sd, low=low, high=high)
        self.common_prob = common
        self.probabilities = np.asarray(p)  # (T, state, action)
        self.payoffs = np.asarray(sched.bernoulli_payoffs(k_pay, p))
        self.common = np.asarray(jax.random.bernoulli(k_tr, common, (n_trials,)))
        self.reset()

    @property
    def n_trials(self) -> int:
        return self.payoffs.shape[0]

    @property
    def done(self) -> bool:
        return self.trial >= self.n_trials

    def reset(self) -> None:
        """Back to stage 1 of trial 0 (the world is fixed by the seed)."""
        self.trial = 0
        self.stage = 1
        self.state2: int | None = None

    def step(self, choice: int) -> int | float:
        """Stage 1: returns the second-stage state. Stage 2: returns the reward."""
        if self.done:
            raise RuntimeError(f"the task has no trials left (n_trials={self.n_trials})")
        if choice not in (0, 1):
            raise ValueError(f"choice must be 0 or 1 at stage {self.stage}, got {choice!r}")
        if self.stage == 1:
            self.state2 = int(choice) if self.common[self.trial] else 1 - int(choice)
            self.stage = 2
            return self.state2
        reward = float(self.payoffs[self.trial, self.state2, int(choice)])
        self.trial += 1
        self.stage = 1
        self.state2 = None
        return reward

    def design(self) -> pd.DataFrame:
        """Columns ``trial``, ``common`` (1 if the transition is common) and
        ``payoff_1..payoff_4`` in the order of ``PAYOFF_ORDER``."""
        flat = self.payoffs.reshape(self.n_trials, 4)
        table = pd.DataFrame(flat, columns=[f"payoff_{k + 1}" for k in range(4)])
        table.insert(0, "common", self.common.astype(int))
        table.insert(0, "trial", np.arange(self.n_trials))
        return table
