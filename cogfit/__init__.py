"""cogfit: hierarchical Bayesian cognitive models, fitted with JAX and NumPyro to people and LLMs."""

from cogfit._model import Model, Param, describe
from cogfit._record import Record
from cogfit._transforms import Interval, Positive, Real

__all__ = ["Interval", "Model", "Param", "Positive", "Real", "Record", "describe"]
