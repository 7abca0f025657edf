"""cogfit: hierarchical Bayesian cognitive models, fitted with JAX and NumPyro to people and LLMs.

Typical use::

    import cogfit
    model = cogfit.models.get("cpt")
    data = cogfit.TrialData.from_table(table, model)
    fit = cogfit.fit(model, data, method=cogfit.NUTS(chains=4), hierarchy=cogfit.Hierarchy(pooling="partial"))
    fit.summary(); fit.subject_params(); fit.save("fit.nc")
"""

from cogfit import _compat  # noqa: F401  (must run before anything samples)

# isort: split
from cogfit import datasets, models, psych201
from cogfit._data import DataError, TrialData
from cogfit._fit import ConvergenceWarning, Fit, load
from cogfit._hierarchy import Hierarchy
from cogfit._model import Derived, Model, Param, describe
from cogfit._record import Record
from cogfit._simulate import random_design, simulate
from cogfit._transforms import Interval, Positive, Real
from cogfit.alignment import Alignment, align
from cogfit.compare import Comparison, compare
from cogfit.inference import MAP, NUTS, SVI, Batch, fit, fit_batch
from cogfit.recovery import recover  # noqa: E402  (after fit_batch: recovery uses it)

__all__ = [
    "Alignment",
    "align",
    "MAP",
    "NUTS",
    "SVI",
    "Batch",
    "Comparison",
    "Hierarchy",
    "fit_batch",
    "ConvergenceWarning",
    "DataError",
    "Derived",
    "Fit",
    "Interval",
    "Model",
    "Param",
    "Positive",
    "Real",
    "Record",
    "TrialData",
    "compare",
    "describe",
    "fit",
    "load",
    "datasets",
    "models",
    "psych201",
    "random_design",
    "recover",
    "simulate",
]
