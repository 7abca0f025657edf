"""The one generic hierarchical builder: plates, non-centring, vmap over subjects, masking.

For every parameter ``p`` with transform ``f``, population ``g`` and (optionally) condition
``c``::

    partial:  p[s, c] = f(mu[g(s), c] + sigma[g(s), c] * z[s, c]),  z ~ N(0, 1)   (non-centred)
              or p[s, c] = f(u[s, c]),  u ~ N(mu[g(s), c], sigma[g(s), c])   (centred, per subject)
              (``population="student_t"``: Student-t with ``nu[p]`` degrees of freedom for
              N, ``nu ~ Gamma(2, 0.1)``, so one outlying subject need not widen sigma)
    complete: p[s, c] = f(mu[g(s), c])              (every subject of a population shares it)
    none:     p[s, c] = f(u[s, c]),  u ~ prior      (independent subjects)
    formula:  p[s, t] = f(u[s] + X[s, t] @ beta[g(s)])  (a regression, :mod:`cogfit._formula`:
              ``u`` partial with ``(1|subject)``, else complete; ``mu`` is the intercept)

``mu ~ param.prior`` and ``sigma ~ param.sd_prior`` live on the unconstrained scale, so the
hierarchy is identical for every model. The per-subject ``loglik`` is vmapped over subjects (in
buckets of similar trial counts, :mod:`cogfit._layout`) and masked trials contribute exactly zero.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Literal, get_args

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

import cogfit._compat  # noqa: F401  (before NumPyro samples: see the module)
from cogfit import _formula
from cogfit._data import SOFT, TrialData
from cogfit._layout import MAX_BUCKETS, buckets
from cogfit._model import Model
from cogfit._record import Record

Pooling = Literal["partial", "none", "complete"]
Population = Literal["normal", "student_t"]

# Subjects with at least this many trials get centred effects by default (their own trials pin
# their values down, where the non-centred form has the harder geometry).
CENTERED_MIN_TRIALS = 100

# Prior of the Student-t population's degrees of freedom (Juarez & Steel 2010; Stan's and
# brms' default): mean 20, 90% between 3.6 and 47, so normal-like unless the subjects say otherwise.
NU_PRIOR = dist.Gamma(2.0, 0.1)


def poolings(model: Model, pooling: Pooling | Mapping[str, Pooling]) -> dict[str, str]:
    """Each parameter's pooling: one for all, or per parameter (unnamed parameters: partial)."""
    if isinstance(pooling, str):
        return {p: pooling for p in model.param_names}
    unknown = sorted(set(pooling) - set(model.param_names))
    if unknown:
        raise KeyError(f"pooling names {unknown}, which are not parameters of {model.name!r} {model.param_names}")
    return {p: pooling.get(p, "partial") for p in model.param_names}


def formula_poolings(model: Model, pooling: Pooling | Mapping[str, Pooling],
                     formulas: Mapping[str, str]) -> dict[str, str]:
    """:func:`poolings` with each formula's own: partial with ``(1|subject)``, else complete."""
    each = poolings(model, pooling)
    for name, formula in formulas.items():
        model.param(name)
        want = "partial" if _formula.parse(name, formula).random else "complete"
        if isinstance(pooling, Mapping) and pooling.get(name, want) != want:
            raise ValueError(f"pooling {name!r}: {pooling[name]!r}, but its formula {formula!r} makes it {want!r} "
                             "((1|subject): partial, else complete); leave it out of pooling")
        each[name] = want
    return each


def _check_pooling(pooling) -> None:
    values = [pooling] if isinstance(pooling, str) else list(pooling.values()) if isinstance(pooling, Mapping) else [
        pooling]
    for value in values:
        if value not in get_args(Pooling):
            raise ValueError(f"pooling must be one of {get_args(Pooling)} (or a mapping parameter -> one of them), "
                             f"not {value!r}")


