"""Alignment: how human-like a population's cognitive parameters are.

The divergence between the population distributions of a new member's parameters (the reference,
e.g. ``"human"``, against each other population, e.g. ``"llm:gemma-3-270m"``), per posterior draw,
next to a ceiling: the same divergence between random, size-matched parts of the reference.

    al = cogfit.align(fit, reference="human")
    al.summary(); al.to_pandas(); al.plot_densities(); al.save("report/")

Modules: :mod:`~cogfit.alignment.divergences` (the estimators, pure JAX),
:mod:`~cogfit.alignment.populations` (distributions from a fit's posterior),
:mod:`~cogfit.alignment.members` (member-level energy distance),
:mod:`~cogfit.alignment.ceiling` (split-half ceiling), :mod:`~cogfit.alignment.compare`
(:func:`align`), :mod:`~cogfit.alignment.result`, :mod:`~cogfit.alignment.plots`,
:mod:`~cogfit.alignment.likelihood` (:func:`predictive`: how well each population's parameters
predict the reference's choices, the parameter-level counterpart of Psych-201's NLL),
:mod:`~cogfit.alignment.twins` (:func:`twins`: matched LLM-person pairs),
:mod:`~cogfit.alignment.synthetic` (a Fit from a synthetic posterior, for tests and examples).
"""

from cogfit.alignment.compare import align
from cogfit.alignment.divergences import MEASURES, js, kl, overlap, wasserstein
from cogfit.alignment.likelihood import member_elpd, predictive
from cogfit.alignment.members import energy_distance
from cogfit.alignment.result import Alignment
from cogfit.alignment.twins import twins

__all__ = ["MEASURES", "Alignment", "align", "energy_distance", "js", "kl", "member_elpd", "overlap", "predictive",
           "twins", "wasserstein"]
