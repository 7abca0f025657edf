"""cogfit: hierarchical Bayesian cognitive models, fitted with JAX and NumPyro to people and LLMs.

Typical use::

    import cogfit
    model = cogfit.models.get("cpt")
    data = cogfit.TrialData.from_table(table, model)
    fit = cogfit.fit(model, data, method=cogfit.NUTS(chains=4), hierarchy=cogfit.Hierarchy(pooling="partial"))
    fit.summary(); fit.subject_params(); fit.save("fit.nc")

Public names load on first use (PEP 562), so ``import cogfit`` and the ``cogfit`` command start
without importing JAX, NumPyro or ArviZ; the first ``cogfit.<name>`` imports what it needs.
"""

import importlib

# public name -> the module that defines it
_NAMES = {
    **dict.fromkeys(("DataError", "TrialData"), "cogfit._data"),
    **dict.fromkeys(("ConvergenceWarning", "Fit", "load"), "cogfit._fit"),
    "Hierarchy": "cogfit._hierarchy",
    **dict.fromkeys(("Derived", "Model", "Param", "describe"), "cogfit._model"),
    "Record": "cogfit._record",
    **dict.fromkeys(("random_design", "simulate"), "cogfit._simulate"),
    **dict.fromkeys(("Interval", "Positive", "Real"), "cogfit._transforms"),
    **dict.fromkeys(("Alignment", "align"), "cogfit.alignment"),
    **dict.fromkeys(("Comparison", "compare"), "cogfit.comparison"),
    **dict.fromkeys(("MAP", "NUTS", "SVI", "Batch", "fit", "fit_batch"), "cogfit.inference"),
    "recover": "cogfit.recovery",
}
_SUBPACKAGES = ("alignment", "comparison", "datasets", "inference", "llm", "models", "ppc", "psych201", "recovery",
                "tasks", "wiener")

__all__ = sorted(_NAMES) + ["datasets", "models", "psych201"]


def __getattr__(name: str):
    if name in _NAMES:
        importlib.import_module("cogfit._compat")            # must run before anything samples
        value = getattr(importlib.import_module(_NAMES[name]), name)
    elif name in _SUBPACKAGES:
        importlib.import_module("cogfit._compat")
        value = importlib.import_module(f"cogfit.{name}")
    else:
        raise AttributeError(f"module 'cogfit' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES) | set(_SUBPACKAGES))
