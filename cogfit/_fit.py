"""The result of a fit: an ArviZ DataTree plus the model and data that produced it."""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Sequence
from pathlib import Path

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

from cogfit._contrast import differences as _differences
from cogfit._data import TrialData, design_field
from cogfit._diagnose import flags as _flags
from cogfit._diagnose import split_chains
from cogfit._formula import linear_from_draw
from cogfit._hierarchy import bucket_logliks, model_args
from cogfit._interval import ci_prob, stamp
from cogfit._model import Model
from cogfit._record import Record
from cogfit._simulate import simulate_arrays
from cogfit.models import get

RHAT_MAX, ESS_MIN = 1.01, 400
SIGMA_MIN = 1e-2   # a group spread (unconstrained scale) below this has collapsed: members 1% apart
_RESPONSES = ("choice", "rt")


class ConvergenceWarning(UserWarning):
    """R-hat, effective sample size or divergences suggest the draws are not trustworthy."""


def _ids(values) -> np.ndarray:
    arr = np.asarray(values)
    return arr.astype(str) if arr.dtype == object else arr


def obs_coords(data: TrialData) -> dict:
    """Coordinates of dim ``obs``: one entry per real trial, subjects in data order, then trials
    in order (padded slots left out); shared by ``observed_data``, ``posterior_predictive`` and
    ``log_likelihood``."""
    mask = data.mask
    return {"obs": np.arange(int(mask.sum())), "obs_subject": ("obs", np.repeat(_ids(data.subjects), mask.sum(1))),
            "obs_trial": ("obs", data.trial[mask])}


