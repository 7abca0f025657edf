"""Each likelihood code path of the zoo, at extreme parameters: finite log-likelihoods and gradients in float32
and float64, and float32 per-trial values that agree with float64.

Points are random corners of the unconstrained space (each coordinate one of -6, -3, 0, 3, 6:
e.g. an inverse temperature of e^6 ~ 400, a learning rate of 0.0025 or 0.9975). NUTS warm-up
visits such regions; a float32 cancellation there (as CPT had near alpha -> 0, and in its
probability weights near a cumulative probability of 1) stalls chains.
Points where float64 gives zero density for the data (a non-decision time above an observed
response time) are outside the support: float32 must agree, and gradients are not asked there.

One model per code path (registered variants of a family share it: every bandit mechanism is in
``bandit_full``, block resets in ``bandit_dual_rep_blocks``); each costs two compilations.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cogfit
from cogfit import Record

MODELS = ["bandit_full", "bandit_dual_rep_blocks", "bandit_dual_rep_h_blocks", "twostep_hybrid", "rlddm_dual_bias",
          "prospect_ra", "cpt_linear_bias", "cpt", "cpt_prelec2_bias", "cpt:ref=16", "ddm_lapse", "full_ddm",
          "ddm_choice"]
GRID = np.array([-6.0, -3.0, 0.0, 3.0, 6.0])
N_POINTS, N_TRIALS = 24, 40


def _trials(model) -> dict[str, np.ndarray]:
    """One subject's simulated trials at the prior medians (float64 numpy arrays)."""
    design = cogfit.random_design(model, n_subjects=1, n_trials=N_TRIALS, seed=0)
    if "block" in model.requires and "block" not in design:
        design["block"] = design["trial"] // 10
    params = {p.name: [float(p.transform.forward(jnp.median(p.prior.sample(jax.random.key(0), (501,)))))]
              for p in model.params}
    table = cogfit.simulate(model, design, params, seed=1)
    data = cogfit.TrialData.from_table(table, model)
    return {k: np.asarray(v)[0] for k, v in data.fields.items()}


def _evaluate(model, trials, points, x64: bool):
    """Per-trial log-likelihoods ``(N, T)`` and gradients of their sum ``(N, P)``."""
    with jax.enable_x64(x64):
        ft = jnp.float64 if x64 else jnp.float32
        tr = Record({k: jnp.asarray(v, ft) if np.issubdtype(v.dtype, np.floating) else jnp.asarray(v)
                     for k, v in trials.items()})

        def per_trial(u):
            th = {p.name: p.transform.forward(u[i]) for i, p in enumerate(model.params)}
            return jnp.where(tr["mask"], model.loglik(model.theta(th), tr), 0.0)

        def both(u):                                   # one compilation for values and gradient
            ll, pullback = jax.vjp(per_trial, u)
            return ll, pullback(jnp.ones_like(ll))[0]

        ll, grad = jax.jit(jax.vmap(both))(jnp.asarray(points, ft))
        return np.asarray(ll, np.float64), np.asarray(grad, np.float64)


@pytest.mark.parametrize("name", MODELS)
def test_extreme_parameters_finite_and_float32_agrees_with_float64(name):
    name, _, constant = name.partition(":")                 # "cpt:ref=16": cpt with its constant ref = 16
    model = cogfit.models.get(name)
    if constant:
        key, value = constant.split("=")
        model = model.variant(name, fix={key: float(value)})
    trials = _trials(model)
    rng = np.random.default_rng(0)
    points = rng.choice(GRID, size=(N_POINTS, len(model.params)))
    points[0] = 0.0
    ll64, g64 = _evaluate(model, trials, points, x64=True)
    ll32, g32 = _evaluate(model, trials, points, x64=False)
    support = np.all(np.isfinite(ll64), axis=1)
    assert support.mean() >= 0.5, f"{name}: {np.sum(~support)} of {N_POINTS} points outside the support"
    assert not np.any(np.isnan(ll64)) and not np.any(np.isnan(ll32)), name
    np.testing.assert_array_equal(np.isfinite(ll32), np.isfinite(ll64), err_msg=name)
    for g, prec in ((g64, "float64"), (g32, "float32")):
        bad = ~np.all(np.isfinite(g[support]), axis=1)
        assert not bad.any(), f"{name} {prec}: non-finite gradient at {points[support][bad][:3]}"
    fin = np.isfinite(ll64)
    err = np.abs(ll32[fin] - ll64[fin])
    tol = 1e-3 + 1e-4 * np.abs(ll64[fin])
    worst = np.argmax(err - tol)
    assert np.all(err <= tol), (f"{name}: float32 off by {err[worst]:.3g} nats on a trial whose float64 "
                                f"log-likelihood is {ll64[fin][worst]:.4g}")