def check_options(model: Model, data: TrialData, pooling: Pooling | Mapping[str, Pooling], by_condition: Sequence[str],
                  population: str = "normal", nu: float | None = None, formulas: Mapping[str, str] | None = None
                  ) -> None:
    _check_pooling(pooling)
    if population not in get_args(Population):
        raise ValueError(f"population must be one of {get_args(Population)}, not {population!r}")
    formulas = formulas or {}
    unknown = sorted(set(formulas) - set(model.param_names))
    if unknown:
        raise KeyError(f"formulas name {unknown}, which are not parameters of {model.name!r} {model.param_names}")
    both = sorted(set(formulas) & set(by_condition))
    if both:
        raise ValueError(f"{both} have a formula and are in by_condition: write the condition into the formula "
                         "('1 + C(condition) + ...') instead")
    each = formula_poolings(model, pooling, formulas)
    if population != "normal" and "partial" not in each.values():
        raise ValueError(f"population={population!r} needs pooling='partial' for some parameter (pooling={pooling!r} "
                         "has no distribution of subjects around their population)")
    if nu is not None and (population != "student_t" or not nu > 0):
        raise ValueError(f"nu={nu!r} (fixed degrees of freedom) needs population='student_t' and nu > 0")
    for name in by_condition:
        model.param(name)
    if by_condition and len(data.conditions) < 2:
        raise ValueError(
            f"by_condition={tuple(by_condition)} needs a 'condition' column with at least two labels"
        )


@dataclasses.dataclass(frozen=True)
class Hierarchy:
    """How subjects' parameters relate: the statistical model around a cognitive model.

    Attributes
    ----------
    pooling
        ``"partial"`` (hierarchical: each population's subjects spread around its ``mu``),
        ``"none"`` (independent subjects, each with the model's prior) or ``"complete"`` (one
        value per population, shared by its subjects); or per parameter, a mapping such as
        ``{"a": "complete", "z": "complete", "t": "complete"}`` (parameters not named: partial),
        e.g. a drift rate that varies by subject while boundary, bias and non-decision time are
        common to a population.
    population
        With partial pooling, the spread of subjects around their population on the
        unconstrained scale: ``"normal"`` (``N(mu, sigma)``) or ``"student_t"``
        (``StudentT(nu, mu, sigma)``; ``mu`` is then the population's median member and
        ``sigma`` its scale), which lets a few outlying subjects sit far out without widening
        ``sigma`` for everyone.
    nu
        With ``population="student_t"``: hold every parameter's degrees of freedom at this
        number; ``None`` fits them (``<p>_nu ~ Gamma(2, 0.1)``, one per parameter).
    by_condition
        Parameters that take one value per level of the data's ``condition`` column.
    formulas
        Regressions per parameter on the unconstrained scale (:mod:`cogfit._formula`), e.g.
        ``{"v": "1 + theta + (1|subject)", "a": "1 + theta"}``: fixed effects (formulaic syntax)
        of covariates kept by ``TrialData.from_table(..., covariates=...)`` and of
        ``condition``, with subject random intercepts ``(1|subject)`` (partial pooling) or
        without (complete pooling apart from the covariates). The slopes are ``<p>_beta``
        (dims population, ``<p>_coef``). ``by_condition=("v",)`` is the formula
        ``"1 + C(condition) + (1|subject)"`` up to its parameterisation and priors.

    The posterior depends on these; how it is sampled (centring, warm-up, ...) is the
    inference method's business (:class:`cogfit.NUTS`, :class:`cogfit.SVI`, :class:`cogfit.MAP`).
    """

    pooling: Pooling | Mapping[str, Pooling] = "partial"
    population: Population = "normal"
    nu: float | None = None
    by_condition: tuple[str, ...] = ()
    formulas: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if isinstance(self.by_condition, str):
            raise ValueError(f"by_condition must be a sequence of parameter names, not the string "
                             f"{self.by_condition!r} (write ({self.by_condition!r},))")
        object.__setattr__(self, "by_condition", tuple(self.by_condition))
        try:
            _check_pooling(self.pooling)
        except ValueError as err:
            raise ValueError(f"Hierarchy: {err}") from None
        if isinstance(self.pooling, Mapping):
            object.__setattr__(self, "pooling", dict(self.pooling))
        if self.population not in get_args(Population):
            raise ValueError(f"Hierarchy: population must be one of {get_args(Population)}, not {self.population!r}")
        if self.population != "normal" and isinstance(self.pooling, str) and self.pooling != "partial":
            raise ValueError(f"Hierarchy: population={self.population!r} needs pooling='partial' (pooling="
                             f"{self.pooling!r} has no distribution of subjects around their population)")
        if self.nu is not None:
            if self.population != "student_t" or isinstance(self.nu, bool) or not float(self.nu) > 0:
                raise ValueError(f"Hierarchy: nu={self.nu!r} (fixed degrees of freedom) needs "
                                 "population='student_t' and nu > 0")
            object.__setattr__(self, "nu", float(self.nu))
        if not isinstance(self.formulas, Mapping):
            raise ValueError(f"Hierarchy: formulas must be a mapping parameter -> formula, e.g. "
                             f"{{'v': '1 + theta + (1|subject)'}}, not {self.formulas!r}")
        object.__setattr__(self, "formulas", dict(self.formulas))
        for name, formula in self.formulas.items():
            _formula.parse(name, formula)                              # syntax errors now, not at fit time

    @property
    def factorises(self) -> bool:
        """Whether populations share no parameter (so each can be sampled alone)."""
        return not (self.population == "student_t" and self.nu is None)

    def poolings(self, model: Model) -> dict[str, str]:
        """Each of ``model``'s parameters' pooling (a formula's: partial with ``(1|subject)``)."""
        return formula_poolings(model, self.pooling, self.formulas)

    def all_partial(self, model: Model) -> bool:
        return set(self.poolings(model).values()) == {"partial"}

    def any_partial(self, model: Model) -> bool:
        return "partial" in self.poolings(model).values()

    def check(self, model: Model, data: TrialData) -> None:
        """Raise ``ValueError``/``KeyError`` where this hierarchy does not fit ``model`` and ``data``."""
        check_options(model, data, self.pooling, self.by_condition, self.population, self.nu, self.formulas)

    def prepare(self, model: Model, data: TrialData) -> TrialData:
        """``data`` with the formulas' designs (:func:`cogfit._formula.prepare`); unchanged without
        formulas. :func:`cogfit.fit` calls it; :meth:`build` needs its result."""
        return _formula.prepare(model, self.formulas, data)

    def build(self, model: Model, data: TrialData, centered: bool | np.ndarray = False) -> Callable:
        """The NumPyro model function of ``model_args(data)`` (:func:`build`)."""
        return build(model, data, pooling=self.pooling, by_condition=self.by_condition, centered=centered,
                     population=self.population, nu=self.nu, formulas=self.formulas)

    def settings(self) -> dict:
        """The fields as plain JSON values (recorded in a fit's metadata)."""
        return dict(pooling=self.pooling if isinstance(self.pooling, str) else dict(self.pooling),
                    population=self.population, nu=self.nu,
                    by_condition=list(self.by_condition), formulas=dict(self.formulas))


