"""Task environments: seeding, step/reset protocol, schedules, and the exported design."""

import jax
import numpy as np
import pytest

from cogfit.tasks import PAYOFF_ORDER, TwoStep, drifting_bandit, fixed_bandit, reversal_bandit
from cogfit.tasks import _schedules as sched


def test_reflect_folds_into_the_interval():
    x = np.array([0.3, 0.8, 0.2, 1.3, -0.4, 0.75])
    got = np.asarray(sched.reflect(x, 0.25, 0.75))
    np.testing.assert_allclose(got, [0.3, 0.7, 0.3, 0.3, 0.6, 0.75], atol=1e-6)


def test_random_walk_is_bounded_with_the_requested_step_size():
    path = np.asarray(sched.random_walk(jax.random.key(0), [0.5, 0.3], 20000, sd=0.025, low=0.25, high=0.75))
    assert path.shape == (20000, 2)
    np.testing.assert_allclose(path[0], [0.5, 0.3])
    assert path.min() >= 0.25 and path.max() <= 0.75
    steps = np.diff(path, axis=0)
    assert 0.024 < steps.std() < 0.026  # reflections are rare at this step size
    assert path[:, 0].max() - path[:, 0].min() > 0.2  # it really wanders


def test_same_seed_same_world_other_seed_other_world():
    a, b, c = (drifting_bandit(3, 100, seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a.payoffs, b.payoffs)
    assert not np.array_equal(a.payoffs, c.payoffs)
    t1, t2 = TwoStep(50, seed=4), TwoStep(50, seed=4)
    np.testing.assert_array_equal(t1.design().to_numpy(), t2.design().to_numpy())


def test_bandit_step_reset_and_errors():
    env = fixed_bandit([0.2, 0.9], 5, seed=0)
    got = [env.step(t % 2) for t in range(5)]
    assert got == [env.payoffs[t, t % 2] for t in range(5)]
    assert env.done
    with pytest.raises(RuntimeError, match="no trials left"):
        env.step(0)
    env.reset()
    assert env.trial == 0 and env.step(0) == env.payoffs[0, 0]
    for bad in (2, -1, 0.5, "L"):
        with pytest.raises(ValueError, match="arm code"):
            env.step(bad)


def test_fixed_bandit_payoff_rates_and_gaussian_noise():
    env = fixed_bandit([0.2, 0.9], 20000, seed=1)
    rates = env.payoffs.mean(0)
    assert abs(rates[0] - 0.2) < 4 * np.sqrt(0.2 * 0.8 / 20000)
    assert abs(rates[1] - 0.9) < 4 * np.sqrt(0.9 * 0.1 / 20000)
    assert set(np.unique(env.payoffs)) == {0.0, 1.0}
    gauss = fixed_bandit([1.0, -1.0], 20000, seed=1, noise_sd=2.0)
    np.testing.assert_allclose(gauss.payoffs.mean(0), [1.0, -1.0], atol=0.1)
    np.testing.assert_allclose(gauss.payoffs.std(0), [2.0, 2.0], rtol=0.05)


def test_reversal_bandit_swaps_on_schedule():
    env = reversal_bandit([0.8, 0.2], 100, every=30, seed=0)
    p = env.probabilities
    np.testing.assert_allclose(p[0], [0.8, 0.2], rtol=1e-6)
    np.testing.assert_allclose(p[29], [0.8, 0.2], rtol=1e-6)
    np.testing.assert_allclose(p[30], [0.2, 0.8], rtol=1e-6)
    np.testing.assert_allclose(p[60], [0.8, 0.2], rtol=1e-6)


def test_bandit_design_table():
    env = drifting_bandit(4, 30, seed=3)
    table = env.design()
    assert list(table.columns) == ["trial", "payoff_1", "payoff_2", "payoff_3", "payoff_4"]
    np.testing.assert_array_equal(table["trial"], np.arange(30))
    np.testing.assert_array_equal(table[["payoff_1", "payoff_2", "payoff_3", "payoff_4"]].to_numpy(), env.payoffs)


def test_twostep_protocol_and_transitions():
    env = TwoStep(4000, seed=5)
    assert abs(env.common.mean() - 0.7) < 4 * np.sqrt(0.21 / 4000)
    rng = np.random.default_rng(0)
    for t in range(4000):
        assert env.stage == 1
        a1 = int(rng.integers(0, 2))
        s = env.step(a1)
        assert s == (a1 if env.common[t] else 1 - a1)
        assert env.stage == 2
        a2 = int(rng.integers(0, 2))
        assert env.step(a2) == env.payoffs[t, s, a2]
    assert env.done
    with pytest.raises(RuntimeError):
        env.step(0)
    env.reset()
    with pytest.raises(ValueError, match="0 or 1"):
        env.step(2)
    assert env.probabilities.min() >= 0.25 and env.probabilities.max() <= 0.75


def test_twostep_design_order_and_common_probability_option():
    env = TwoStep(10, seed=6, common=0.8)
    table = env.design()
    assert list(table.columns) == ["trial", "common", *[f"payoff_{k}" for k in range(1, 5)]]
    assert len(PAYOFF_ORDER) == 4
    flat = table[[f"payoff_{k}" for k in range(1, 5)]].to_numpy()
    for s in (0, 1):
        for a in (0, 1):
            np.testing.assert_array_equal(flat[:, 2 * s + a], env.payoffs[:, s, a])
    with pytest.raises(ValueError, match="common"):
        TwoStep(10, seed=0, common=1.5)