def unflatten(flat: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(..., obs)`` real trials -> ``(..., subject, slot)``, padded slots repeating each subject's
    last real trial (the layout of :class:`~cogfit.TrialData`); the inverse of ``packed[..., mask]``."""
    counts = mask.sum(1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.minimum(np.arange(mask.shape[1])[None, :], counts[:, None] - 1)
    return flat[..., starts[:, None] + slot]


def _dims(by_condition, name: str, level: str) -> list[str]:
    if level == "parameter":                                  # one value per parameter: <name>_nu
        return []
    base = {"subject": ["subject"], "population": ["population"]}[level]
    return base + (["condition"] if name in by_condition else [])


def assemble(model: Model, data: TrialData, samples: dict, stats: dict, *, attrs: dict) -> "Fit":
    """Build the DataTree from raw draws ``(chain, draw, ...)``."""
    by_condition = attrs["by_condition"]
    posterior, dims = {}, {}
    for p in model.params:
        for suffix, level in (("", "subject"), ("_z", "subject"), ("_u", "subject"),
                              ("_mu", "population"), ("_sigma", "population"), ("_group", "population"),
                              ("_nu", "parameter")):
            key = p.name + suffix
            if key in samples:
                posterior[key] = samples[key]
                dims[key] = _dims(by_condition, p.name, level)
    designs = {p: names for p, names in data.designs.items() if names}
    for p, names in designs.items():                          # a formula's slopes
        posterior[f"{p}_beta"] = samples[f"{p}_beta"]
        dims[f"{p}_beta"] = ["population", f"{p}_coef"]
    coords = {
        "subject": _ids(data.subjects),
        "population": np.asarray(data.populations),
        "condition": np.asarray(data.conditions),
        "slot": np.arange(data.max_trials),
        **{f"{p}_coef": list(names) for p, names in designs.items()},
    }
    observed, constant = {}, {}
    for k, v in data.fields.items():
        v = np.asarray(v)
        if k in _RESPONSES:                                   # real trials only (dim obs)
            observed[k] = v[data.mask]
            dims[k] = ["obs"]
            continue
        constant[k] = v
        coef = [f"{p}_coef" for p in designs if design_field(p) == k]     # a formula's design: its coefficients
        dims[k] = ["subject", "slot"] + ((coef or [f"{k}_dim"]) if v.ndim == 3 else [])
    constant.update(population_index=data.population, condition_index=data.condition,
                    trial=data.trial, row=_ids(data.row))
    dims.update(population_index=["subject"], condition_index=["subject", "slot"],
                trial=["subject", "slot"], row=["subject", "slot"])
    groups = {"posterior": posterior, "observed_data": observed, "constant_data": constant}
    if stats:
        groups["sample_stats"] = stats
        dims.update({k: ["population"] for k, v in stats.items() if np.ndim(v) == 3})   # per-population runs
    meta = dict(attrs, model=model.name, fixed={k: float(v) for k, v in model.fixed.items()},
                sd_scales=model.sd_scales(),
                excluded=data.excluded, cogfit_version=_version(), covariates=list(data.covariates),
                designs={p: list(names) for p, names in data.designs.items()},
                populations=list(data.populations), conditions=list(data.conditions))
    tree = az.from_dict(groups, dims=dims, coords=coords,
                        attrs={"/": {"cogfit": json.dumps(meta)}})
    tree["observed_data"] = xr.DataTree(tree["observed_data"].to_dataset().assign_coords(obs_coords(data)))
    return Fit(tree=tree, model=model, data=data)


def derive(model: Model, post: xr.Dataset) -> xr.Dataset:
    """The model's derived quantities (:class:`~cogfit.Derived`) per draw: ``<d>`` from each
    subject's values, dims (chain, draw, subject[, condition]), and ``<d>_group`` from the
    typical member's (``<p>_group``: the quantity of a member with every parameter at its
    group value), dims (chain, draw, population[, condition]), where the fit has those."""
    out = {}
    for suffix in ("", "_group"):
        names = [p.name + suffix for p in model.params]
        if not model.derived or not all(n in post for n in names):
            continue
        arrays = xr.broadcast(*(post[n] for n in names))
        theta = Record({**model.fixed, **{p.name: jnp.asarray(a.values) for p, a in zip(model.params, arrays)}})
        like = arrays[0]
        for d in model.derived:
            value = np.broadcast_to(np.asarray(d.fn(theta)), like.shape)
            out[d.name + suffix] = xr.DataArray(value, dims=like.dims, coords=like.coords)
    return xr.Dataset(out)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("cogfit")
    except PackageNotFoundError:
        return "unknown"


def divergence_hint(div: int, meta: dict) -> str:
    """The warning after ``div`` divergent transitions: what to try, given how the fit ran."""
    used = meta.get("target_accept")
    higher = 0.99 if used is not None and float(used) >= 0.95 else 0.95
    auto = (meta.get("method_settings") or {}).get("centered") == "auto"
    tips = [] if auto else ["centered='auto' (centring chosen per subject and parameter)"]
    tips += [f"a higher target_accept (this fit: {used}; e.g. {higher})",
             "tighter sd priors (model.with_sd_prior(0.5))"]
    return f"{div} divergent transitions: try {', '.join(tips)}; the posterior may be biased."


def _divergences(tree) -> int:
    """Divergent transitions of a fit: per population when populations were sampled alone
    (``diverging`` then flags a draw where any of them diverged)."""
    if "sample_stats" not in tree:
        return 0
    stats = tree["sample_stats"]
    name = "diverging_population" if "diverging_population" in stats else "diverging"
    return int(stats[name].values.sum())


def _worst(stat: xr.Dataset, names: list[str], pick) -> str:
    """The variable and element with the extreme value, e.g. ``t[subject=64]``."""
    fill = -np.inf if pick is max else np.inf                 # NaN never wins

    def values(v):
        return np.nan_to_num(np.asarray(stat[v].values, float), nan=fill)

    name = pick(names, key=lambda v: float(pick(values(v).ravel())))
    da = stat[name]
    if da.ndim == 0:
        return name
    flat = values(name)
    idx = np.unravel_index(int(np.argmax(flat) if pick is max else np.argmin(flat)), da.shape)
    where = ", ".join(f"{d}={da[d].values[i]}" for d, i in zip(da.dims, idx))
    return f"{name}[{where}]"


@dataclasses.dataclass(frozen=True, eq=False)
class Fit:
    """A fitted model.

    Attributes
    ----------
    tree
        ArviZ DataTree: ``posterior`` (subject parameters ``<name>`` on the natural scale with
        dims (chain, draw, subject[, condition]); ``<name>_mu``, ``<name>_sigma`` on the
        unconstrained scale and ``<name>_group`` = transform(mu), the natural-scale value of a
        typical subject, with dims (chain, draw, population[, condition]); with
        ``population="student_t"`` also ``<name>_nu``, the degrees of freedom, dims (chain,
        draw)), ``sample_stats``
        (NUTS: ``diverging`` etc.), ``observed_data``, ``constant_data`` (the packed design),
        and on request ``log_likelihood`` (one entry per real trial, dim ``obs``) and
        ``posterior_predictive``.
    model, data
        What was fitted.
    """

    tree: xr.DataTree
    model: Model
    data: TrialData

    @property
    def meta(self) -> dict:
        """Settings of the fit: method, seed, pooling, precision, seconds, ..."""
        return json.loads(self.tree.attrs["cogfit"])

    @property
    def method(self):
        """The inference method the fit was made with (:class:`~cogfit.NUTS`, :class:`~cogfit.SVI`,
        :class:`~cogfit.MAP`), rebuilt from its recorded settings."""
        from cogfit.inference.fit import rebuild_method

        return rebuild_method(self.meta)

    @property
    def hierarchy(self):
        """The :class:`~cogfit.Hierarchy` of the fit, rebuilt from its recorded settings."""
        from cogfit._hierarchy import Hierarchy

        m = self.meta
        h = m.get("hierarchy") or {k: m[k] for k in ("pooling", "population", "nu", "by_condition") if k in m}
        return Hierarchy(**h)

    @property
    def posterior(self) -> xr.Dataset:
        return self.tree["posterior"].to_dataset()

    def quantities(self) -> xr.Dataset:
        """The posterior with the model's derived quantities (:func:`derive`) added: what
        :meth:`subject_params` and :meth:`differences` read."""
        return self.posterior.merge(derive(self.model, self.posterior))

    def __repr__(self) -> str:
        m = self.meta
        return (f"Fit(model={self.model.name!r}, method={m['method']!r}, pooling={m['pooling']!r}, "
                f"chains={m['chains']}, draws={m['draws']}, subjects={self.data.n_subjects}, "
                f"precision={m['precision']})")

    def group_vars(self) -> list[str]:
        post = self.posterior
        names = [f"{p.name}_{s}" for p in self.model.params for s in ("group", "mu", "sigma", "nu", "beta")]
        return [n for n in names if n in post]

    def summary(self, var_names: list[str] | None = None, **kwargs) -> pd.DataFrame:
        """ArviZ summary (mean, sd, equal-tailed interval of ArviZ's ``stats.ci_prob``, named in its
        columns, e.g. ``eti89_lb``; ESS, R-hat) of the group-level parameters by default."""
        names = var_names or self.group_vars() or list(self.model.param_names)
        return az.summary(self.tree, var_names=names, **kwargs)

    def check(self, *, warn: bool = False) -> dict:
        """Diagnostics of the fit, those that mean something for its method; ``ok`` is True when
        none fails. With ``warn=True`` a :class:`ConvergenceWarning` with a hint for each problem.

        NUTS (over all group and subject parameters and the model's derived quantities, those
        :meth:`differences` reports): ``max_rhat``, ``min_ess_bulk``, ``divergences``.

        SVI and MAP draw independently from an approximation, so R-hat, ESS and divergences do not
        apply: ``final_loss`` (the last loss, -ELBO or negative log density), ``min_sigma`` (the
        smallest posterior-mean group spread ``<p>_sigma``, unconstrained scale) with
        ``collapsed`` (the spreads below ``SIGMA_MIN``: a hierarchical MAP drives them to zero,
        pulling every subject onto its group), and ``constant`` (variables whose draws do not
        vary: a singular Laplace Hessian).
        """
        if self.meta.get("method", "nuts") != "nuts":
            return self._check_approximation(warn)
        post, names = self._diagnosed()
        n_chains = post.sizes["chain"]
        rhat = az.rhat(post, var_names=names) if n_chains > 1 else None
        ess = az.ess(post, var_names=names, method="bulk")
        max_rhat = max(float(np.nanmax(rhat[v].values)) for v in names) if rhat is not None else float("nan")
        min_ess = min(float(np.nanmin(ess[v].values)) for v in names)
        div = _divergences(self.tree)
        out = dict(max_rhat=max_rhat, min_ess_bulk=min_ess, divergences=div)
        out["ok"] = bool((np.isnan(max_rhat) or max_rhat <= RHAT_MAX) and min_ess >= ESS_MIN and div == 0)
        if warn:
            if max_rhat > RHAT_MAX:
                n_bad = sum(int((rhat[v].values > RHAT_MAX).sum()) for v in names)
                worst = _worst(rhat, names, max)
                n_split = sum(int(split_chains(post[v].values)[rhat[v].values > RHAT_MAX].sum()) for v in names)
                warnings.warn(f"R-hat up to {max_rhat:.3f} > {RHAT_MAX} ({n_bad} values; worst: {worst}; "
                              f"{n_split} with chains in separate modes): chains disagree; run longer (tune=, "
                              "draws=) or check the parameter's identifiability; fit.flags() lists each value "
                              "with its chains' medians.", ConvergenceWarning, stacklevel=3)
            if min_ess < ESS_MIN:
                worst = _worst(ess, names, min)
                warnings.warn(f"bulk ESS as low as {min_ess:.0f} < {ESS_MIN} (worst: {worst}): "
                              "draw more (draws=) or reparameterise.", ConvergenceWarning, stacklevel=3)
            if div:
                warnings.warn(divergence_hint(div, self.meta), ConvergenceWarning, stacklevel=3)
        return out

    def _check_approximation(self, warn: bool) -> dict:
        """:meth:`check` of an SVI or MAP fit."""
        post = self.posterior
        method = self.meta["method"]
        sigmas = [f"{p.name}_sigma" for p in self.model.params if f"{p.name}_sigma" in post]
        means = {v: post[v].mean(("chain", "draw")).values for v in sigmas}
        min_sigma = min((float(np.min(m)) for m in means.values()), default=float("nan"))
        collapsed = [v for v, m in means.items() if np.any(m < SIGMA_MIN)]
        names = self.group_vars() + list(self.model.param_names)
        constant = [v for v in names
                    if post[v].sizes["draw"] > 1 and np.any(post[v].std(("chain", "draw")).values == 0)]
        loss = self.meta.get("final_loss", float("nan"))
        out = dict(method=method, final_loss=loss, min_sigma=min_sigma, collapsed=collapsed, constant=constant)
        out["ok"] = bool(np.isfinite(loss) and not collapsed and not constant)
        if warn and collapsed:
            warnings.warn(f"{method}: group spreads {collapsed} collapsed below {SIGMA_MIN} (every subject pulled "
                          "onto its group mean); a hierarchical model needs SVI or NUTS, not a point estimate.",
                          ConvergenceWarning, stacklevel=3)
        if warn and constant:
            warnings.warn(f"{method}: draws of {constant} do not vary (singular Laplace Hessian); use SVI or NUTS.",
                          ConvergenceWarning, stacklevel=3)
        return out

    def flags(self, *, rhat_max: float = RHAT_MAX, ess_min: float = ESS_MIN) -> pd.DataFrame:
        """The values that fail :meth:`check`, one row each (group and subject parameters, derived
        quantities):
        ``variable``, ``subject``, ``population``, ``condition``, ``r_hat``, ``ess_bulk``,
        ``chain_medians`` and ``split`` -- True when, for two chains, each one's median lies
        outside the other's interquartile range by more than Monte-Carlo error explains: the
        chains sit in separate modes (the data support two explanations; chains cross between them
        rarely, if at all), rather than drifting slowly through one region. Split rows first, then
        the highest R-hat. See :mod:`cogfit._diagnose`.
        """
        post, names = self._diagnosed()
        return _flags(post, names, self.data.subject_populations, rhat_max=rhat_max, ess_min=ess_min)

    def _diagnosed(self) -> tuple[xr.Dataset, list[str]]:
        """The draws :meth:`check` and :meth:`flags` read and the names they diagnose: group and
        subject parameters, then derived quantities (subject and typical member)."""
        post = self.quantities()
        derived = [n for d in self.model.derived_names for n in (d, d + "_group") if n in post]
        return post, self.group_vars() + list(self.model.param_names) + derived

    def alignment(self, reference: str = "human", **kwargs):
        """How reference-like each population's parameters are: :func:`cogfit.align` of this fit."""
        from cogfit.alignment import align
        return align(self, reference, **kwargs)

    def differences(self, params: list[str] | None = None, *, summary: str = "group", reference: str | None = None,
                    exclude: Sequence = (), prob: float | None = None) -> pd.DataFrame:
        """Posterior differences between populations, natural scale: one row per parameter and pair
        (``b - a``, populations in data order; or each minus ``reference``) with ``mean``, ``sd``,
        equal-tailed ``prob`` interval ``lo``/``hi`` (default ArviZ's ``stats.ci_prob``, stated in
        ``attrs["ci_prob"]``), ``p_positive`` and the difference's own ``r_hat`` and ``ess_bulk``.

        ``summary="group"`` compares ``<p>_group`` (a typical member); ``"members"`` the mean of
        each population's subjects' values (any pooling; ``exclude`` leaves subjects out, e.g. the
        split ones of :meth:`flags`). The two answer different questions and can disagree in sign
        when a few members have extreme values: see :mod:`cogfit._contrast`. ``params`` defaults to the
        model's parameters and then its derived quantities (``Model.derived``).
        """
        names = params or list(self.model.param_names + self.model.derived_names)
        return _differences(self.quantities(), names, np.asarray(self.data.subjects),
                            self.data.subject_populations, list(self.data.populations), summary=summary,
                            reference=reference, exclude=exclude, prob=prob)

    def plot_ppc(self, **kwargs):
        """Posterior predictive checks for the model's family as a Matplotlib figure
        (:func:`cogfit.ppc.plot_ppc`: ``n_draws``, ``prob``, ``seed``)."""
        from cogfit.ppc import plot_ppc

        return plot_ppc(self, **kwargs)

    def subject_params(self, prob: float | None = None) -> pd.DataFrame:
        """Tidy table: one row per subject, parameter (and condition) with mean, median, sd, and an
        equal-tailed ``prob`` interval (``lo``, ``hi``; default ArviZ's ``stats.ci_prob``, stated in
        ``attrs["ci_prob"]``, see :mod:`cogfit._interval`); the model's derived quantities
        (``Model.derived``) follow its parameters. Plot the median against the interval: with a
        heavy tail (a loss aversion whose data allow very large values) the mean can lie outside it."""
        post = self.quantities()
        rows = []
        prob = ci_prob(prob)
        q = [(1 - prob) / 2, (1 + prob) / 2]
        pops = self.data.subject_populations
        for name in self.model.param_names + self.model.derived_names:
            da = post[name]
            mean = da.mean(("chain", "draw")).values
            sd = da.std(("chain", "draw")).values
            lo, median, hi = np.quantile(da.values, [q[0], 0.5, q[1]], axis=(0, 1))
            conds = list(self.data.conditions) if "condition" in da.dims else [None]
            for i, s in enumerate(self.data.subjects):
                for j, c in enumerate(conds):
                    idx = (i, j) if c is not None else (i,)
                    rows.append(dict(subject=s, population=pops[i], param=name, condition=c,
                                     mean=mean[idx], median=median[idx], sd=sd[idx], lo=lo[idx], hi=hi[idx]))
        df = pd.DataFrame(rows)
        return stamp(df.drop(columns="condition") if df["condition"].isna().all() else df, prob)

    # --- derived groups --------------------------------------------------------------------

    def _values(self, chain: int | slice = slice(None), draw: int | slice = slice(None)) -> dict:
        post = self.posterior
        return {p.name: jnp.asarray(post[p.name].values[chain, draw]) for p in self.model.params}

    def with_log_likelihood(self, batch: int = 64) -> "Fit":
        """A copy with per-trial log-likelihoods (``log_likelihood`` group, dim ``obs`` over real trials).

        Computed on the same length buckets as the fit (:mod:`cogfit._layout`), so ragged data
        do not pay for padding; ``obs`` runs over subjects, then trials, as in ``observed_data``.
        """
        by = tuple(self.meta["by_condition"])
        model, designs = self.model, self.data.designs
        pieces, pop = model_args(self.data)
        mask = self.data.mask
        position = np.cumsum(mask.ravel()).reshape(mask.shape) - 1     # obs index of each real trial
        where = []
        for idx, fields, _ in pieces:
            idx = np.asarray(idx)
            T = fields["mask"].shape[1]
            real = mask[idx][:, :T]
            where.append((real, position[idx][:, :T][real]))

        @jax.jit
        def one(values):
            linear = linear_from_draw(model, designs, values, pop)
            return bucket_logliks(model, {p: values[p] for p in model.param_names}, pieces, by, linear)

        post = self.posterior
        C, D = post.sizes["chain"], post.sizes["draw"]
        flat = {k: post[k].values.reshape(C * D, *post[k].shape[2:]) for k in _drawn(self)}
        out = np.empty((C * D, int(mask.sum())), np.float64)
        for i in range(0, C * D, batch):
            chunk = {k: jnp.asarray(v[i:i + batch]) for k, v in flat.items()}
            for ll, (real, pos) in zip(jax.lax.map(one, chunk), where):
                out[i:i + batch, pos] = np.asarray(ll)[:, real]
        ll = xr.DataArray(out.reshape(C, D, -1), dims=("chain", "draw", "obs"),
                          coords={"chain": post.chain, "draw": post.draw, **obs_coords(self.data)})
        tree = self.tree.copy()
        tree["log_likelihood"] = xr.DataTree(xr.Dataset({"choice": ll}))
        return dataclasses.replace(self, tree=tree)

    def with_posterior_predictive(self, *, n_draws: int | None = None, seed: int = 1, batch: int = 64) -> "Fit":
        """A copy with responses simulated on the data's design (``posterior_predictive`` group,
        dims (chain, draw, obs): real trials only, as ``observed_data`` and ``log_likelihood``).

        Every posterior draw by default, so the group lines up with ``log_likelihood`` (ArviZ's
        LOO-PIT); ``n_draws`` thins to about that many, evenly spaced within each chain.
        """
        by = tuple(self.meta["by_condition"])
        post = self.posterior
        C, D = post.sizes["chain"], post.sizes["draw"]
        per_chain = D if n_draws is None else min(D, max(1, -(-n_draws // C)))
        draws = np.unique(np.linspace(0, D - 1, per_chain).round().astype(int))
        model, data = self.model, self.data
        mask = data.mask
        keys = jax.random.split(jax.random.PRNGKey(seed), C * len(draws))

        pop = jnp.asarray(data.population)

        def one(key, values):
            linear = linear_from_draw(model, data.designs, values, pop)
            return simulate_arrays(model, key, {p: values[p] for p in model.param_names}, data, by, linear)

        @jax.jit
        def sim(keys, values):
            return jax.lax.map(lambda kv: one(*kv), (keys, values))

        flat = {k: post[k].values[:, draws].reshape(C * len(draws), *post[k].shape[2:]) for k in _drawn(self)}
        out: dict[str, np.ndarray] = {}
        for i in range(0, len(keys), batch):
            chunk = sim(keys[i:i + batch], {k: jnp.asarray(v[i:i + batch]) for k, v in flat.items()})
            for k, v in chunk.items():
                v = np.asarray(v)
                out.setdefault(k, np.empty((len(keys), int(mask.sum())), v.dtype))[i:i + batch] = v[:, mask]
        ds = xr.Dataset({k: (("chain", "draw", "obs"), v.reshape(C, len(draws), -1)) for k, v in out.items()},
                        coords={"chain": post.chain.values, "draw": post.draw.values[draws], **obs_coords(data)})
        tree = self.tree.copy()
        tree["posterior_predictive"] = xr.DataTree(ds)
        return dataclasses.replace(self, tree=tree)

    # --- persistence -----------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write everything (draws, stats, data, settings) to one netCDF file."""
        path = Path(path)
        self.tree.to_netcdf(path, engine="h5netcdf")
        return path


def _drawn(fit: Fit) -> list[str]:
    """The posterior variables that give the per-trial parameters: each parameter (subjects) and a
    formula's slopes ``<p>_beta``."""
    return list(fit.model.param_names) + [f"{p}_beta" for p, names in fit.data.designs.items() if names]


def load(path: str | Path, model: Model | None = None) -> Fit:
    """Read a :class:`Fit` written by :meth:`Fit.save`. User models must be registered (or passed);
    constants the fit was made with (``Model.fixed``, e.g. CPT's ``ref``) are restored."""
    with xr.open_datatree(path, engine="h5netcdf") as opened:
        tree = opened.load()
    meta = json.loads(tree.attrs["cogfit"])
    if model is None:
        model = get(meta["model"])
        fixed = meta.get("fixed", model.fixed)
        if fixed != model.fixed:
            model = model.variant(model.name, fix=fixed)
        scales = meta.get("sd_scales", {})
        if scales and scales != model.sd_scales():
            model = model.with_sd_prior(scales)
    const = tree["constant_data"].to_dataset()
    obs = tree["observed_data"].to_dataset()
    fields = {k: const[k].values for k in const.data_vars
              if k not in ("population_index", "condition_index", "trial", "row")}
    fields["mask"] = fields["mask"].astype(bool)
    for k in obs.data_vars:   # real trials (dim obs); older files stored (subject, slot) with padding
        fields[k] = unflatten(obs[k].values, fields["mask"]) if obs[k].dims == ("obs",) else obs[k].values
    post = tree["posterior"]
    data = TrialData(
        fields=Record(fields),
        subjects=tuple(post["subject"].values.tolist()),
        population=const["population_index"].values,
        populations=tuple(meta["populations"]),
        condition=const["condition_index"].values,
        conditions=tuple(meta["conditions"]),
        trial=const["trial"].values,
        row=const["row"].values,
        excluded=meta.get("excluded", 0),
        covariates=tuple(meta.get("covariates", ())),
        designs={p: tuple(names) for p, names in meta.get("designs", {}).items()},
    )
    return Fit(tree=_flat_responses(tree, data), model=model, data=data)


def _flat_responses(tree: xr.DataTree, data: TrialData) -> xr.DataTree:
    """Files written before responses were stored flat hold ``observed_data`` (and
    ``posterior_predictive``) as ``(..., subject, slot)`` with padded slots: keep their real
    trials only (dim ``obs``), as :func:`assemble` does."""
    mask = data.mask
    for group in ("observed_data", "posterior_predictive"):
        if group not in tree or "slot" not in tree[group].dims:
            continue
        ds = tree[group].to_dataset()
        flat = {k: (tuple(d for d in v.dims if d not in ("subject", "slot")) + ("obs",), v.values[..., mask])
                for k, v in ds.data_vars.items()}
        coords = {d: ds[d].values for d in ("chain", "draw") if d in ds.dims}
        tree[group] = xr.DataTree(xr.Dataset(flat, coords={**coords, **obs_coords(data)}))
    return tree
