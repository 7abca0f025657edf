"""Inference: methods as small frozen objects of options, each with a ``run``.

``cogfit.fit(model, data, method=NUTS(...) | SVI(...) | MAP(...), hierarchy=Hierarchy(...))``
builds the NumPyro model of the hierarchy and hands it to the method, which returns
:class:`~cogfit.inference.base.Draws`; :func:`fit_batch` fits many data sets of one shape
with SVI or MAP in one compiled call.

A new method is a frozen dataclass with ``name``, ``settings()`` and ``run(model, data,
hierarchy, *, seed, progress) -> Draws`` (see :class:`~cogfit.inference.base.Method`).
"""

from cogfit.inference.base import Draws, Method
from cogfit.inference.batch import Batch, fit_batch
from cogfit.inference.fit import fit
from cogfit.inference.map import MAP
from cogfit.inference.nuts import NUTS
from cogfit.inference.svi import SVI

__all__ = ["MAP", "NUTS", "SVI", "Batch", "Draws", "Method", "fit", "fit_batch"]
