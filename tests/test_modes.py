"""Finding subjects with two posterior modes (cogfit.inference.modes) and fit(jumps="auto")."""

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from scipy.stats import t as student_t

import cogfit
from cogfit.inference.modes import find_jumps, population_means

A_TRUE = {"s0": 1.5, "s1": 0.0, "s2": -1.2}      # s0, s2: modes at +-|a|; s1: near 0 (too close to jump)


def _loglik(theta, trials):
    """Sign-blind choices: P(choice = 1) = sigmoid(a^2 x - 1), so a and -a fit equally well."""
    logit = theta.a ** 2 * trials.x - 1.0
    return jnp.where(trials.choice == 1, jax.nn.log_sigmoid(logit), jax.nn.log_sigmoid(-logit))


SIGN_BLIND = cogfit.Model("sign_blind", (cogfit.Param("a", doc="effect of x; only a^2 matters"),), _loglik,
                          lambda key, theta, trials: {}, requires=("x",))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    rows = []
    for s, a in A_TRUE.items():
        x = rng.uniform(-2, 2, 200)
        p = 1 / (1 + np.exp(-(a ** 2 * x - 1.0)))
        rows.append(pd.DataFrame(dict(subject=s, trial=np.arange(200), x=x, choice=(rng.uniform(size=200) < p) * 1)))
    return cogfit.TrialData.from_table(pd.concat(rows), SIGN_BLIND)


def _grid_modes(data, s, mu, sigma, nu=None):
    """The local maxima of subject ``s``'s log density on a fine grid, in numpy (the reference)."""
    grid = np.linspace(-6, 6, 24001)
    i = data.subjects.index(s)
    n = int(data.n_trials[i])
    x, c = np.asarray(data.fields["x"][i, :n]), np.asarray(data.fields["choice"][i, :n])
    logit = grid[:, None] ** 2 * x[None] - 1.0
    ll = np.sum(np.where(c == 1, -np.logaddexp(0, -logit), -np.logaddexp(0, logit)), axis=1)
    lp = ll + (norm.logpdf(grid, mu, sigma) if nu is None else student_t.logpdf(grid, nu, mu, sigma))
    peaks = np.flatnonzero((lp[1:-1] > lp[:-2]) & (lp[1:-1] > lp[2:])) + 1
    return grid[peaks], lp[peaks]


@pytest.mark.parametrize("nu", [None, 4.0])
def test_find_jumps_gives_the_move_between_the_two_modes(data, nu):
    mu, sigma = np.array([[0.2]]), np.array([[2.0]])
    moves = find_jumps(SIGN_BLIND, data, mu, sigma, None if nu is None else np.array([nu]), key=jax.random.key(0))
    assert set(moves) == {"s0", "s2"}
    for s in moves:
        peaks, heights = _grid_modes(data, s, 0.2, 2.0, nu)
        assert len(peaks) == 2
        best, other = peaks[np.argmax(heights)], peaks[np.argmin(heights)]
        np.testing.assert_allclose(moves[s]["a"], other - best, atol=2e-3)
    assert np.ptp(_grid_modes(data, "s1", 0.2, 2.0, nu)[0]) < 2.0      # s1's optima: within one sigma


def test_find_jumps_leaves_out_modes_beyond_the_gap(data):
    # a population on the positive side makes each subject's negative mode less probable
    mu, sigma = np.array([[0.9]]), np.array([[0.8]])
    gaps = {}
    for s in ("s0", "s2"):
        heights = _grid_modes(data, s, 0.9, 0.8)[1]
        gaps[s] = heights.max() - heights.min()
    assert gaps["s2"] + 0.5 < gaps["s0"]                               # about 3.4 and 4.2 nats
    key = jax.random.key(0)
    assert find_jumps(SIGN_BLIND, data, mu, sigma, key=key, gap=gaps["s2"] - 0.2) == {}
    assert set(find_jumps(SIGN_BLIND, data, mu, sigma, key=key, gap=gaps["s2"] + 0.2)) == {"s2"}
    assert set(find_jumps(SIGN_BLIND, data, mu, sigma, key=key, gap=gaps["s0"] + 0.2)) == {"s0", "s2"}


def test_population_means_maps_sites_to_natural_spread():
    loc = {"a_mu": jnp.array([0.5, -1.0]), "a_sigma": jnp.log(jnp.array([2.0, 0.5])), "a_nu": jnp.log(7.0)}
    mu, sigma, nu = population_means(SIGN_BLIND, loc, "student_t", None)
    np.testing.assert_allclose(mu, [[0.5], [-1.0]])
    np.testing.assert_allclose(sigma, [[2.0], [0.5]], rtol=1e-6)
    np.testing.assert_allclose(nu, [7.0], rtol=1e-6)
    assert population_means(SIGN_BLIND, loc, "normal", None)[2] is None
    np.testing.assert_allclose(population_means(SIGN_BLIND, loc, "student_t", 3.0)[2], [3.0])


def test_fit_jumps_auto_lets_every_chain_visit_both_signs(data):
    fit = cogfit.fit(SIGN_BLIND, data, method=cogfit.NUTS(jumps="auto", tune=300, draws=400, chains=2), seed=1,
                     progress=False, warn=False)
    assert fit.meta["jumps_auto"] and set(fit.meta["jumps"]) == {"s0", "s2"}
    a = fit.posterior["a"].values                                        # (chain, draw, subject)
    for s in ("s0", "s2"):
        positive = (a[..., data.subjects.index(s)] > 0).mean(axis=1)
        assert np.all((positive > 0.2) & (positive < 0.8)), (s, positive)
    stuck = cogfit.fit(SIGN_BLIND, data, method=cogfit.NUTS(tune=300, draws=400, chains=2), seed=1, progress=False,
                       warn=False)
    positive = (stuck.posterior["a"].values[..., 0] > 0).mean(axis=1)            # s0, without the moves
    assert set(positive) <= {0.0, 1.0}, positive


@pytest.mark.parametrize("hierarchy", [cogfit.Hierarchy(pooling="none"), cogfit.Hierarchy(pooling={"a": "complete"})])
def test_fit_jumps_auto_refuses_what_it_cannot_do(data, hierarchy):
    with pytest.raises(ValueError, match="jumps"):
        cogfit.fit(SIGN_BLIND, data, method=cogfit.NUTS(jumps="auto"), hierarchy=hierarchy)
    with pytest.raises(ValueError, match="jumps"):
        cogfit.NUTS(jumps="everywhere")


def test_find_jumps_in_chunks_of_starts_gives_the_same_moves(data, monkeypatch):
    mu, sigma = np.array([[0.2]]), np.array([[2.0]])
    whole = find_jumps(SIGN_BLIND, data, mu, sigma, key=jax.random.key(0))
    monkeypatch.setattr("cogfit.inference.modes.LANE_TRIALS", 900)           # 1 start per call (600 trials)
    chunked = find_jumps(SIGN_BLIND, data, mu, sigma, key=jax.random.key(0))
    assert set(chunked) == set(whole) == {"s0", "s2"}
    for s in whole:
        np.testing.assert_allclose(chunked[s]["a"], whole[s]["a"], atol=1e-3)   # float32 sums differ
