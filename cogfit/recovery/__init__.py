"""Parameter recovery, simulation-based calibration and model recovery.

``cogfit.recover(model, n_datasets=..., n_subjects=..., n_trials=...)`` draws true parameters,
simulates datasets with the model's simulator, fits them in chunks of one compiled call
(:func:`cogfit.fit_batch`) in this process or on an executor (a Dask cluster), and returns a
:class:`Recovery` with tidy tables, metrics, SBC tests and plots. :func:`model_recovery`
compares candidate models by PSIS-LOO on data simulated from each; :func:`sweep` runs recovery
over a grid of design sizes.
"""

from cogfit.recovery.models import ModelRecovery, model_recovery
from cogfit.recovery.result import Recovery
from cogfit.recovery.study import recover
from cogfit.recovery.sweep import sweep
from cogfit.recovery.truth import Truth, grid

__all__ = ["ModelRecovery", "Recovery", "Truth", "grid", "model_recovery", "recover", "sweep"]
