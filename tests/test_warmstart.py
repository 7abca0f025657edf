"""NUTS started from a mean-field SVI fit (cogfit.inference.warmstart, ``NUTS(init="svi")``)."""

import dataclasses
import warnings

import jax
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

import cogfit
from cogfit.inference import chains as _nuts
from cogfit.inference.warmstart import svi_start


def badly_scaled():
    """Two sites on scales 1e3 apart; ``b`` sorts after ``a``."""
    numpyro.sample("b", dist.Normal(0.0, 0.01).expand((2,)).to_event())
    numpyro.sample("a", dist.Normal(0.0, 10.0).expand((3,)).to_event())


def test_guide_variances_land_on_numpyros_mass_matrix_layout():
    init, inv_mass, loss = svi_start(badly_scaled, (), key=jax.random.key(0), chains=3, steps=3000,
                                     learning_rate=0.05, progress=False)
    assert np.isfinite(loss)
    assert init["a"].shape == (3, 3) and init["b"].shape == (3, 2)
    sd = np.sqrt(np.asarray(inv_mass))
    np.testing.assert_allclose(sd[:3], 10.0, rtol=0.3)       # sites sorted by name: a, then b
    np.testing.assert_allclose(sd[3:], 0.01, rtol=0.3)

    def run(mass):
        _, stats = _nuts.sample(badly_scaled, (), key=jax.random.key(1), chains=1, tune=0, draws=40,
                                target_accept=0.8, dense_mass=False, chain_method="sequential",
                                progress=False, init=jax.tree.map(lambda x: x[:1], init), inverse_mass=mass)
        return stats

    # no warm-up: the step size stays 1, fine only if the mass matrix whitens both sites
    good, swapped = run(inv_mass), run(inv_mass[::-1])
    assert good["diverging"].sum() == 0 and good["num_steps"].mean() < 8
    assert swapped["diverging"].sum() > 20


def _data():
    model = cogfit.models.get("prospect_ra")
    design = cogfit.random_design(model, n_subjects=4, n_trials=40, seed=0)
    table = cogfit.simulate(model, design, {"rho": 0.9, "lam": 1.5, "tau": 1.0}, seed=1)
    return model, cogfit.TrialData.from_table(table, model)


def test_fit_from_svi_start_agrees_with_the_default_start():
    model, data = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nuts = cogfit.NUTS(draws=300, tune=300, chains=2, centered=False)   # the start, not the centring pilot
        plain = cogfit.fit(model, data, method=nuts, seed=3, progress=False)
        warm = cogfit.fit(model, data, method=dataclasses.replace(nuts, init="svi",
                          pilot=cogfit.SVI(steps=1500, learning_rate=0.02)), seed=3, progress=False)
    assert warm.meta["init"] == "svi" and plain.meta["init"] == "median"
    assert np.isfinite(warm.meta["init_loss"]) and warm.meta["init_steps"] == 1500
    for name in ("lam", "rho", "tau"):
        a, b = plain.posterior[name], warm.posterior[name]
        se = np.sqrt(a.var(("chain", "draw")) / 100 + b.var(("chain", "draw")) / 100)  # ESS >= 100
        assert np.all(np.abs(a.mean(("chain", "draw")) - b.mean(("chain", "draw"))) < 4 * se), name
    first = warm.posterior["lam"].values[:, 0]
    assert not np.allclose(first[0], first[1])        # chains start from different guide draws


def test_unknown_init_is_rejected():
    model, data = _data()
    with pytest.raises(ValueError, match="init must be"):
        cogfit.NUTS(init="prior")


def test_auto_centring_follows_how_much_each_subject_says():
    """centered='auto': subjects with 300 trials centred, subjects with 3 trials non-centred, in a
    population with spread (0.6 on every parameter's unconstrained scale)."""
    model = cogfit.models.get("prospect_ra")
    n = [300, 300, 300, 300, 3, 3, 3, 3]
    design = cogfit.random_design(model, n_subjects=len(n), n_trials=300, seed=0)
    design = design[design.trial < np.asarray(n)[design.subject.to_numpy()]]
    z = np.random.default_rng(2).standard_normal((len(n), 3))
    truth = {p.name: np.asarray(p.transform.forward(float(p.prior.mean) + 0.6 * z[:, j]))
             for j, p in enumerate(model.params)}
    table = cogfit.simulate(model, design, truth, seed=1)
    data = cogfit.TrialData.from_table(table, model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = cogfit.fit(model, data, seed=0, progress=False, method=cogfit.NUTS(
            centered="auto", pilot=cogfit.SVI(steps=2000, learning_rate=0.02), draws=50, tune=50, chains=1))
    mask = fit.meta["centered_mask"]
    assert mask["rho"] == mask["lam"] == "11110000"            # the long ones (tau: data say less)
    assert mask["tau"].endswith("0000") and fit.meta["centered_by_param"][:2] == [4, 4]
    assert np.isfinite(fit.meta["centring_pilot_loss"])
    with pytest.raises(ValueError, match="centered must be"):
        cogfit.NUTS(centered="yes")
