"""The NUTS chain driver (cogfit.inference.chains): chain methods agree, programs compile once for all chains."""

import logging
import subprocess
import sys
import warnings
from pathlib import Path

import jax
import numpy as np
import pytest

import cogfit

MODEL = cogfit.models.get("prospect_ra")


@pytest.fixture(scope="module")
def data():
    design = cogfit.random_design(MODEL, n_subjects=4, n_trials=25, seed=0)
    params = {"rho": 0.9, "lam": 1.5, "tau": 1.0}
    table = cogfit.simulate(MODEL, design, params, seed=1)
    return cogfit.TrialData.from_table(table, MODEL)


def _fit(data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cogfit.fit(MODEL, data, method=cogfit.NUTS(draws=30, tune=30, **kw), seed=5, progress=False)


def test_sequential_and_vectorized_chains_give_the_same_draws(data):
    # centered=False: the centring pilot is not what this checks (its SVI compile and 5,000 steps per fit)
    seq = _fit(data, chains=2, chain_method="sequential", centered=False)
    vec = _fit(data, chains=2, chain_method="vectorized", centered=False)
    for name in ("lam", "rho_mu", "tau_group"):
        np.testing.assert_allclose(seq.posterior[name].values, vec.posterior[name].values, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(seq.tree["sample_stats"]["n_steps"].values,
                                  vec.tree["sample_stats"]["n_steps"].values)
    assert seq.posterior["lam"].shape == (2, 30, 4)
    # chains start from different points and move independently
    assert not np.allclose(seq.posterior["lam"].values[0], seq.posterior["lam"].values[1])


def _compiles(caplog, data, chains):
    """Programs compiled (or loaded from the persistent cache) by one fit, per ``jax_log_compiles``."""
    jax.clear_caches()
    caplog.clear()
    with jax.log_compiles(True), caplog.at_level(logging.WARNING):
        _fit(data, chains=chains, chain_method="sequential", centered=False)
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("Compiling ")]


def test_more_sequential_chains_compile_nothing_more(data, caplog):
    """Every chain reuses the same programs (numpyro's MCMC re-traced its sampler loop per chain:
    10 more compilations for 3 chains than for 1 on this model)."""
    _fit(data, chains=1, chain_method="sequential", centered=False)
    one, three = _compiles(caplog, data, 1), _compiles(caplog, data, 3)
    assert len(one) > 10
    assert len(three) <= len(one) + 2, sorted(set(three) - set(one))


def test_unknown_chain_method_is_rejected(data):
    with pytest.raises(ValueError, match="chain_method"):
        _fit(data, chains=2, chain_method="threads")


def test_parallel_chains_on_two_devices_match_sequential(tmp_path):
    """``parallel`` (pmap over devices) needs >1 device: two CPU devices, in a subprocess. Three
    chains on two devices run in two rounds (chains 1-2 on both devices, then 3: a full round and a
    partial one, so two chains alone would add nothing); also with mode jumps (the
    widened mass and re-adapted step size are mapped over devices too). ``centered=False``: no centring
    pilot before each of the 8 fits (it is not what this checks)."""
    script = tmp_path / "par.py"
    script.write_text(
        "import sys, numpy as np, jax\n"
        "jax.config.update('jax_num_cpu_devices', 2)\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_nuts import MODEL, _fit, cogfit\n"
        "assert jax.local_device_count() == 2\n"
        "design = cogfit.random_design(MODEL, n_subjects=4, n_trials=25, seed=0)\n"
        "table = cogfit.simulate(MODEL, design, {'rho': 0.9, 'lam': 1.5, 'tau': 1.0}, seed=1)\n"
        "data = cogfit.TrialData.from_table(table, MODEL)\n"
        "for chains in (3,):\n"
        "    kw = dict(chains=chains, centered=False)\n"
        "    par, seq = _fit(data, **kw), _fit(data, **kw, chain_method='sequential')\n"
        "    assert par.meta['chain_method'] == 'parallel'\n"
        "    assert par.posterior['lam'].shape == (chains, 30, 4)\n"
        "    for name in ('lam', 'rho_mu', 'tau_group'):\n"
        "        np.testing.assert_allclose(par.posterior[name].values, seq.posterior[name].values,\n"
        "                                   rtol=1e-4, atol=1e-5)\n"
        "    np.testing.assert_array_equal(par.tree['sample_stats']['n_steps'].values,\n"
        "                                  seq.tree['sample_stats']['n_steps'].values)\n"
        "    jumps = {0: {'lam': 1.0}}   # moves: the mass is widened and the step re-adapted per device\n"
        "    par, seq = _fit(data, **kw, jumps=jumps), _fit(data, **kw, jumps=jumps, chain_method='sequential')\n"
        "    np.testing.assert_allclose(par.posterior['lam'].values, seq.posterior['lam'].values,\n"
        "                               rtol=1e-4, atol=1e-5)\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-3000:]


def test_divergence_hint_names_the_target_acceptance_used():
    from cogfit._fit import divergence_hint

    hint = divergence_hint(2, {"target_accept": 0.95})
    assert hint.startswith("2 divergent transitions: try centered='auto'")
    assert "this fit: 0.95; e.g. 0.99" in hint
    piloted = divergence_hint(3, {"target_accept": 0.9, "method_settings": {"centered": "auto"}})
    assert "centered='auto'" not in piloted                     # the fit already chose its centring
    assert "this fit: 0.9; e.g. 0.95" in piloted
    assert "model.with_sd_prior(0.5)" in piloted                # a remedy that can be typed as it reads
    assert "centered='auto'" in divergence_hint(1, {"target_accept": 0.9, "method_settings": {"centered": False}})
    assert cogfit.NUTS().settings()["centered"] == "auto"       # what a default fit records
