"""Length buckets and per-subject centring: same log density as the plain layout."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from numpyro.infer.util import log_density

import cogfit
from cogfit._hierarchy import build, model_args
from cogfit._layout import _min_cost, buckets, padded_slots


def _brute_force(lengths, counts, k):
    U, best = len(lengths), np.inf
    for r in range(min(k, U)):
        for cut in itertools.combinations(range(U - 1), r):
            lo, cost = 0, 0
            for end in [*cut, U - 1]:
                cost += counts[lo:end + 1].sum() * lengths[end]
                lo = end + 1
            best = min(best, cost)
    return best


def test_bucket_boundaries_are_optimal():
    rng = np.random.default_rng(0)
    for _ in range(100):
        n = rng.integers(1, 60, size=rng.integers(1, 20))
        lengths, counts = np.unique(n, return_counts=True)
        for k in range(1, 5):
            cost, ends = _min_cost(lengths, counts, k)
            assert cost == _brute_force(lengths, counts, k)
            assert len(ends) <= k
        groups = buckets(n)
        assert sorted(np.concatenate(groups).tolist()) == list(range(len(n)))


def test_spektor_like_lengths_need_no_padding():
    n = np.repeat([98, 352, 720], [185, 40, 57])
    groups = buckets(np.random.default_rng(1).permutation(n))
    assert len(groups) == 3
    assert padded_slots(n, buckets(n)) == n.sum()        # vs 282 * 720 = 203,040 slots unbucketed
    assert len(buckets(n, max_buckets=1)) == 1


def _ragged(model, lengths, seed=0):
    """A table of random lotteries and choices, ``lengths[s]`` trials for subject ``s``."""
    rng = np.random.default_rng(seed)
    frames = []
    for s, n in enumerate(lengths):
        design = model.design(jax.random.PRNGKey(seed + s), n)
        cols = {"subject": f"s{s}", "trial": np.arange(n), "choice": rng.integers(0, 2, n)}
        for k, v in design.items():
            for j in range(v.shape[1]):
                cols[f"{k}_{j + 1}"] = np.asarray(v[:, j])
        frames.append(pd.DataFrame(cols))
    return cogfit.TrialData.from_table(pd.concat(frames, ignore_index=True), model)


def test_buckets_and_mixed_centring_keep_the_log_density():
    model = cogfit.models.get("cpt_linear")
    data = _ragged(model, [5, 40, 7, 40, 120, 6])
    S = data.n_subjects
    rng = np.random.default_rng(3)
    mu = {p.name: jnp.asarray(rng.normal(0, 0.5, 1)) for p in model.params}
    sigma = {p.name: jnp.asarray(rng.uniform(0.3, 1.0, 1)) for p in model.params}
    u = {p.name: jnp.asarray(rng.normal(0, 1, S)) for p in model.params}

    def centred_values():
        out = {}
        for p in model.params:
            out |= {f"{p.name}_mu": mu[p.name], f"{p.name}_sigma": sigma[p.name], f"{p.name}_u": u[p.name]}
        return out

    fn = build(model, data, centered=True)
    one = float(log_density(fn, model_args(data, max_buckets=1), {}, centred_values())[0])
    many = float(log_density(fn, model_args(data), {}, centred_values())[0])
    assert len(model_args(data)[0]) > 1
    assert many == pytest.approx(one, rel=1e-5)

    cen = data.n_trials >= 40
    ic, inc = np.flatnonzero(cen), np.flatnonzero(~cen)
    mixed = {}
    for p in model.params:
        z = (u[p.name][inc] - mu[p.name]) / sigma[p.name]
        mixed |= {f"{p.name}_mu": mu[p.name], f"{p.name}_sigma": sigma[p.name],
                  f"{p.name}_uc": u[p.name][ic], f"{p.name}_znc": z}
    got = float(log_density(build(model, data, centered=cen), model_args(data), {}, mixed)[0])
    # density of z = density of u times sigma for every non-centred subject
    jac = sum(float(jnp.log(sigma[p.name][0])) * len(inc) for p in model.params)
    assert got == pytest.approx(one + jac, rel=1e-5)


def test_centring_per_subject_and_parameter_keeps_the_log_density():
    """An (S, P) mask: each parameter has its own centred and non-centred subjects."""
    model = cogfit.models.get("cpt_linear")
    data = _ragged(model, [5, 40, 7, 40, 120, 6])
    S, P = data.n_subjects, len(model.params)
    rng = np.random.default_rng(4)
    mask = rng.random((S, P)) < 0.5
    mask[:, 0], mask[:, 1] = True, False                       # one all-centred, one all-non-centred
    mu = {p.name: jnp.asarray(rng.normal(0, 0.5, 1)) for p in model.params}
    sigma = {p.name: jnp.asarray(rng.uniform(0.3, 1.0, 1)) for p in model.params}
    u = {p.name: jnp.asarray(rng.normal(0, 1, S)) for p in model.params}
    plain, mixed, jac = {}, {}, 0.0
    for j, p in enumerate(model.params):
        n = p.name
        plain |= {f"{n}_mu": mu[n], f"{n}_sigma": sigma[n], f"{n}_u": u[n]}
        ic, inc = np.flatnonzero(mask[:, j]), np.flatnonzero(~mask[:, j])
        z = (u[n][inc] - mu[n]) / sigma[n]
        mixed |= {f"{n}_mu": mu[n], f"{n}_sigma": sigma[n]}
        if len(inc) == 0:
            mixed[f"{n}_u"] = u[n]
        elif len(ic) == 0:
            mixed[f"{n}_z"] = z
        else:
            mixed |= {f"{n}_uc": u[n][ic], f"{n}_znc": z}
        jac += float(jnp.log(sigma[n][0])) * len(inc)
    args = model_args(data)
    one = float(log_density(build(model, data, centered=True), args, {}, plain)[0])
    got_fn = build(model, data, centered=mask)
    got, trace = log_density(got_fn, args, {}, mixed)
    assert float(got) == pytest.approx(one + jac, rel=1e-5)
    for p in model.params:                                     # subject order kept in the values
        np.testing.assert_allclose(trace[p.name]["value"], p.transform.forward(u[p.name]), rtol=1e-5)


def test_centring_mask_shapes_are_checked():
    model = cogfit.models.get("cpt_linear")
    data = _ragged(model, [5, 40, 7])
    with pytest.raises(ValueError, match="3 subjects"):
        build(model, data, centered=np.ones(4, bool))
    with pytest.raises(ValueError, match=r"\(3, 3\)"):
        build(model, data, centered=np.ones((3, 2), bool))


def test_centring_from_guide_compares_the_subject_sd_with_its_population_sd():
    """Each site layout (all centred, none, mixed; one parameter per condition) read correctly."""
    from types import SimpleNamespace

    from cogfit._hierarchy import CENTRE_BELOW, centring_from_guide

    model = cogfit.models.get("cpt_linear")                      # alpha, lam, tau
    data = SimpleNamespace(population=np.array([0, 1, 1, 0]))
    sigma = np.array([1.0, 4.0])                                  # per population
    log_sigma = np.log(sigma)
    mask = np.array([[True, False, True], [True, False, False], [True, False, True], [True, False, False]])
    loc = {"alpha_sigma": log_sigma, "lam_sigma": log_sigma, "tau_sigma": np.stack([log_sigma] * 2, -1)}
    scale = {
        "alpha_u": np.array([0.5, 0.5, 3.5, 0.9]),               # u's sd: ratios 0.5, 0.125, 0.875, 0.9
        "lam_z": np.array([0.5, 0.9, 0.1, 0.8]),                 # z's sd is the ratio itself
        "tau_uc": np.array([[0.1, 0.2], [0.1, 3.0]]),           # subjects 0, 2 (sigma 1, 4): 0.2, 0.75
        "tau_znc": np.array([[0.1, 0.1], [0.9, 0.1]]),          # subjects 1, 3: 0.1, 0.9
    }
    got = centring_from_guide(model, data, mask, loc, scale)
    want = np.array([[False, False, True], [True, False, True], [False, True, False], [False, False, False]])
    assert CENTRE_BELOW == pytest.approx(0.35)                  # ratios below it are centred
    np.testing.assert_array_equal(got, want)
