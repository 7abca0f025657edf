"""RL-DDM: learner values drive the drift; checked against a plain Python loop with an
independent Wiener series, plus gradients, masking and simulator/likelihood agreement."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cogfit.models as models
from cogfit import Record
from cogfit.tasks import drifting_bandit


def wiener_lower(t, v, a, w, terms=300):
    """Density of hitting the lower boundary at decision time t: large-time series (Feller)."""
    s = sum(k * math.exp(-k * k * math.pi**2 * t / (2 * a * a)) * math.sin(k * math.pi * w)
            for k in range(1, terms + 1))
    return math.pi / a**2 * math.exp(-v * a * w - v * v * t / 2) * s


def reference(th, choice, rt, reward, p_outlier=0.02, rt_max=10.0):
    a_pos = th.get("alpha_pos", th.get("alpha"))
    a_neg = th.get("alpha_neg", th.get("alpha"))
    z = th.get("z", 0.5)
    q = [0.0, 0.0]
    out = []
    for c, r_t, rew in zip(choice, rt, reward):
        v = th["v_scale"] * (q[1] - q[0])
        d = r_t - th["t"]
        if d <= 0:
            dens = 0.0
        elif c == 1:
            dens = wiener_lower(d, -v, th["a"], 1 - z)
        else:
            dens = wiener_lower(d, v, th["a"], z)
        out.append(math.log((1 - p_outlier) * dens + p_outlier * 0.5 / rt_max))
        pe = rew - q[c]
        q[c] += (a_pos if pe >= 0 else a_neg) * pe
    return np.array(out)


def random_data(rng, n):
    return {"choice": rng.integers(0, 2, n).astype(np.int32), "rt": rng.uniform(0.25, 2.5, n),
            "reward": rng.integers(0, 2, n).astype(float), "mask": np.ones(n, bool)}


@pytest.mark.parametrize("name", ["rlddm", "rlddm_dual", "rlddm_dual_bias"])
def test_loglik_matches_python_loop(name):
    model = models.get(name)
    rng = np.random.default_rng(len(name))
    base = {"alpha": 0.3, "alpha_pos": 0.5, "alpha_neg": 0.15, "v_scale": 4.0, "a": 1.6, "z": 0.6, "t": 0.3}
    th = {p: base[p] for p in model.param_names}
    d = random_data(rng, 60)
    got = np.asarray(jax.jit(model.loglik)(model.theta(th), Record(d)))
    want = reference(th, d["choice"], d["rt"], d["reward"])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert np.ptp(want) > 1.0  # values really move the drift: trials differ


def test_gradients_finite_and_masking():
    model = models.get("rlddm_dual")
    rng = np.random.default_rng(1)
    d = random_data(rng, 80)

    def total(z, data):
        th = {p.name: p.transform.forward(z[i]) for i, p in enumerate(model.params)}
        return jnp.where(data["mask"], model.loglik(model.theta(th), data), 0.0).sum()

    z = jnp.asarray(rng.normal(0, 0.5, len(model.params)))
    g = np.asarray(jax.grad(total)(z, Record(d)))
    assert np.all(np.isfinite(g)) and np.all(g != 0)
    # Junk masked trials appended (and interleaved) change nothing.
    junk = random_data(rng, 80)
    mixed = {k: np.stack([d[k], junk[k]], 1).reshape(160) for k in d}
    mixed["mask"] = np.tile([True, False], 80)
    assert float(total(z, Record(mixed))) == pytest.approx(float(total(z, Record(d))), rel=1e-5)


def test_simulated_choices_follow_the_choice_probabilities():
    model = models.get("rlddm_dual")
    env = drifting_bandit(2, 60, seed=2)
    th = model.theta({"alpha_pos": 0.4, "alpha_neg": 0.2, "v_scale": 3.0, "a": 1.5, "t": 0.3})
    keys = jax.random.split(jax.random.key(0), 200)
    sims = jax.vmap(lambda k: model.simulate(k, th, Record(payoff=jnp.asarray(env.payoffs))))(keys)
    assert np.all(np.asarray(sims["rt"]) > 0)
    np.testing.assert_array_equal(
        np.asarray(sims["reward"]), env.payoffs[np.arange(60)[None, :], np.asarray(sims["choice"])]
    )
    logp = jax.vmap(lambda s: model.choice_logprobs(th, Record(s)))(sims)
    p1 = np.exp(np.asarray(logp)[..., 1])
    np.testing.assert_allclose(np.exp(np.asarray(logp)).sum(-1), 1.0, rtol=1e-5)
    z = ((np.asarray(sims["choice"]) == 1) - p1).sum() / math.sqrt((p1 * (1 - p1)).sum())
    assert abs(z) < 4
    # Contaminants aside (2%), responses are slower than the non-decision time.
    assert (np.asarray(sims["rt"]) > 0.3).mean() > 0.95
