"""Bandit learners: per-trial likelihoods against a plain Python loop, gradients, masking,
ragged subjects, condition-varying parameters, and simulator/likelihood agreement."""

import math
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cogfit.models as models
from cogfit import Record
from cogfit.models import bandit as bandit_mod
from cogfit.tasks import drifting_bandit

BANDITS = [name for name in models.available() if name.startswith("bandit_")]


def reference_loglik(params: dict, choice, reward, block=None, *, n_arms=2, q0=0.0, reset=False):
    """Independent plain-Python implementation of the learner (lists, math.exp, explicit loops)."""
    a_pos = params.get("alpha_pos", params.get("alpha"))
    a_neg = params.get("alpha_neg", params.get("alpha"))
    beta = params["beta"] if "beta" in params else params["beta_h"] / (1.0 - (1.0 - (a_pos + a_neg) / 2) ** 20)
    beta_c = params.get("beta_c", 0.0)
    alpha_c, decay, lapse = params.get("alpha_c", 1.0), params.get("decay", 0.0), params.get("lapse", 0.0)
    q, ck = [q0] * n_arms, [0.0] * n_arms
    out = []
    for t, (c, r) in enumerate(zip(choice, reward)):
        if reset and t > 0 and block[t] != block[t - 1]:
            q, ck = [q0] * n_arms, [0.0] * n_arms
        u = [beta * q[k] + beta_c * ck[k] for k in range(n_arms)]
        z = sum(math.exp(x) for x in u)
        p = (1 - lapse) * math.exp(u[c]) / z + lapse / n_arms
        out.append(math.log(p))
        pe = r - q[c]
        a = a_pos if pe >= 0 else a_neg
        for k in range(n_arms):
            if k == c:
                q[k] = q[k] + a * pe
            else:
                q[k] = q[k] + decay * (q0 - q[k])
            ck[k] = ck[k] + alpha_c * ((1.0 if k == c else 0.0) - ck[k])
    return np.array(out)


def random_theta(model, rng):
    """Natural-scale parameters from random unconstrained values (wide, but not extreme)."""
    return {p.name: float(p.transform.forward(rng.normal(0.0, 1.2))) for p in model.params}


def random_trials(rng, n_trials, n_arms=2, n_blocks=3):
    return {
        "choice": rng.integers(0, n_arms, n_trials).astype(np.int32),
        "reward": rng.normal(0.5, 1.0, n_trials),  # signed, non-binary outcomes on purpose
        "block": np.sort(rng.integers(0, n_blocks, n_trials)).astype(float),
        "mask": np.ones(n_trials, bool),
    }