def default_centring(model: Model, data: TrialData, centered: bool | np.ndarray | None) -> np.ndarray:
    """The ``(S, P)`` centring mask for ``centered``; ``None``: centred for subjects with at
    least ``CENTERED_MIN_TRIALS`` trials."""
    return centring_mask(model, data, data.n_trials >= CENTERED_MIN_TRIALS if centered is None else centered)


def per_trial_theta(model: Model, values: dict[str, jax.Array], condition: jax.Array,
                    by_condition: Sequence[str]) -> Record:
    """Subject parameters ``(S,)`` or ``(S, C)`` -> theta for vmap: ``(S,)`` or per trial ``(S, T)``."""
    out = {k: jnp.full(condition.shape[:1], v) for k, v in model.fixed.items()}  # (S,) for vmap
    for name, v in values.items():
        out[name] = jnp.take_along_axis(v, condition, axis=1) if name in by_condition else v
    return Record(out)


def trial_loglik(model: Model, theta: Record, fields: Record) -> jax.Array:
    """Masked per-trial log-likelihood ``(S, T)``; soft labels use the cross-entropy."""
    if SOFT in fields:
        logp = choice_logprobs(model, theta, fields)                 # (S, T, K)
        ll = jnp.sum(fields[SOFT] * logp, axis=-1)
    else:
        ll = jax.vmap(model.loglik)(theta, fields)
    return jnp.where(fields["mask"], ll, 0.0)


def choice_logprobs(model: Model, theta: Record, fields: Record) -> jax.Array:
    """Log-probability of every option at every trial ``(S, T, K)``, given the observed history.

    Uses the model's own ``choice_logprobs`` when it has one (learners, whose state depends on
    the choices actually made); otherwise evaluates ``loglik`` with each choice code, which is
    exact for models whose trials are conditionally independent.
    """
    if model.choice_logprobs is not None:
        return jax.vmap(model.choice_logprobs)(theta, fields)
    if model.stateful:
        raise ValueError(f"model {model.name!r} carries state across trials but has no choice_logprobs")

    def one(k):
        f = fields.replace(choice=jnp.full_like(fields["choice"], k))
        return jax.vmap(model.loglik)(theta, f)

    return jnp.stack([one(k) for k in range(model.n_options)], axis=-1)


