"""The model contract: what a model file in ``models/`` declares.

A model is data (BlackJAX/Diffrax style): its parameters, a per-subject log-likelihood and a
simulator. The framework adds the hierarchy, the vmap over subjects, masking, inference and
outputs.

Conventions every model follows
-------------------------------
``theta``
    A :class:`~cogfit.Record` of natural-scale parameter values for one subject. Each field is
    a scalar, or a ``(T,)`` array when the parameter varies by a condition column (the framework
    then gathers the value of each trial's condition), so write likelihoods that broadcast.
``trials``
    A :class:`~cogfit.Record` of one subject's trial arrays, each with leading axis ``T``
    (``max_trials``): ``choice`` (int32 codes ``0..n_options-1``) when the model has choices,
    ``rt`` (seconds) when it needs response times, every column named in ``requires`` (float,
    possibly with a trailing axis for vector columns such as lottery outcomes), and ``mask``
    (bool, ``True`` for real trials). Padded trials repeat the subject's last real trial, so
    they are always numerically valid; their log-likelihood is zeroed by the framework.
    Models that carry state across trials (learners under ``lax.scan``) must not update their
    state on masked trials.
``loglik(theta, trials) -> (T,)``
    Per-trial log-likelihood of the observed response(s), pure JAX, no Python loops over
    trials.
``simulate(key, theta, trials) -> dict``
    Draws responses for one subject on the design in ``trials`` (the same columns minus the
    responses): a dict with ``choice`` (and ``rt``) arrays of shape ``(T,)``. Learners whose
    outcomes depend on choices read the environment's payoffs from ``trials``.
``design(key, n_trials) -> dict`` (optional)
    A random design (stimulus columns only) used by the demo and by recovery studies.
``derived`` (optional)
    Quantities computed from ``theta`` and reported next to the parameters (:class:`Derived`):
    e.g. the inverse temperature of a learner fitted through another parameterisation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import numpyro.distributions as dist

from cogfit._record import Record
from cogfit._transforms import Real, Transform

LogLik = Callable[[Record, Record], jax.Array]
Simulator = Callable[[jax.Array, Record, Record], dict[str, jax.Array]]
Design = Callable[[jax.Array, int], dict[str, Any]]


class Param(NamedTuple):
    """One parameter of a model.

    Attributes
    ----------
    name
        Identifier used everywhere (``theta.<name>``, output variable names).
    transform
        Map from the real line to the natural domain (:class:`Real`, :class:`Positive`,
        :class:`Interval`).
    prior
        Prior of the group mean on the *unconstrained* scale (a NumPyro distribution).
    doc
        One line: what the parameter means, with units.
    sd_prior
        Prior of the group standard deviation on the unconstrained scale.
    """

    name: str
    transform: Transform = Real()
    prior: dist.Distribution = dist.Normal(0.0, 1.0)
    doc: str = ""
    sd_prior: dist.Distribution = dist.HalfNormal(1.0)


class Derived(NamedTuple):
    """A quantity of a subject computed from its natural-scale parameters (and the model's
    constants), reported next to them (:meth:`cogfit.Fit.subject_params`,
    :meth:`cogfit.Fit.differences`) but not estimated: e.g. ``beta`` of a learner fitted with
    ``beta_h``.

    Attributes
    ----------
    name
        Output variable name; must differ from the parameters'.
    fn
        ``theta -> value``: pure JAX, elementwise over ``theta``'s fields (they share one shape:
        a subject's scalars, or arrays of draws).
    doc
        One line: what the quantity means, with units.
    """

    name: str
    fn: Callable[[Record], jax.Array]
    doc: str = ""


@dataclasses.dataclass(frozen=True)
class Model:
    """A cognitive model: parameters, per-subject log-likelihood and simulator.

    Attributes
    ----------
    name
        Registry name, e.g. ``"cpt"``.
    params
        The free parameters.
    loglik, simulate, design
        See the module docstring for their signatures.
    requires
        Stimulus columns read from the data table. A vector column ``x`` may be given in the
        table either as one column ``x`` or as numbered columns ``x_1, x_2, ...`` that are
        stacked on a trailing axis (padded entries of lotteries: probability 0).
    probabilities
        Vector columns (among ``requires``) that must be probability vectors: each entry in
        [0, 1] and each row summing to 1.
    n_options
        Number of choice options (codes ``0..n_options-1``); ``None`` when there is no choice.
    rt
        Whether the model needs a response-time column ``rt`` (seconds, > 0).
    choice_logprobs
        Optional ``(theta, trials) -> (T, n_options)``: log-probability of every option at every
        trial given the observed history. Used for soft labels (an LLM's choice distribution).
        Without it the framework evaluates ``loglik`` once per choice code, which is exact only
        for models whose trials are conditionally independent.
    stateful
        True for models that carry state across trials (learners); they need ``choice_logprobs``
        for soft labels.
    outcomes
        Columns among ``requires`` that the simulator produces with the choice (a learner's
        ``reward``): needed to fit, not in a design table.
    design_requires
        Columns only the simulator reads (a bandit's payoff schedule ``payoff_1..payoff_K``):
        needed in a design table; packed for fitting too when present (posterior predictive).
    derived
        Quantities computed from the parameters and reported with them (:class:`Derived`).
    fixed
        Constants passed to the likelihood in ``theta`` but not estimated (e.g. a variant fixes
        ``lam=1``).
    doc
        A short description with references.
    """

    name: str
    params: tuple[Param, ...]
    loglik: LogLik
    simulate: Simulator
    requires: tuple[str, ...] = ()
    probabilities: tuple[str, ...] = ()
    n_options: int | None = 2
    rt: bool = False
    design: Design | None = None
    fixed: dict[str, float] = dataclasses.field(default_factory=dict)
    choice_logprobs: Callable[[Record, Record], jax.Array] | None = None
    stateful: bool = False
    outcomes: tuple[str, ...] = ()
    design_requires: tuple[str, ...] = ()
    derived: tuple[Derived, ...] = ()
    doc: str = ""

    def __post_init__(self):
        names = [p.name for p in self.params] + [d.name for d in self.derived]
        if len(set(names)) != len(names):
            raise ValueError(f"model {self.name!r}: duplicate parameter or derived names {names}")
        if not set(self.probabilities) <= set(self.requires):
            raise ValueError(f"model {self.name!r}: probabilities must be among requires")
        if not set(self.outcomes) <= set(self.requires):
            raise ValueError(f"model {self.name!r}: outcomes must be among requires")

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def derived_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.derived)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(f"model {self.name!r} has no parameter {name!r}; it has {self.param_names}")

    def theta(self, values: dict[str, Any]) -> Record:
        """Natural-scale parameters (plus fixed constants) as the Record ``loglik`` receives."""
        return Record({**self.fixed, **values})

    def variant(self, name: str, *, fix: dict[str, float], doc: str = "") -> "Model":
        """The same model with some parameters held at constants (a nested variant), or other
        values of its constants (``fixed``, e.g. CPT's reference stake ``ref``)."""
        unknown = [k for k in fix if k not in self.fixed and k not in self.param_names]
        if unknown:
            raise KeyError(f"model {self.name!r} has no parameter or constant {unknown}; parameters: "
                           f"{self.param_names}, constants: {tuple(self.fixed)}")
        return dataclasses.replace(
            self,
            name=name,
            params=tuple(p for p in self.params if p.name not in fix),
            fixed={**self.fixed, **fix},
            doc=doc or self.doc,
        )

    def with_sd_prior(self, scale: float | Mapping[str, float]) -> "Model":
        """The same model (same name) with population spreads ``sigma ~ HalfNormal(scale)`` on the
        unconstrained scale: one scale for every parameter, or ``{parameter: scale}`` for some.

        The zoo's default is ``HalfNormal(1)``. A tighter scale (e.g. 0.5) removes divergences
        where a few subjects cannot bound a spread, and pulls wide populations in
        (benchmarks/RESULTS.md, robustness). :func:`cogfit.load` restores the scales a fit used.
        """
        scales = scale if isinstance(scale, Mapping) else {p.name: scale for p in self.params}
        unknown = [k for k in scales if k not in self.param_names]
        if unknown:
            raise KeyError(f"model {self.name!r} has no parameter {unknown}; parameters: {self.param_names}")
        bad = {k: v for k, v in scales.items() if isinstance(v, bool) or not float(v) > 0}
        if bad:
            raise ValueError(f"sd prior scales must be positive numbers, got {bad}")
        return dataclasses.replace(self, params=tuple(
            p._replace(sd_prior=dist.HalfNormal(float(scales[p.name]))) if p.name in scales else p
            for p in self.params))

    def sd_scales(self) -> dict[str, float]:
        """The ``HalfNormal`` scale of each parameter's population spread (others left out)."""
        return {p.name: float(p.sd_prior.scale) for p in self.params if isinstance(p.sd_prior, dist.HalfNormal)}

    def __repr__(self) -> str:
        return f"Model({self.name!r}, params={self.param_names})"


def describe(model: Model) -> str:
    """A readable table of the model's parameters."""
    rows = [f"{model.name}: {model.doc.splitlines()[0] if model.doc else ''}"]
    for p in model.params:
        rows.append(f"  {p.name:<10} {p.transform.describe():<32} {p.doc}")
    for d in model.derived:
        rows.append(f"  {d.name:<10} {'derived':<32} {d.doc}")
    for k, v in model.fixed.items():
        rows.append(f"  {k:<10} fixed at {v}")
    return "\n".join(rows)