@pytest.mark.parametrize("name", BANDITS)
def test_loglik_matches_python_loop(name):
    model = models.get(name)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    for _ in range(3):
        theta = random_theta(model, rng)
        data = random_trials(rng, 60)
        got = jax.jit(model.loglik)(model.theta(theta), Record(data))
        want = reference_loglik(
            theta, data["choice"], data["reward"], data["block"], reset=name.endswith("_blocks")
        )
        np.testing.assert_allclose(np.asarray(got), want, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("q0,n_arms", [(0.5, 3), (-1.0, 4)])
def test_initial_values_and_many_arms(q0, n_arms):
    model = bandit_mod.bandit("tmp", ("alpha_pos", "alpha_neg", "beta", "decay"), n_arms=n_arms, q0=q0)
    rng = np.random.default_rng(3)
    theta = random_theta(model, rng)
    data = random_trials(rng, 80, n_arms=n_arms)
    got = model.loglik(model.theta(theta), Record(data))
    want = reference_loglik(theta, data["choice"], data["reward"], n_arms=n_arms, q0=q0)
    np.testing.assert_allclose(np.asarray(got), want, rtol=2e-4, atol=2e-5)
    logp = model.choice_logprobs(model.theta(theta), Record(data))
    assert logp.shape == (80, n_arms)
    np.testing.assert_allclose(np.exp(np.asarray(logp)).sum(1), 1.0, rtol=1e-5)


def test_two_arm_log_probabilities_agree_and_stay_accurate_at_extreme_logits():
    """The 2-arm fast path (one softplus of the logit difference) equals the float64 loop
    reference, also where one arm is nearly certain (logit differences up to ~60), and the
    per-arm log-probabilities agree with it."""
    model = models.get("bandit_dual_rep")
    rng = np.random.default_rng(11)
    data = random_trials(rng, 120)
    data["reward"] = rng.integers(0, 2, 120).astype(np.float32)
    for theta in ({"alpha_pos": 0.9, "alpha_neg": 0.7, "beta": 60.0, "beta_c": 3.0},
                  {"alpha_pos": 0.2, "alpha_neg": 0.05, "beta": 0.3, "beta_c": -2.0}):
        got = np.asarray(jax.jit(model.loglik)(Record(theta), Record(data)))
        want = reference_loglik(theta, data["choice"], data["reward"])
        assert want.min() < -30 or theta["beta"] < 1
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        logp = np.asarray(model.choice_logprobs(Record(theta), Record(data)))
        np.testing.assert_allclose(logp[np.arange(120), data["choice"]], got, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(np.logaddexp(logp[:, 0], logp[:, 1]), 0.0, atol=1e-6)


def test_block_reset_changes_the_likelihood_only_after_a_boundary():
    rng = np.random.default_rng(4)
    theta = {"alpha": 0.4, "beta": 3.0}
    data = random_trials(rng, 40)
    data["block"] = np.repeat([0.0, 1.0], 20)
    plain = np.asarray(models.get("bandit_rw").loglik(Record(theta), Record(data)))
    reset = np.asarray(models.get("bandit_rw_blocks").loglik(Record(theta), Record(data)))
    np.testing.assert_allclose(plain[:20], reset[:20], rtol=1e-6)
    assert reset[20] == pytest.approx(math.log(0.5), rel=1e-6)  # values back at q0 = 0
    assert plain[20] != pytest.approx(math.log(0.5), rel=1e-3)


@pytest.mark.parametrize("name", ["bandit_full", "bandit_dual_persev_blocks"])
def test_gradients_are_finite(name):
    model = models.get(name)
    rng = np.random.default_rng(5)
    data = Record(random_trials(rng, 100))

    def total(z):
        theta = {p.name: p.transform.forward(z[i]) for i, p in enumerate(model.params)}
        return model.loglik(model.theta(theta), data).sum()

    for scale in (0.0, 2.0, 4.0):
        z = jnp.asarray(rng.normal(0.0, scale, len(model.params)))
        g = jax.grad(total)(z)
        assert np.all(np.isfinite(np.asarray(g))), (scale, g)
        assert np.any(np.asarray(g) != 0.0)


def test_masked_trials_neither_count_nor_update_state():
    model = models.get("bandit_full")
    rng = np.random.default_rng(6)
    theta = model.theta(random_theta(model, rng))
    data = random_trials(rng, 30)
    # Interleave junk trials (masked) between real ones: the real trials must be unaffected.
    junk = random_trials(rng, 30)
    mixed = {k: np.stack([data[k], junk[k]], axis=1).reshape(60) for k in data}
    mixed["mask"] = np.tile([True, False], 30)
    got = np.asarray(model.loglik(theta, Record(mixed)))[mixed["mask"]]
    want = np.asarray(model.loglik(theta, Record(data)))
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_ragged_subjects_vmapped_equal_one_by_one():
    model = models.get("bandit_dual_persev")
    rng = np.random.default_rng(7)
    lengths = [12, 50, 33]
    subjects = [random_trials(rng, n) for n in lengths]
    thetas = [random_theta(model, rng) for _ in lengths]
    T = max(lengths)
    padded = {}
    for k in ("choice", "reward", "block"):
        padded[k] = np.stack([np.concatenate([s[k], np.repeat(s[k][-1:], T - len(s[k]))]) for s in subjects])
    padded["mask"] = np.arange(T)[None, :] < np.array(lengths)[:, None]
    theta_b = {k: np.array([t[k] for t in thetas]) for k in thetas[0]}
    batch = jax.jit(jax.vmap(model.loglik))(Record(theta_b), Record(padded))
    batch = np.where(padded["mask"], np.asarray(batch), 0.0).sum(1)
    one_by_one = [float(model.loglik(Record(t), Record(s)).sum()) for t, s in zip(thetas, subjects)]
    np.testing.assert_allclose(batch, one_by_one, rtol=1e-5)


def test_condition_varying_parameters_broadcast():
    model = models.get("bandit_dual")
    rng = np.random.default_rng(8)
    data = random_trials(rng, 40)
    cond = np.arange(40) % 2
    beta_t = np.where(cond == 0, 1.0, 4.0)
    theta = {"alpha_pos": 0.3, "alpha_neg": 0.6, "beta": beta_t}
    got = np.asarray(model.loglik(Record(theta), Record(data)))
    # Reference: the learner is the same; only the softmax temperature changes per trial.
    ref_lo = reference_loglik({**theta, "beta": 1.0}, data["choice"], data["reward"])
    ref_hi = reference_loglik({**theta, "beta": 4.0}, data["choice"], data["reward"])
    np.testing.assert_allclose(got, np.where(cond == 0, ref_lo, ref_hi), rtol=2e-4, atol=2e-5)


def test_simulator_plays_the_schedule_and_agrees_with_the_likelihood():
    """Simulated choices are calibrated against the likelihood's per-trial probabilities."""
    model = models.get("bandit_full")
    env = drifting_bandit(2, 150, seed=11)
    payoff = jnp.asarray(env.payoffs)
    theta = model.theta({"alpha_pos": 0.4, "alpha_neg": 0.2, "beta": 3.0, "alpha_c": 0.3,
                         "beta_c": 0.8, "decay": 0.1, "lapse": 0.05})
    keys = jax.random.split(jax.random.key(0), 400)
    sim = jax.vmap(lambda k: model.simulate(k, theta, Record(payoff=payoff)))(keys)
    chosen_payoff = np.take_along_axis(np.asarray(payoff)[None].repeat(400, 0),
                                       np.asarray(sim["choice"])[..., None], axis=2)[..., 0]
    np.testing.assert_array_equal(np.asarray(sim["reward"]), chosen_payoff)
    logp = jax.vmap(lambda c, r: model.choice_logprobs(theta, Record(choice=c, reward=r)))(
        sim["choice"], sim["reward"]
    )
    p1 = np.exp(np.asarray(logp)[..., 1])
    resid = (np.asarray(sim["choice"]) == 1) - p1
    z = resid.sum() / math.sqrt((p1 * (1 - p1)).sum())
    assert abs(z) < 4.0
    # ...and the agreement is specific: a different beta is detectably miscalibrated.
    other = theta.replace(beta=0.3)
    p_other = np.exp(np.asarray(jax.vmap(
        lambda c, r: model.choice_logprobs(other, Record(choice=c, reward=r)))(sim["choice"], sim["reward"]))[..., 1])
    c = np.asarray(sim["choice"])
    better = ((c == 1) * np.log(p1) + (c == 0) * np.log1p(-p1)).sum()
    worse = ((c == 1) * np.log(p_other) + (c == 0) * np.log1p(-p_other)).sum()
    assert better > worse + 100


def test_bad_configuration_is_rejected():
    with pytest.raises(ValueError, match="beta"):
        bandit_mod.bandit("x", ("alpha",))
    with pytest.raises(ValueError, match="alpha_pos"):
        bandit_mod.bandit("x", ("alpha_pos", "beta"))
    with pytest.raises(ValueError, match="alpha_c"):
        bandit_mod.bandit("x", ("alpha", "beta", "alpha_c"))
    with pytest.raises(ValueError, match="one of 'beta' and 'beta_h'"):
        bandit_mod.bandit("x", ("alpha", "beta", "beta_h"))


@pytest.mark.parametrize("x64", [False, True])
def test_learned_fraction_is_accurate_for_tiny_rates_and_smooth_at_one(x64):
    """1 - (1 - a)^H: relative error against the series H a - C(H,2) a^2 for tiny a (where the
    plain power rounds to 0 in float32), the closed form elsewhere, and finite gradients up to
    a = 1 (a saturated float32 sigmoid)."""
    H = 20.0
    with jax.enable_x64(x64):
        dtype = jnp.float64 if x64 else jnp.float32
        tiny = jnp.asarray([1e-9, 1e-7, 1e-5], dtype)
        series = H * np.asarray(tiny, float) - H * (H - 1) / 2 * np.asarray(tiny, float) ** 2
        np.testing.assert_allclose(np.asarray(bandit_mod.learned_fraction(tiny, H)), series, rtol=1e-5)
        a = jnp.asarray([0.01, 0.2, 0.7, 0.999, 1.0], dtype)
        want = 1.0 - (1.0 - np.asarray(a, float)) ** H
        np.testing.assert_allclose(np.asarray(bandit_mod.learned_fraction(a, H)), want, rtol=1e-5)
        grad = jax.vmap(jax.grad(lambda x: bandit_mod.learned_fraction(x, H)))(a)
        assert np.all(np.isfinite(np.asarray(grad))) and float(grad[-1]) == 0.0
        # through the sigmoid: a learning rate whose logit saturates float32 keeps a finite gradient
        u = jnp.asarray([-30.0, 0.0, 30.0], dtype)
        g = jax.vmap(jax.grad(lambda x: bandit_mod.learned_fraction(jax.nn.sigmoid(x), H)))(u)
        assert np.all(np.isfinite(np.asarray(g)))


def test_beta_h_is_beta_rescaled():
    """The beta_h learner is the beta learner at beta = beta_h / (1 - (1 - mean alpha)^horizon)."""
    rng = np.random.default_rng(5)
    h = models.get("bandit_dual_rep_h_blocks")
    b = models.get("bandit_dual_rep_blocks")
    for _ in range(3):
        theta = random_theta(h, rng)
        data = Record(random_trials(rng, 50))
        beta = float(bandit_mod.inverse_temperature(Record(theta), 20.0))
        mean_a = (theta["alpha_pos"] + theta["alpha_neg"]) / 2
        assert beta == pytest.approx(theta["beta_h"] / (1 - (1 - mean_a) ** 20), rel=1e-5)
        plain = {k: v for k, v in theta.items() if k != "beta_h"} | {"beta": beta}
        np.testing.assert_allclose(np.asarray(h.loglik(h.theta(theta), data)),
                                   np.asarray(b.loglik(b.theta(plain), data)), rtol=1e-5, atol=1e-6)
        key = jax.random.key(1)
        pay = {"payoff": jnp.asarray(rng.integers(0, 2, (50, 2)), float), "block": data["block"],
               "mask": data["mask"]}
        sim_h, sim_b = h.simulate(key, h.theta(theta), Record(pay)), b.simulate(key, b.theta(plain), Record(pay))
        np.testing.assert_array_equal(np.asarray(sim_h["choice"]), np.asarray(sim_b["choice"]))


def test_ragged_table_fitted_jointly_equals_one_by_one():
    """Through the core: the log density of a ragged table with independent subjects is the sum
    of the subjects' own log densities (padding and masking change nothing)."""
    import pandas as pd
    from numpyro.infer.util import log_density

    from cogfit import TrialData
    from cogfit._hierarchy import build, model_args

    model = models.get("bandit_dual_rep_blocks")
    rng = np.random.default_rng(9)
    frames = []
    for s, n in enumerate([25, 70]):
        d = random_trials(rng, n)
        frames.append(pd.DataFrame({"subject": f"s{s}", "trial": np.arange(n), "choice": d["choice"],
                                    "reward": d["reward"], "block": d["block"].astype(int)}))
    table = pd.concat(frames, ignore_index=True)
    u = {f"{p}_u": rng.normal(0, 1, 2) for p in model.param_names}

    def density(tab, idx):
        data = TrialData.from_table(tab, model)
        fn = build(model, data, pooling="none")
        return float(log_density(fn, model_args(data), {}, {k: jnp.asarray(v[idx]) for k, v in u.items()})[0])

    joint = density(table, slice(None))
    alone = sum(density(f, slice(i, i + 1)) for i, f in enumerate(frames))
    assert joint == pytest.approx(alone, rel=1e-5)
    # ...and the likelihood part is not trivially zero: changing some of one subject's choices
    # changes it (flipping *all* of them would not: the two arms are exchangeable).
    hit = (table["subject"] == "s1") & (table["trial"] % 2 == 0)
    flipped = table.assign(choice=np.where(hit, 1 - table["choice"], table["choice"]))
    assert abs(density(flipped, slice(None)) - joint) > 1.0


def test_simulate_then_fit_recovers_parameters():
    """Learners simulated on drifting bandits through the public API (``random_design`` ->
    ``simulate``) are recovered by the core's MAP fit."""
    import cogfit

    model = models.get("bandit_dual")
    n_sub, n_trials = 24, 300
    rng = np.random.default_rng(10)
    true = {"alpha_pos": rng.uniform(0.2, 0.8, n_sub), "alpha_neg": rng.uniform(0.05, 0.5, n_sub),
            "beta": rng.uniform(2.0, 8.0, n_sub)}
    design = cogfit.random_design(model, n_subjects=n_sub, n_trials=n_trials, seed=3)
    assert {"payoff_1", "payoff_2"} <= set(design.columns) and "reward" not in design
    table = cogfit.simulate(model, design, true, seed=4)
    pay = table[["payoff_1", "payoff_2"]].to_numpy()
    assert (table["reward"].to_numpy() == pay[np.arange(len(table)), table["choice"]]).all()
    data = cogfit.TrialData.from_table(table, model)
    fit = cogfit.fit(model, data, method=cogfit.MAP(laplace=False, steps=2000, learning_rate=0.05),
                     hierarchy=cogfit.Hierarchy(pooling="none"), progress=False)
    assert "payoff" in data.fields             # design-only columns are kept when present
    est = fit.subject_params().pivot(index="subject", columns="param", values="mean").loc[list(range(n_sub))]
    for p in model.param_names:
        r = np.corrcoef(np.log(true[p]), np.log(est[p].to_numpy()))[0, 1]
        assert r > 0.6, (p, r)
