"""Work-arounds for interactions between upstream packages.

Importing ``arviz`` (1.3) before ``numpyro`` (0.22) leaves the package ``numpyro.distributions``
without its submodule attribute ``distribution``, which ``numpyro.factor`` needs
(AttributeError during sampling). Re-attach the already-imported submodules.
"""

import importlib
import sys

import numpyro.distributions as _dists

for _name in ("distribution", "constraints", "transforms", "util", "continuous", "discrete"):
    _full = f"numpyro.distributions.{_name}"
    if not hasattr(_dists, _name):
        setattr(_dists, _name, sys.modules.get(_full) or importlib.import_module(_full))
