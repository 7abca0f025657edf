"""Mode-jump moves (cogfit._jump): they keep the posterior, let chains cross between separated
modes that NUTS alone does not cross, and move exactly the subject values asked for."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.infer.util import initialize_model

import cogfit
from cogfit._hierarchy import build, model_args
from cogfit.inference import chains as _nuts
from cogfit.inference.jump import subject_jumps

WEIGHT = 0.3          # mass of the right-hand mode


def _two_modes():
    """0.7 N(-4, 0.5) + 0.3 N(4, 0.5): the modes are 16 sd apart, NUTS alone never crosses."""
    mix = dist.Categorical(probs=jnp.array([1 - WEIGHT, WEIGHT]))
    numpyro.sample("x", dist.MixtureSameFamily(mix, dist.Normal(jnp.array([-4.0, 4.0]), 0.5)))


def _right_fraction(jumps):
    warm = []

    def after_warmup(z):
        warm.append(z)
        return jumps

    samples, _ = _nuts.sample(_two_modes, (), key=jax.random.key(3), chains=4, tune=300, draws=1000,
                              target_accept=0.8, dense_mass=False, chain_method="vectorized", progress=False,
                              jumps=after_warmup)
    assert [z["x"].shape for z in warm] == [(4, 25)]           # the last warm-up block of every chain
    return (samples["x"] > 0).mean(axis=1)                                      # per chain


def test_jumps_recover_the_weights_of_separated_modes():
    per_chain = _right_fraction(lambda z: {"x": jnp.array([8.0])})
    assert np.all((per_chain > 0.15) & (per_chain < 0.45)), per_chain        # every chain visits both
    assert abs(per_chain.mean() - WEIGHT) < 0.05, per_chain
    stuck = _right_fraction(None)                                               # the same without jumps
    assert set(np.round(stuck, 6)) <= {0.0, 1.0}, stuck


@pytest.fixture(scope="module")
def bandit():
    model = cogfit.models.get("bandit_dual_rep")
    design = cogfit.random_design(model, n_subjects=4, n_trials=30, seed=0)
    table = cogfit.simulate(model, design, {"alpha_pos": 0.4, "alpha_neg": 0.3, "beta": 3.0, "beta_c": 0.2},
                            seed=1)
    table["population"] = np.where(table["subject"].isin(table["subject"].unique()[:2]), "a", "b")
    return model, cogfit.TrialData.from_table(table, model, populations=["a", "b"])


@pytest.mark.parametrize("pooling", ["partial", "none"])
def test_subject_jumps_move_exactly_the_named_values(bandit, pooling):
    model, data = bandit
    S, P = data.n_subjects, len(model.params)
    centred = np.zeros((S, P), bool)
    centred[[0, 2], 0] = True                        # alpha_pos mixed, alpha_neg and beta_c non-centred
    centred[:, 2] = True                             # beta centred for all
    nm = build(model, data, pooling=pooling, centered=centred)
    args = model_args(data)
    info = initialize_model(jax.random.key(0), nm, model_args=args)
    rng = np.random.default_rng(0)
    z = {k: jnp.asarray(rng.normal(size=np.shape(v))) for k, v in info.param_info.z.items()}
    subjects = data.subjects
    d = {subjects[1]: {"alpha_pos": 1.5, "beta": -0.7}, subjects[3]: {"alpha_neg": 2.0, "beta_c": 0.5}}
    moves = subject_jumps(model, data, centred, pooling, d)(z)
    assert set(moves) == set(z) and all(m.shape == (2, *np.shape(z[k])) for k, m in moves.items())

    def unconstrained(zz):
        values = info.postprocess_fn(zz)
        return {p.name: np.asarray(p.transform.inverse(values[p.name])) for p in model.params}

    before = unconstrained(z)
    for j, (subject, dj) in enumerate(d.items()):
        after = unconstrained({k: z[k] + moves[k][j] for k in z})
        for p in model.param_names:
            expect = np.zeros(S)
            expect[subjects.index(subject)] = dj.get(p, 0.0)
            np.testing.assert_allclose(after[p] - before[p], expect, atol=2e-5, err_msg=f"{subject} {p}")
        for k in z:                                                   # population sites never move
            if k.endswith(("_mu", "_sigma")):
                assert not np.any(np.asarray(moves[k][j]))


def test_fit_with_jumps_records_them_and_checks_input(bandit, tmp_path):
    """centered=False: the centring pilot is not what this checks."""
    model, data = bandit
    s = data.subjects[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = cogfit.fit(model, data, method=cogfit.NUTS(draws=20, tune=20, chains=1, jumps={s: {"alpha_pos": 2.0}},
                                                         centered=False), progress=False)
    assert fit.meta["jumps"] == {str(s): {"alpha_pos": 2.0}}
    fit.save(tmp_path / "f.nc")
    back = cogfit.load(tmp_path / "f.nc").meta["jumps"]
    assert back == {str(s): {"alpha_pos": 2.0}}
    assert subject_jumps(model, data, np.zeros((data.n_subjects, 4), bool), "partial", back)   # str ids work
    with pytest.raises(KeyError, match="not in the data"):
        cogfit.fit(model, data, method=cogfit.NUTS(draws=5, tune=5, chains=1, jumps={"nobody": {"beta": 1.0}},
                                                   centered=False), progress=False)
    with pytest.raises(KeyError, match="no parameters \\['rho'\\]"):
        cogfit.fit(model, data, method=cogfit.NUTS(draws=5, tune=5, chains=1, jumps={s: {"rho": 1.0}}, centered=False),
                   progress=False)
    with pytest.raises(TypeError, match="jumps"):
        cogfit.SVI(steps=10, jumps={s: {"beta": 1.0}})


def test_widen_mass_raises_only_moved_coordinates_within_the_step_bound():
    """Moved coordinates get inverse mass d**2, clipped to [adapted, adapted / (4 eps)**2];
    the rest keep theirs; the square roots NumPyro draws momenta with follow."""
    from numpyro.infer.hmc import hmc

    def model():
        numpyro.sample("a", dist.Normal(0.0, 1.0).expand([3]).to_event())
        numpyro.sample("b", dist.Normal(0.0, 1.0))

    init_params, potential_fn_gen, _, _ = initialize_model(jax.random.key(0), model, dynamic_args=True)
    init_kernel, _ = hmc(potential_fn_gen=potential_fn_gen, algo="NUTS")
    state = init_kernel(init_params, num_warmup=0, model_args=())
    sites = ("a", "b")
    inv = jnp.array([0.01, 0.01, 0.01, 0.04])                  # ravel order: a[0], a[1], a[2], b
    eps = 0.05                                                  # bound: inv / (4 eps)**2 = 25 inv
    state = state._replace(adapt_state=state.adapt_state._replace(
        step_size=jnp.asarray(eps), inverse_mass_matrix={sites: inv}))

    def moves(z):                  # two moves: a[0] by 0.3 and a[2] by 2 (the first), b by 0.1 (the second)
        return {"a": jnp.array([[0.3, 0.0, 2.0], [0.0, 0.0, 0.0]]), "b": jnp.array([0.0, 0.1])}

    wide = _nuts.widen_mass(state, moves, sites).adapt_state
    expect = np.array([0.09, 0.01, 0.25, 0.04])                 # 0.3**2; unmoved; capped at 25 * 0.01; 0.1**2 < 0.04
    np.testing.assert_allclose(wide.inverse_mass_matrix[sites], expect, rtol=1e-6)
    np.testing.assert_allclose(wide.mass_matrix_sqrt_inv[sites], np.sqrt(expect), rtol=1e-6)
    np.testing.assert_allclose(wide.mass_matrix_sqrt[sites], 1 / np.sqrt(expect), rtol=1e-6)


def test_restart_step_size_readapts_the_step_size_alone():
    """After warm-up, a mass made 400x too wide in one coordinate leaves the step size far too
    large (acceptance near 0); set back into the final window, the kernel adapts the step size
    alone (mass kept) and acceptance returns to the target or above (NUTS's mean acceptance over
    a trajectory tends to exceed the dual-averaging target)."""
    from numpyro.infer.hmc import hmc

    def model():
        numpyro.sample("a", dist.Normal(0.0, 1.0).expand([4]).to_event())

    init_params, potential_fn_gen, _, _ = initialize_model(jax.random.key(0), model, dynamic_args=True)
    init_kernel, sample_kernel = hmc(potential_fn_gen=potential_fn_gen, algo="NUTS")
    warmup, target = 300, 0.8
    state = init_kernel(init_params, num_warmup=warmup, target_accept_prob=target, dense_mass=[], model_args=(),
                        rng_key=jax.random.key(1))                  # diagonal mass as cogfit._nuts builds it

    def run(state, n):
        def body(s, _):
            s = sample_kernel(s, model_args=())
            return s, s.accept_prob
        return jax.lax.scan(body, state, None, length=n)

    state, _ = run(state, warmup)
    sites = ("a",)
    inv = state.adapt_state.inverse_mass_matrix[sites].at[0].multiply(400.0)
    wide = state._replace(adapt_state=state.adapt_state._replace(
        inverse_mass_matrix={sites: inv}, mass_matrix_sqrt={sites: jax.lax.rsqrt(inv)},
        mass_matrix_sqrt_inv={sites: jnp.sqrt(inv)}))
    _, stale = run(wide, 200)
    back = _nuts.restart_step_size(wide, 60)
    assert int(back.i) == warmup - 60 and int(back.adapt_state.window_idx) == int(wide.adapt_state.window_idx) - 1
    tuned, _ = run(back, 60)
    assert int(tuned.i) == warmup
    np.testing.assert_array_equal(tuned.adapt_state.inverse_mass_matrix[sites], inv)     # the mass is kept
    assert float(tuned.adapt_state.step_size) < 0.3 * float(state.adapt_state.step_size)
    _, fresh = run(tuned, 200)
    assert float(stale.mean()) < 0.1 and float(fresh.mean()) > target - 0.1


def test_bad_jumps_are_refused_before_the_centring_pilot(bandit, monkeypatch):
    import cogfit.inference.nuts as nuts

    def no_pilot(*args, **kwargs):
        raise AssertionError("the pilot ran before the jumps were checked")

    monkeypatch.setattr(nuts, "pilot", no_pilot)
    model, data = bandit
    with pytest.raises(KeyError, match="not in the data"):
        cogfit.fit(model, data, method=cogfit.NUTS(draws=5, tune=5, chains=1, jumps={"nobody": {"beta": 1.0}}),
                   progress=False)
