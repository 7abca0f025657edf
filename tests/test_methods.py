"""Inference methods as objects (cogfit.NUTS/SVI/MAP, cogfit.Hierarchy): each rejects its own bad
options when made, fit() takes no method option of its own, a fit records how it was made, and
SVI/MAP over many data sets in one vmapped call give what one call per data set gives."""

import dataclasses
import inspect
import warnings

import numpy as np
import pytest

import cogfit

MODEL = cogfit.models.get("prospect_ra")


@pytest.fixture(scope="module")
def datasets():
    """8 simulated data sets of one design shape (5 subjects x 30 trials), different truths."""
    out = []
    for i in range(8):
        design = cogfit.random_design(MODEL, n_subjects=5, n_trials=30, seed=i)
        truth = {"rho": 0.8 + 0.02 * i, "lam": 1.2 + 0.1 * i, "tau": 1.0}
        out.append(cogfit.TrialData.from_table(cogfit.simulate(MODEL, design, truth, seed=100 + i), MODEL))
    return out


@pytest.mark.parametrize("make,match", [
    (lambda: cogfit.NUTS(draws=0), "NUTS: draws"),
    (lambda: cogfit.NUTS(tune=-1), "NUTS: tune"),
    (lambda: cogfit.NUTS(chains=2.5), "NUTS: chains"),
    (lambda: cogfit.NUTS(target_accept=1.0), "NUTS: target_accept"),
    (lambda: cogfit.NUTS(dense_mass="yes"), "NUTS: dense_mass"),
    (lambda: cogfit.NUTS(chain_method="threads"), "NUTS: chain_method"),
    (lambda: cogfit.NUTS(init="prior"), "NUTS: init"),
    (lambda: cogfit.NUTS(centered="yes"), "NUTS: centered"),
    (lambda: cogfit.NUTS(centered=np.zeros(3)), "NUTS: centered"),
    (lambda: cogfit.NUTS(jumps="everywhere"), "NUTS: jumps"),
    (lambda: cogfit.NUTS(jumps={}), "NUTS: jumps is empty"),
    (lambda: cogfit.NUTS(blocks="subject"), "NUTS: blocks"),
    (lambda: cogfit.NUTS(pilot=cogfit.SVI(guide="lowrank")), "NUTS: pilot"),
    (lambda: cogfit.SVI(steps=0), "SVI: steps"),
    (lambda: cogfit.SVI(learning_rate=-0.1), "SVI: learning_rate"),
    (lambda: cogfit.SVI(guide="flow"), "SVI: guide"),
    (lambda: cogfit.SVI(draws=0), "SVI: draws"),
    (lambda: cogfit.SVI(centered="auto"), "SVI: centered"),
    (lambda: cogfit.MAP(steps=-5), "MAP: steps"),
    (lambda: cogfit.MAP(laplace="no"), "MAP: laplace"),
    (lambda: cogfit.MAP(learning_rate=0), "MAP: learning_rate"),
    (lambda: cogfit.Hierarchy(pooling="some"), "pooling must be"),
    (lambda: cogfit.Hierarchy(population="cauchy"), "population must be"),
    (lambda: cogfit.Hierarchy(nu=4.0), "nu"),
    (lambda: cogfit.Hierarchy(population="student_t", pooling="none"), "needs pooling='partial'"),
    (lambda: cogfit.Hierarchy(by_condition="tau"), "by_condition must be a sequence"),
])
def test_each_option_is_checked_when_the_method_is_made(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_options_of_one_method_are_not_accepted_by_another():
    with pytest.raises(TypeError):
        cogfit.SVI(chains=4)
    with pytest.raises(TypeError):
        cogfit.MAP(guide="lowrank")
    with pytest.raises(TypeError):
        cogfit.NUTS(laplace=True)


def test_fit_has_few_parameters_and_points_old_keywords_to_their_new_place(datasets):
    params = [p for p in inspect.signature(cogfit.fit).parameters.values() if p.kind != p.VAR_KEYWORD]
    assert len(params) <= 9
    for name, where in (("draws", "NUTS"), ("steps", "SVI"), ("pooling", "Hierarchy"), ("laplace", "MAP")):
        with pytest.raises(TypeError, match=f"'{name}'.*cogfit.{where}"):
            cogfit.fit(MODEL, datasets[0], **{name: 1})
    with pytest.raises(ValueError, match="method must be one of"):
        cogfit.fit(MODEL, datasets[0], method="hmc")
    with pytest.raises(TypeError, match="hierarchy must be"):
        cogfit.fit(MODEL, datasets[0], hierarchy="partial")


def test_methods_are_frozen_and_comparable():
    m = cogfit.NUTS(chains=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.chains = 3
    assert m == cogfit.NUTS(chains=2) and m != cogfit.NUTS(chains=3)
    assert dataclasses.replace(m, draws=10).draws == 10


def test_a_saved_fit_says_how_it_was_made(datasets, tmp_path):
    method = cogfit.NUTS(draws=10, tune=10, chains=1, target_accept=0.85, init="svi",
                         pilot=cogfit.SVI(steps=50, learning_rate=0.02))
    hierarchy = cogfit.Hierarchy(population="student_t", nu=5.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = cogfit.fit(MODEL, datasets[0], method=method, hierarchy=hierarchy, progress=False)
    back = cogfit.load(fit.save(tmp_path / "f.nc"))
    assert back.method == method and back.hierarchy == hierarchy
    svi = cogfit.fit(MODEL, datasets[0], method=cogfit.MAP(steps=20, laplace=False), progress=False,
                     hierarchy=cogfit.Hierarchy(pooling="none"))
    assert svi.method == cogfit.MAP(steps=20, laplace=False) and svi.meta["guide"] == "delta"


@pytest.mark.parametrize("method", [cogfit.SVI(steps=400, draws=40, learning_rate=0.02),
                                    cogfit.MAP(steps=300, draws=40, learning_rate=0.02)])
def test_one_batched_call_gives_what_separate_calls_give(datasets, method):
    """8 data sets, one vmapped SVI (or MAP + Laplace) program, against 8 calls of cogfit.fit with the
    same seeds: equal to float32 rounding of the batched arithmetic (atol 2e-3 on the unconstrained
    scale after 400 Adam steps; measured differences are ~1e-6)."""
    laplace = isinstance(method, cogfit.MAP)
    hierarchy = cogfit.Hierarchy(pooling="none") if laplace else None
    datasets = datasets[:3] if laplace else datasets       # MAP: the Laplace draws per data set; 3 suffice
    batch = cogfit.fit_batch(MODEL, datasets, method=method, hierarchy=hierarchy, seed=11, progress=False)
    assert len(batch) == len(datasets) and batch.losses.shape == (len(datasets), method.steps)
    assert batch.samples["lam"].shape == (len(datasets), 1, 40, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, data in enumerate(datasets):
            one = cogfit.fit(MODEL, data, method=method, hierarchy=hierarchy, seed=11 + i, progress=False)
            got = batch.fit(i)
            for name in ("lam", "rho", "tau"):
                np.testing.assert_allclose(np.log(got.posterior[name].values), np.log(one.posterior[name].values),
                                           atol=2e-3, rtol=0)
            np.testing.assert_allclose(batch.losses[i, -1], one.meta["final_loss"], rtol=1e-4)
    assert batch.fit(2).method == method and batch.fit(2).meta["seed"] == 13


def test_batched_nuts_chains_are_the_chains_of_separate_fits(datasets):
    """NUTS for 3 data sets x 2 chains vectorised in one program, against cogfit.fit per data set
    with chain_method='vectorized' and the same seeds: the same start, kernel and keys, so the same
    draws to float32 rounding (~1e-5 after 20 iterations; trajectories amplify it in long runs);
    the sampler statistics come with them."""
    method = cogfit.NUTS(draws=10, tune=10, chains=2, chain_method="vectorized", centered=False)
    batch = cogfit.fit_batch(MODEL, datasets[:3], method=method, seed=11, progress=False)
    assert batch.samples["lam"].shape == (3, 2, 10, 5) and batch.stats["diverging"].shape == (3, 2, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(3):
            one = cogfit.fit(MODEL, datasets[i], method=method, seed=11 + i, progress=False)
            got = batch.fit(i)
            np.testing.assert_allclose(np.log(got.posterior["lam"].values), np.log(one.posterior["lam"].values),
                                       atol=1e-3, rtol=0)
            steps = [f.tree["sample_stats"]["n_steps"].values for f in (got, one)]
            np.testing.assert_array_equal(*steps)
    assert batch.fit(1).method == method


def test_batched_data_sets_may_differ_in_trial_counts(datasets):
    """Ragged data sets are padded to one length; the padded trials do not count."""
    short = cogfit.TrialData.from_table(datasets[1].to_table().query("trial < 20"), MODEL)
    batch = cogfit.fit_batch(MODEL, [datasets[0], short], method=cogfit.SVI(steps=300, draws=30), progress=False)
    alone = cogfit.fit(MODEL, short, method=cogfit.SVI(steps=300, draws=30), seed=1, progress=False)
    np.testing.assert_allclose(batch.losses[1, -1], alone.meta["final_loss"], rtol=1e-3)


def test_fit_batch_refuses_what_it_cannot_batch(datasets):
    with pytest.raises(ValueError, match="SVI, MAP or NUTS"):
        cogfit.fit_batch(MODEL, datasets[:2], method=cogfit.SVI)
    with pytest.raises(ValueError, match="init='median'"):
        cogfit.fit_batch(MODEL, datasets[:2], method=cogfit.NUTS(init="svi"))
    fewer = cogfit.TrialData.from_table(datasets[1].to_table().query("subject < 3"), MODEL)
    with pytest.raises(ValueError, match="one shape"):
        cogfit.fit_batch(MODEL, [datasets[0], fewer])
    with pytest.raises(ValueError, match="2 seeds for 3 data sets"):
        cogfit.fit_batch(MODEL, datasets[:3], seed=[1, 2])


def test_a_second_batch_of_the_same_shape_reuses_the_compiled_program(datasets):
    """The chunks of a recovery study: the second fit_batch call of one shape compiles nothing and
    gives what a freshly compiled program gives."""
    import jax

    from cogfit.inference import batch as batch_module

    method = cogfit.SVI(steps=250, draws=20, learning_rate=0.02)
    cogfit.fit_batch(MODEL, datasets[:4], method=method, seed=0, progress=False)
    compiles = []

    def listen(event, duration, **_):
        if event.endswith("backend_compile_duration"):
            compiles.append(event)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        again = cogfit.fit_batch(MODEL, datasets[4:], method=method, seed=4, progress=False)
        n_reused = len(compiles)
        batch_module._PROGRAMS.clear()
        fresh = cogfit.fit_batch(MODEL, datasets[4:], method=method, seed=4, progress=False)
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    assert n_reused == 0 and len(compiles) > 0
    np.testing.assert_allclose(again.losses, fresh.losses, rtol=1e-6)
    np.testing.assert_allclose(again.samples["lam"], fresh.samples["lam"], rtol=1e-6)
