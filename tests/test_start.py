"""Where NUTS chains start (cogfit.inference.start): sites and supports from an abstract trace,
prior-median starts drawn inside the jitted init, and NumPyro's search when a support depends on
another value (the fallback of cogfit.inference.chains.sample)."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.infer import init_to_median
from numpyro.infer.util import initialize_model

from cogfit.inference import chains, start


def fixed_support(y):
    mu = numpyro.sample("mu", dist.Normal(0.0, 2.0))
    sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    p = numpyro.sample("p", dist.Beta(2.0, 2.0))
    numpyro.sample("y", dist.Normal(mu + p, sigma), obs=y)


def moving_support(y):
    top = numpyro.sample("top", dist.LogNormal(0.0, 0.5))
    x = numpyro.sample("x", dist.Uniform(0.0, top))                 # support (0, top): traced
    numpyro.sample("y", dist.Normal(x, 1.0), obs=y)


Y = (jnp.array([0.3, -0.2, 1.1, 0.8]),)


def test_sites_and_transforms_from_an_abstract_trace():
    found = start.sites(fixed_support, Y)
    assert sorted(found) == ["mu", "p", "sigma"]
    assert float(found["sigma"](jnp.array(-50.0))) > 0 and 0 < float(found["p"](jnp.array(3.0))) < 1
    assert start.sites(moving_support, Y) is None                  # replayed by initialize_model instead


def test_median_start_has_the_potential_initialize_model_gives_it():
    transforms = start.sites(fixed_support, Y)
    z = jax.jit(lambda k: start.median_start(fixed_support, transforms, k, Y))(jax.random.PRNGKey(3))
    potential_gen, _ = start.potential_fns(fixed_support, transforms)
    ref, ref_gen, _, _ = initialize_model(jax.random.PRNGKey(3), fixed_support, init_strategy=init_to_median,
                                          dynamic_args=True, model_args=Y)
    got = float(potential_gen(*Y)(z))
    assert np.isfinite(got)
    np.testing.assert_allclose(got, float(ref_gen(*Y)(z)), rtol=1e-6)   # the same potential function
    assert abs(float(z["mu"])) < 1.0 and abs(float(z["p"])) < 0.7   # near the prior medians (0, logit 0.5)


def test_both_paths_sample_the_posterior():
    for model in (fixed_support, moving_support):
        samples, raw = chains.sample(model, Y, key=jax.random.PRNGKey(0), chains=2, tune=200, draws=200,
                                     target_accept=0.8, dense_mass=False, chain_method="vectorized", progress=False)
        assert all(np.isfinite(v).all() for v in samples.values())
        assert raw["diverging"].mean() < 0.05
    x, top = samples["x"], samples["top"]
    assert ((0 < x) & (x < top)).all()
