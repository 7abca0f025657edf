"""Two-step hybrid learner: Python-loop references (Daw 2011 and hBayesDM ts_par7), reductions,
gradients, masking, ragged subjects, and the simulator on the task environment."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cogfit.models as models
from cogfit import Record
from cogfit.models import twostep as ts_mod
from cogfit.tasks import TwoStep


def _logsm(x):
    m = max(x)
    z = sum(math.exp(v - m) for v in x)
    return [v - m - math.log(z) for v in x]


def reference_daw(theta, a1s, s2s, a2s, rs, common=0.7, stage1=False):
    """Daw et al. (2011) hybrid model, plain Python: per trial the log-probability of both choices,
    or (``stage1``) of each stage-1 action. A parameter may be a per-trial sequence."""
    q1, q2, last = [0.0, 0.0], [[0.0, 0.0], [0.0, 0.0]], None
    out = []
    for t, (a1, s, a2, r) in enumerate(zip(a1s, s2s, a2s, rs)):
        th = {k: float(np.asarray(v)[t]) if np.ndim(v) else v for k, v in theta.items()}
        m0, m1 = max(q2[0]), max(q2[1])
        qmb = [common * m0 + (1 - common) * m1, (1 - common) * m0 + common * m1]
        net = [th["w"] * qmb[a] + (1 - th["w"]) * q1[a] + th["p"] * (1.0 if last == a else 0.0) for a in (0, 1)]
        lp1 = _logsm([th["beta1"] * v for v in net])
        lp2 = _logsm([th["beta2"] * v for v in q2[s]])[a2]
        out.append(lp1 if stage1 else lp1[a1] + lp2)
        d1 = q2[s][a2] - q1[a1]
        d2 = r - q2[s][a2]
        q1[a1] += th["alpha1"] * d1 + th["alpha1"] * th["lam"] * d2
        q2[s][a2] += th["alpha2"] * d2
        last = a1
    return np.array(out)


def reference_hbayesdm_ts_par7(a1_, beta1, a2_, beta2, pi, w, lam, a1s, s2s, a2s, rs, trans=0.7):
    """hBayesDM ts_par7 likelihood transcribed to Python (stage-2 choices coded 1..4 there)."""
    v = [0.0] * 6  # 0,1: stage 1; 2..5: (state, action)
    out, prev = [], None
    for a1, s, a2, r in zip(a1s, s2s, a2s, rs):
        vmb1 = trans * max(v[2], v[3]) + (1 - trans) * max(v[4], v[5])
        vmb2 = (1 - trans) * max(v[2], v[3]) + trans * max(v[4], v[5])
        h1, h2 = w * vmb1 + (1 - w) * v[0], w * vmb2 + (1 - w) * v[1]
        x = beta1 * (h2 - h1) + (0.0 if prev is None else pi * (2 * (prev + 1) - 3))
        p2 = 1 / (1 + math.exp(-x))
        lp = math.log(p2 if a1 == 1 else 1 - p2)
        idx = 2 + 2 * s + a2
        v[a1] += a1_ * (v[idx] - v[a1])
        y = beta2 * (v[2 + 2 * s + 1] - v[2 + 2 * s])
        q2 = 1 / (1 + math.exp(-y))
        lp += math.log(q2 if a2 == 1 else 1 - q2)
        v[idx] += a2_ * (r - v[idx])
        v[a1] += lam * a1_ * (r - v[idx])
        out.append(lp)
        prev = a1
    return np.array(out)


def random_data(rng, n):
    a1 = rng.integers(0, 2, n)
    common = rng.random(n) < 0.7
    return {
        "choice": a1.astype(np.int32),
        "state2": np.where(common, a1, 1 - a1).astype(float),
        "choice2": rng.integers(0, 2, n).astype(float),
        "reward": rng.integers(0, 2, n).astype(float),
        "mask": np.ones(n, bool),
    }


def random_theta(model, rng):
    return {p.name: float(p.transform.forward(rng.normal(0.0, 1.2))) for p in model.params}


def test_hybrid_matches_daw_reference():
    model = models.get("twostep_hybrid")
    rng = np.random.default_rng(0)
    for _ in range(4):
        th = random_theta(model, rng)
        d = random_data(rng, 80)
        got = np.asarray(jax.jit(model.loglik)(model.theta(th), Record(d)))
        want = reference_daw(th, d["choice"], d["state2"].astype(int), d["choice2"].astype(int), d["reward"])
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)


def test_stage1_logprobs_and_per_trial_parameters_match_the_reference():
    """``choice_logprobs`` (soft labels) gives both stage-1 actions; a parameter that varies by
    trial (a condition) is read trial by trial."""
    model = models.get("twostep_hybrid")
    rng = np.random.default_rng(6)
    th = random_theta(model, rng)
    d = random_data(rng, 60)
    ints = (d["choice"], d["state2"].astype(int), d["choice2"].astype(int), d["reward"])
    lp1 = np.asarray(model.choice_logprobs(model.theta(th), Record(d)))
    np.testing.assert_allclose(lp1, reference_daw(th, *ints, stage1=True), rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(np.exp(lp1).sum(1), 1.0, rtol=1e-5)
    varying = dict(th, w=rng.uniform(0, 1, 60), beta2=rng.uniform(1, 5, 60))
    got = np.asarray(model.loglik(model.theta({k: jnp.asarray(v) for k, v in varying.items()}), Record(d)))
    np.testing.assert_allclose(got, reference_daw(varying, *ints), rtol=2e-4, atol=2e-5)


def test_hybrid_equals_hbayesdm_ts_par7_after_reparameterisation():
    model = models.get("twostep_hybrid")
    rng = np.random.default_rng(1)
    d = random_data(rng, 80)
    a1_, beta1, a2_, beta2, pi, w, lam_hb = 0.4, 2.5, 0.6, 3.0, 0.8, 0.3, 0.7
    want = reference_hbayesdm_ts_par7(a1_, beta1, a2_, beta2, pi, w, lam_hb, d["choice"],
                                      d["state2"].astype(int), d["choice2"].astype(int), d["reward"])
    th = {"alpha1": a1_, "alpha2": a2_, "lam": lam_hb * (1 - a2_), "beta1": beta1, "beta2": beta2,
          "w": w, "p": pi / beta1}
    got = np.asarray(model.loglik(model.theta(th), Record(d)))
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)


def test_reductions_tie_parameters():
    rng = np.random.default_rng(2)
    d = Record(random_data(rng, 60))
    full = models.get("twostep_hybrid")
    six, four = models.get("twostep_hybrid6"), models.get("twostep_hybrid4")
    assert six.param_names == ("alpha1", "alpha2", "beta1", "beta2", "w", "p")
    assert four.param_names == ("alpha", "beta", "w", "p")
    th4 = {"alpha": 0.3, "beta": 2.0, "w": 0.6, "p": 0.2}
    th7 = {"alpha1": 0.3, "alpha2": 0.3, "lam": 1.0, "beta1": 2.0, "beta2": 2.0, "w": 0.6, "p": 0.2}
    np.testing.assert_allclose(four.loglik(four.theta(th4), d), full.loglik(full.theta(th7), d), rtol=1e-6)
    th6 = {k: v for k, v in th7.items() if k != "lam"}
    np.testing.assert_allclose(six.loglik(six.theta(th6), d), full.loglik(full.theta(th7), d), rtol=1e-6)


def test_transition_probability_is_configurable():
    rng = np.random.default_rng(3)
    d = random_data(rng, 50)
    model = ts_mod.twostep("ts_08", ("alpha1", "alpha2", "lam", "beta1", "beta2", "w", "p"), common=0.8)
    th = random_theta(model, rng) | {"w": 0.9}
    got = np.asarray(model.loglik(model.theta(th), Record(d)))
    want = reference_daw(th, d["choice"], d["state2"].astype(int), d["choice2"].astype(int), d["reward"], common=0.8)
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)
    with pytest.raises(ValueError, match="common"):
        ts_mod.twostep("bad", ("alpha",), common=1.5)


def test_gradients_finite():
    model = models.get("twostep_hybrid")
    rng = np.random.default_rng(4)
    d = Record(random_data(rng, 100))

    def total(z):
        th = {p.name: p.transform.forward(z[i]) for i, p in enumerate(model.params)}
        return model.loglik(model.theta(th), d).sum()

    for scale in (0.0, 3.0):
        g = np.asarray(jax.grad(total)(jnp.asarray(rng.normal(0, scale, 7))))
        assert np.all(np.isfinite(g)) and np.any(g != 0)


def test_ragged_subjects_and_masking():
    model = models.get("twostep_hybrid")
    rng = np.random.default_rng(5)
    lengths = [20, 45]
    subs = [random_data(rng, n) for n in lengths]
    thetas = [random_theta(model, rng) for _ in lengths]
    T = max(lengths)
    padded = {k: np.stack([np.concatenate([s[k], rng.permutation(np.resize(s[k], T - len(s[k])))]) for s in subs])
              for k in ("choice", "state2", "choice2", "reward")}
    padded["mask"] = np.arange(T)[None] < np.array(lengths)[:, None]
    th_b = Record({k: np.array([t[k] for t in thetas]) for k in thetas[0]})
    batch = np.asarray(jax.vmap(model.loglik)(th_b, Record(padded)))
    for i, (t, s) in enumerate(zip(thetas, subs)):
        one = np.asarray(model.loglik(Record(t), Record(s)))
        np.testing.assert_allclose(batch[i, : lengths[i]], one, rtol=1e-5)


def test_simulator_plays_the_environment_world():
    model = models.get("twostep_hybrid")
    env = TwoStep(200, seed=3)
    table = env.design()
    trials = Record(common=jnp.asarray(table["common"].to_numpy(float)),
                    payoff=jnp.asarray(table[[f"payoff_{k}" for k in range(1, 5)]].to_numpy()))
    th = model.theta({"alpha1": 0.5, "alpha2": 0.5, "lam": 0.6, "beta1": 4.0, "beta2": 4.0, "w": 0.5, "p": 0.3})
    sim = jax.tree.map(np.asarray, model.simulate(jax.random.key(1), th, trials))
    # The same choices played in the stateful environment give the same states and rewards.
    env.reset()
    for t in range(200):
        assert env.step(int(sim["choice"][t])) == sim["state2"][t]
        assert env.step(int(sim["choice2"][t])) == sim["reward"][t]
    # Calibration of simulated stage-1 choices against the likelihood's probabilities.
    keys = jax.random.split(jax.random.key(2), 300)
    sims = jax.vmap(lambda k: model.simulate(k, th, trials))(keys)
    lp1 = jax.vmap(lambda s: model.choice_logprobs(th, Record(s)))(sims)
    p1 = np.exp(np.asarray(lp1)[..., 1])
    z = ((np.asarray(sims["choice"]) == 1) - p1).sum() / math.sqrt((p1 * (1 - p1)).sum())
    assert abs(z) < 4


def test_public_simulate_plays_the_design():
    """``random_design`` gives transitions and payoffs only; ``simulate`` adds the outcomes."""
    import cogfit

    design = cogfit.random_design("twostep_hybrid4", n_subjects=2, n_trials=80, seed=0)
    assert {"common", "payoff_1", "payoff_4"} <= set(design.columns)
    assert not {"state2", "choice2", "reward"} & set(design.columns)
    sim = cogfit.simulate("twostep_hybrid4", design, {"alpha": [0.5, 0.5], "beta": [3.0, 3.0],
                                                      "w": [0.5, 0.5], "p": [0.1, 0.1]}, seed=1)
    common = sim["common"].to_numpy() > 0.5
    assert (sim["state2"].to_numpy() == np.where(common, sim["choice"], 1 - sim["choice"])).all()
    pay = sim[[f"payoff_{k}" for k in range(1, 5)]].to_numpy()
    slot = 2 * sim["state2"].to_numpy() + sim["choice2"].to_numpy()
    assert (sim["reward"].to_numpy() == pay[np.arange(len(sim)), slot]).all()
    cogfit.TrialData.from_table(sim, "twostep_hybrid4")     # the simulated table fits as data