def bucket_logliks(model: Model, values: dict[str, jax.Array], pieces: tuple,
                   by_condition: Sequence[str], linear: Mapping[str, tuple] | None = None) -> list[jax.Array]:
    """Masked per-trial log-likelihoods of every length bucket: ``[(S_b, T_b), ...]``.

    ``values`` holds each parameter for all subjects ``(S,)`` or ``(S, C)``; ``pieces`` is
    :func:`model_args`' first element; ``linear`` the regressed parameters' ``(u (S,), beta
    (S, K))`` (:func:`cogfit._formula.regress`).
    """
    out = []
    for idx, fields, cond in pieces:
        theta = per_trial_theta(model, {k: v[idx] for k, v in values.items()}, cond, by_condition)
        if linear:
            theta = _formula.regress(model, theta, fields, {k: (u[idx], b[idx]) for k, (u, b) in linear.items()})
        out.append(trial_loglik(model, theta, fields))
    return out


def model_args(data: TrialData, max_buckets: int = MAX_BUCKETS) -> tuple:
    """The arrays the NumPyro model takes: ``(pieces, population)``.

    ``pieces`` is a tuple of length buckets (see :mod:`cogfit._layout`), each
    ``(subject_index (S_b,), fields (S_b, T_b), condition (S_b, T_b))``. They are passed as
    arguments, not closed over, so the compiled program does not embed the data (fast
    compiles, small cache entries, one program for data sets of the same shape).
    """
    def piece(idx):
        T = int(data.n_trials[idx].max())
        def cut(a):
            return jnp.asarray(a[idx][:, :T])
        return jnp.asarray(idx), jax.tree.map(cut, data.fields), cut(data.condition)

    return tuple(piece(idx) for idx in buckets(data.n_trials, max_buckets)), jnp.asarray(data.population)


def centring_mask(model: Model, data: TrialData, centered: bool | np.ndarray) -> np.ndarray:
    """``centered`` (one bool, one per subject ``(S,)``, or one per subject and parameter
    ``(S, P)`` in ``model.params`` order) as an ``(S, P)`` bool array."""
    S, P = data.n_subjects, len(model.params)
    cen = np.asarray(centered, bool)
    if cen.ndim == 1:
        if cen.shape != (S,):
            raise ValueError(f"centered has {cen.shape[0]} entries; the data has {S} subjects")
        cen = cen[:, None]
    if cen.ndim > 2 or (cen.ndim == 2 and cen.shape not in ((S, P), (S, 1))):
        raise ValueError(f"centered must be a bool, one per subject ({S},) or per subject and "
                         f"parameter ({S}, {P}); got shape {cen.shape}")
    return np.broadcast_to(cen, (S, P))


def subject_sites(name: str, centred: np.ndarray) -> tuple[tuple[str, bool, np.ndarray], ...]:
    """The latent sites that hold parameter ``name``'s subject values under the centring
    ``centred`` ``(S,)``: ``(site, is_centred, subjects)`` each. All centred: ``<name>_u``; none:
    ``<name>_z``; a mix: ``<name>_uc`` (centred subjects) and ``<name>_znc`` (the others)."""
    ic, inc = np.flatnonzero(centred), np.flatnonzero(~centred)
    if not len(inc):
        return ((f"{name}_u", True, ic),)
    if not len(ic):
        return ((f"{name}_z", False, inc),)
    return ((f"{name}_uc", True, ic), (f"{name}_znc", False, inc))


