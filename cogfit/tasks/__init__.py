"""Task environments that people, learner models and language models can all play.

Each environment is seeded, has ``reset()`` and ``step(choice) -> outcome``, and exports its
realised payoff schedule as a design table (``design()``) for the models' simulators. None of
them depends on a model.
"""

from cogfit.tasks._bandit import Bandit, drifting_bandit, fixed_bandit, reversal_bandit
from cogfit.tasks._twostep import PAYOFF_ORDER, TwoStep

__all__ = ["PAYOFF_ORDER", "Bandit", "TwoStep", "drifting_bandit", "fixed_bandit", "reversal_bandit"]