def build(
    model: Model,
    data: TrialData,
    *,
    pooling: Pooling | Mapping[str, Pooling] = "partial",
    by_condition: Sequence[str] = (),
    centered: bool | np.ndarray = False,
    population: Population = "normal",
    nu: float | None = None,
    formulas: Mapping[str, str] | None = None,
) -> Callable[[tuple, jax.Array], None]:
    """A NumPyro model function of ``model_args(data)`` for ``model``.

    ``centered`` (one bool, one per subject ``(S,)``, or one per subject and parameter
    ``(S, P)``) samples ``u ~ N(mu, sigma)`` directly instead of the non-centred ``z``; it
    mixes better where the subject's own trials pin the parameter down, the non-centred form
    where they do not (few trials, or a parameter the data say little about, such as a
    learning rate near 1). Per parameter, with a mix, the centred subjects' values are the site
    ``<p>_uc`` and the others' ``<p>_znc`` (subject order kept in ``<p>``).

    ``population="student_t"`` replaces the normal distribution of subjects around their
    population (``z`` and ``u`` alike) by a Student-t with ``<p>_nu`` degrees of freedom, one
    per parameter (shared by populations and conditions), ``nu ~ NU_PRIOR``; ``mu`` is then the
    population's median and ``sigma`` its scale (not its sd). A number ``nu`` holds the degrees
    of freedom there instead (no ``<p>_nu`` site).

    ``formulas`` (:mod:`cogfit._formula`) add the slopes ``<p>_beta ~ SLOPE_PRIOR`` ``(G, K)`` of
    each regressed parameter, whose design ``data`` must hold (:meth:`Hierarchy.prepare`).
    """
    formulas = formulas or {}
    check_options(model, data, pooling, by_condition, population, nu, formulas)
    each = formula_poolings(model, pooling, formulas)
    missing = [p for p in formulas if p not in data.designs]
    if missing:
        raise ValueError(f"the data hold no design for the formulas of {missing}: pass "
                         "hierarchy.prepare(model, data) (cogfit.fit does)")
    slopes = {p: len(data.designs[p]) for p in formulas if data.designs[p]}
    S, G, C = data.n_subjects, len(data.populations), len(data.conditions)
    mask = centring_mask(model, data, centered)
    layout = [subject_sites(p.name, c) for p, c in zip(model.params, mask.T)]   # per parameter, once

    def numpyro_model(pieces: tuple, pop: jax.Array):
        values, linear = {}, {}
        for p, sites in zip(model.params, layout):
            extra = (C,) if p.name in by_condition else ()
            if each[p.name] == "none":
                u = numpyro.sample(f"{p.name}_u", p.prior.expand((S, *extra)).to_event())
            else:
                mu = numpyro.sample(f"{p.name}_mu", p.prior.expand((G, *extra)).to_event())
                numpyro.deterministic(f"{p.name}_group", p.transform.forward(mu))
                if each[p.name] == "complete":
                    u = mu[pop]
                else:
                    sigma = numpyro.sample(f"{p.name}_sigma", p.sd_prior.expand((G, *extra)).to_event())
                    spread = dist.Normal                              # (loc, scale) -> distribution
                    if population == "student_t":
                        df = numpyro.sample(f"{p.name}_nu", NU_PRIOR) if nu is None else nu
                        spread = partial(dist.StudentT, df)
                    u = jnp.zeros((S, *extra))
                    for site, is_centred, idx in sites:
                        g = pop if len(sites) == 1 else pop[idx]
                        if is_centred:
                            v = numpyro.sample(site, spread(mu[g], sigma[g]).to_event())
                        else:
                            z = numpyro.sample(site, spread(0.0, 1.0).expand((len(idx), *extra)).to_event())
                            v = mu[g] + sigma[g] * z
                        u = v if len(sites) == 1 else u.at[idx].set(v)
            values[p.name] = numpyro.deterministic(p.name, p.transform.forward(u))
            if p.name in slopes:
                beta = numpyro.sample(f"{p.name}_beta", _formula.SLOPE_PRIOR.expand((G, slopes[p.name])).to_event())
                linear[p.name] = (u, beta[pop])
        numpyro.factor("loglik", sum(jnp.sum(ll) for ll in bucket_logliks(model, values, pieces, by_condition,
                                                                           linear)))

    return numpyro_model


# Centre a subject's parameter only where its own data clearly dominate: posterior sd of u below
# 0.35 sigma (the likelihood holds ~90% of the posterior precision). sigma / sqrt(2) (half the
# precision) centred the learners' 100-trial subjects, whose mean-field pilot sds are too small,
# and left divergences (benchmarks/RESULTS.md, robustness).
CENTRE_BELOW = 0.35


def centring_from_guide(model: Model, data: TrialData, mask: np.ndarray, loc: dict, scale: dict) -> np.ndarray:
    """``(S, P)`` centring chosen from a mean-field pilot of the partial-pooling model built
    with ``mask``: centred where the pilot's posterior sd of ``u`` is below
    ``CENTRE_BELOW * sigma`` of the subject's population.

    ``loc`` and ``scale`` are the guide's per-site means and sds on the unconstrained scale
    (``sigma`` sites on the log scale), keyed by site name.
    """
    pop = np.asarray(data.population)
    out = np.zeros(mask.shape, bool)
    for j, p in enumerate(model.params):
        if f"{p.name}_sigma" not in loc:                                       # not partially pooled
            continue
        sigma = np.exp(np.asarray(loc[f"{p.name}_sigma"]))[pop]                 # (S, *extra)
        sd_u = np.empty_like(sigma)
        for site, is_centred, idx in subject_sites(p.name, mask[:, j]):
            sd = np.asarray(scale[site])
            sd_u[idx] = sd if is_centred else sd * sigma[idx]
        ratio = (sd_u / sigma).reshape(len(pop), -1).max(axis=1)
        out[:, j] = ratio < CENTRE_BELOW
    return out
