"""Alignment (cogfit.alignment): each estimator against closed forms and scipy quadrature, the
split-half ceiling on populations of known shifts, degenerate populations, the report."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import scipy.integrate as si
import scipy.optimize as so
import scipy.stats as st
from scipy.spatial.distance import cdist

import cogfit
from cogfit import Interval, Positive, Real
from cogfit.alignment import divergences as dv
from cogfit.alignment.ceiling import location_scale
from cogfit.alignment.members import energy_distance
from cogfit.alignment.synthetic import synthetic_fit

CASES = [  # ma, sa, mb, sb, nu, transform
    (0.0, 1.0, 0.5, 0.7, None, Real()),
    (0.2, 0.5, -0.3, 1.3, None, Positive()),
    (0.0, 1.0, 1.0, 0.05, None, Interval(0.0, 1.0)),
    (0.0, 1.0, 0.5, 0.7, 5.0, Real()),
    (0.1, 0.4, 0.6, 0.3, 4.0, Positive()),
    (-0.5, 0.8, 1.0, 0.2, 3.0, Interval(0.0, 2.0)),
]


def _dist(m, s, nu):
    return st.norm(m, s) if nu is None else st.t(nu, m, s)


def _crossings(A, B, lo, hi):
    xs = np.linspace(lo, hi, 200_001)
    d = A.logpdf(xs) - B.logpdf(xs)
    idx = np.flatnonzero(np.sign(d[1:]) != np.sign(d[:-1]))
    return [so.brentq(lambda x: A.logpdf(x) - B.logpdf(x), xs[i], xs[i + 1]) for i in idx]


def reference(ma, sa, mb, sb, nu, tr):
    """Every measure by scipy quadrature (float64), on the natural scale where it is defined there."""
    A, B = _dist(ma, sa, nu), _dist(mb, sb, nu)
    lo, hi = min(A.ppf(1e-13), B.ppf(1e-13)), max(A.isf(1e-13), B.isf(1e-13))
    cuts = [lo] + _crossings(A, B, lo, hi) + [hi]

    def quad(g):
        return sum(si.quad(g, a, b, limit=400, epsabs=1e-13)[0] for a, b in zip(cuts[:-1], cuts[1:]))

    def kl(P, Q):
        return quad(lambda x: P.pdf(x) * (P.logpdf(x) - Q.logpdf(x)))

    def js(x):
        la, lb = A.logpdf(x), B.logpdf(x)
        lm = np.logaddexp(la, lb) - np.log(2)
        return 0.5 * np.exp(la) * (la - lm) + 0.5 * np.exp(lb) * (lb - lm)

    # Wasserstein: quantile coupling X_a = ma + sa t, X_b = mb + sb t, t ~ p0 (untrimmed normal;
    # Student-t over quantile levels [W_TRIM, 1 - W_TRIM]), split where the two cross
    T = _dist(0.0, 1.0, nu)
    edge = 30.0 if nu is None else T.isf(dv.W_TRIM)
    cross = [(mb - ma) / (sa - sb)] if sa != sb and abs((mb - ma) / (sa - sb)) < edge else []
    pts = [-edge] + cross + [edge]

    def gap(t):
        return float(tr.forward(np.float64(ma + sa * t))) - float(tr.forward(np.float64(mb + sb * t)))

    def tquad(g):
        return sum(si.quad(lambda t: T.pdf(t) * g(t), a, b, limit=400, epsabs=1e-13)[0]
                   for a, b in zip(pts[:-1], pts[1:]))

    w1 = tquad(lambda t: abs(gap(t)))
    w2 = np.sqrt(tquad(lambda t: gap(t) ** 2))
    return dict(kl_ab=kl(A, B), kl_ba=kl(B, A), js=quad(js) / np.log(2),
                overlap=quad(lambda x: min(A.pdf(x), B.pdf(x))), w1=w1, w2=w2)


def ours(ma, sa, mb, sb, nu, tr):
    a = [jnp.asarray(v) for v in (ma, sa, mb, sb)]
    nu = None if nu is None else jnp.asarray(nu)
    return dict(kl_ab=dv.kl(*a, nu), kl_ba=dv.kl(a[2], a[3], a[0], a[1], nu), js=dv.js(*a, nu),
                overlap=dv.overlap(*a, nu), w1=dv.wasserstein(*a, nu, transform=tr),
                w2=dv.wasserstein(*a, nu, transform=tr, order=2))


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[4] or 'normal'}-{type(c[5]).__name__}-{c[3]}"
                         if isinstance(c, tuple) else None)
def test_estimators_match_scipy_quadrature(case):
    with jax.enable_x64(True):
        got = {k: float(v) for k, v in ours(*case).items()}
    want = reference(*case)
    for k in want:
        tol = 3e-4 if k in ("js", "kl_ab", "kl_ba") and (case[4] is not None or k == "js") else 1e-6
        assert got[k] == pytest.approx(want[k], rel=tol, abs=1e-9), k


def test_closed_forms_for_two_normals():
    """KL, W1 (folded normal), W2 and the overlap of two normals (real parameter) in closed form."""
    rng = np.random.default_rng(1)
    with jax.enable_x64(True):
        for ma, mb, sa, sb in zip(rng.normal(size=5), rng.normal(size=5), rng.uniform(0.2, 2, 5),
                                  rng.uniform(0.2, 2, 5)):
            dm, ds = mb - ma, sb - sa
            kl = np.log(sb / sa) + (sa ** 2 + dm ** 2) / (2 * sb ** 2) - 0.5
            w1 = (abs(ds) * np.sqrt(2 / np.pi) * np.exp(-dm ** 2 / (2 * ds ** 2))      # E|dm + ds Z|
                  + dm * (1 - 2 * st.norm.cdf(-dm / abs(ds))))
            w2 = np.hypot(dm, ds)
            # overlap: the two crossings of the densities solve a quadratic
            A, B = 1 / sb ** 2 - 1 / sa ** 2, 2 * (ma / sa ** 2 - mb / sb ** 2)
            C = mb ** 2 / sb ** 2 - ma ** 2 / sa ** 2 + 2 * np.log(sb / sa)
            r = np.sort(np.roots([A, B, C]).real)
            edges = np.r_[-np.inf, r, np.inf]
            Pa, Pb = np.diff(st.norm.cdf(edges, ma, sa)), np.diff(st.norm.cdf(edges, mb, sb))
            ovl = np.minimum(Pa, Pb).sum()
            a = [jnp.asarray(v) for v in (ma, sa, mb, sb)]
            assert float(dv.kl(*a)) == pytest.approx(kl, rel=1e-10)
            assert float(dv.wasserstein(*a)) == pytest.approx(w1, rel=1e-7)
            assert float(dv.wasserstein(*a, order=2)) == pytest.approx(w2, rel=1e-7)
            assert float(dv.overlap(*a)) == pytest.approx(ovl, rel=1e-9)


def test_kl_is_the_same_on_the_natural_scale_and_w1_is_not():
    """KL of two log-normals on the natural scale (scipy quadrature) equals the unconstrained KL;
    W1 of the natural values differs from W1 of the unconstrained ones."""
    ma, sa, mb, sb = 0.3, 0.4, 0.6, 0.25
    A, B = st.lognorm(sa, scale=np.exp(ma)), st.lognorm(sb, scale=np.exp(mb))
    nat = si.quad(lambda y: A.pdf(y) * (A.logpdf(y) - B.logpdf(y)), 0, np.inf, limit=400)[0]
    with jax.enable_x64(True):
        a = [jnp.asarray(v) for v in (ma, sa, mb, sb)]
        assert float(dv.kl(*a)) == pytest.approx(nat, rel=1e-7)
        assert abs(float(dv.wasserstein(*a, transform=Positive())) - float(dv.wasserstein(*a))) > 0.1


@pytest.mark.parametrize("x64", [False, True])
@pytest.mark.parametrize("nu", [None, 4.0])
def test_degenerate_population_finite_and_monotone(x64, nu):
    """A population with almost no spread (sigma 0.3 -> 0.001, an LLM that is one model): every
    measure finite; KL(ref||pop) grows, JS grows toward 1 bit, the overlap falls toward 0, and W1
    tends to E|X_ref - f(mu_pop)|; with sigma 0.01, W1 grows with the shift of mu."""
    with jax.enable_x64(x64):
        dtype = jnp.float64 if x64 else jnp.float32
        sigmas = jnp.asarray([0.3, 0.1, 0.03, 0.01, 0.003, 0.001], dtype)
        tr = Interval(0.0, 1.0)
        n = len(sigmas)
        args = (jnp.zeros(n, dtype), jnp.full(n, 0.8, dtype), jnp.full(n, 0.5, dtype), sigmas)
        df = None if nu is None else jnp.asarray(nu, dtype)
        fn = jax.jit(jax.vmap(lambda *a: dv.all_measures(*a, df, transform=tr)))
        out = {k: np.asarray(v) for k, v in fn(*args).items()}
        for k, v in out.items():
            assert v.dtype == dtype and np.all(np.isfinite(v)), k
        assert np.all(np.diff(out["kl_ref_pop"]) > 0) and np.all(np.diff(out["kl_pop_ref"]) > 0)
        assert np.all(np.diff(out["js"]) > 0) and out["js"][-1] > 0.95
        assert np.all(np.diff(out["overlap"]) < 0) and out["overlap"][-1] < 0.02
        A = _dist(0.0, 0.8, nu)
        trim = 0.0 if nu is None else dv.W_TRIM
        point = float(tr.forward(0.5))
        limit = si.quad(lambda q: abs(float(tr.forward(A.ppf(q))) - point), trim, 1 - trim)[0]
        assert out["w1"][-1] == pytest.approx(limit, rel=1e-2)
        shifts = jnp.asarray([0.0, 0.5, 1.0, 2.0, 4.0], dtype)
        k = len(shifts)
        w1 = np.asarray(jax.jit(jax.vmap(lambda m: dv.wasserstein(jnp.asarray(0.0, dtype), jnp.asarray(0.8, dtype), m,
                                                          jnp.asarray(0.01, dtype), None if nu is None else
                                                          jnp.asarray(nu, dtype), transform=tr)))(shifts))
        assert np.all(np.isfinite(w1)) and np.all(np.diff(w1) > 0) and k == 5


def test_identical_populations_give_zero():
    a = [jnp.asarray(v, jnp.float32) for v in (0.3, 0.7, 0.3, 0.7)]
    for nu in (None, jnp.asarray(6.0)):
        m = jax.jit(lambda *a: dv.all_measures(*a[:4], *a[4:], transform=Positive()))(*a, *([] if nu is None else [nu]))
        m = {k: float(v) for k, v in m.items()}
        assert m["overlap"] == 1.0 and m["w1"] == 0.0
        assert abs(m["js"]) < 1e-6 and abs(m["kl_ref_pop"]) < 1e-5 and abs(m["kl_pop_ref"]) < 1e-5


def test_energy_distance_and_student_location_scale_match_numpy():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(40, 3)), rng.normal(0.5, 1.2, size=(25, 3))
    want = 2 * cdist(x, y).mean() - cdist(x, x).mean() - cdist(y, y).mean()
    with jax.enable_x64(True):
        assert float(energy_distance(jnp.asarray(x), jnp.asarray(y))) == pytest.approx(want, rel=1e-8)
        u = rng.standard_t(4, 400) * 0.7 + 1.2
        loc, scale = location_scale(jnp.asarray(u), jnp.asarray(4.0), iterations=200)
    df, mloc, mscale = st.t.fit(u, fdf=4)
    assert float(loc) == pytest.approx(mloc, abs=1e-4) and float(scale) == pytest.approx(mscale, rel=1e-4)


HUMAN = {"alpha": (0.0, 0.3), "lam": (np.log(1.5), 0.4), "tau": (np.log(0.4), 0.5)}


def _shifted(param, delta):
    out = dict(HUMAN)
    out[param] = (HUMAN[param][0] + delta, HUMAN[param][1])
    return out


@pytest.mark.parametrize("param, deltas", [
    ("lam", np.log([1.25, 1.5, 2.0])),            # loss aversion x1.25, x1.5, x2
    ("tau", np.log([1.5, 2.0, 3.0])),             # choice sensitivity x1.5, x2, x3
    ("alpha", [0.2, 0.4, 0.8]),                   # curvature on its logit scale
])
def test_divergence_grows_with_a_known_shift(param, deltas):
    pops = {"human": (80, HUMAN), **{f"shift{i}": (40, _shifted(param, d)) for i, d in enumerate(deltas)}}
    fit = synthetic_fit("cpt_linear", pops, draws=150, seed=4)
    t = cogfit.align(fit, "human", params=[param], n_splits=10).to_pandas()
    for m in ("w1", "js", "kl_ref_pop", "kl_pop_ref", "shift", "energy"):
        med = t[t["measure"] == m].sort_values("population")["median"].to_numpy()
        assert np.all(np.diff(med) > 0), (m, med)
    ovl = t[t["measure"] == "overlap"].sort_values("population")["median"].to_numpy()
    assert np.all(np.diff(ovl) < 0)
    big = t[(t["population"] == "shift2") & t["measure"].isin(["w1", "energy"])]
    assert (big["p_above"] > 0.95).all() and (big["ratio"] > 2).all()


def test_same_distribution_falls_inside_the_ceiling():
    """Populations drawn from the reference's distribution: P(divergence > ceiling) is spread
    around 1/2, and exceeds 0.95 about as often as chance allows (binomial error)."""
    p_above, ratios = [], []
    for seed in range(6):
        pops = {"human": (60, HUMAN), "a": (30, HUMAN), "b": (20, HUMAN)}
        t = cogfit.align(synthetic_fit("cpt_linear", pops, draws=100, seed=10 + seed), "human", n_splits=10,
                         seed=seed).to_pandas()
        t = t[t["measure"].isin(["w1", "js", "kl_ref_pop", "overlap", "energy"])]
        p_above += list(t["p_above"])
        ratios += list(t["ratio"])
    p_above = np.asarray(p_above)
    assert 0.3 < np.mean(p_above) < 0.7
    assert np.mean(p_above > 0.95) < 0.05 + 3 * np.sqrt(0.05 * 0.95 / len(p_above)) + 0.05
    assert 0.6 < np.median(ratios) < 1.6


@pytest.fixture(scope="module")
def report_fit():
    llm = {"alpha": (0.1, 0.01), "lam": (np.log(2.2), 0.05), "tau": (np.log(0.4), 0.5)}
    return synthetic_fit("cpt_linear", {"human": (50, HUMAN), "llm:tiny": (20, llm)}, draws=120, seed=7)


def test_report_table_summary_and_errors(report_fit, tmp_path):
    al = report_fit.alignment("human", n_splits=8, prob=0.9)
    t = al.to_pandas()
    assert set(t["measure"]) == {"w1", "js", "kl_ref_pop", "kl_pop_ref", "overlap", "shift", "energy"}
    assert np.isfinite(t[["median", "lo", "hi", "ceiling", "ratio", "p_above"]].to_numpy()).all()
    assert (t["lo"] <= t["median"]).all() and (t["median"] <= t["hi"]).all()
    lam = t[(t["param"] == "lam") & (t["measure"] == "w1")].iloc[0]
    assert lam["pop_value"] == pytest.approx(2.2, rel=0.05) and lam["p_above"] > 0.95
    text = al.summary()
    assert re.search(r"lam: llm:tiny 2\.\d+ vs human 1\.\d+; W1 [\d.]+ \[[\d.]+, [\d.]+\], [\d.]+x the split-half "
                     r"ceiling, P > ceiling [01]\.\d\d", text), text
    paths = al.save(tmp_path)
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    assert "![alignment_heatmap](alignment_heatmap.png)" in (tmp_path / "alignment.md").read_text()
    with pytest.raises(ValueError, match="populations are"):
        cogfit.align(report_fit, "people")
    with pytest.raises(ValueError, match="prob"):
        cogfit.align(report_fit, "human", prob=94)


def test_student_t_populations():
    pops = {"human": (40, HUMAN), "llm": (20, _shifted("lam", 0.7))}
    fit = synthetic_fit("cpt_linear", pops, draws=60, nu=4.0, seed=2)
    t = cogfit.align(fit, "human", params=["lam", "tau"], n_splits=5).to_pandas()
    assert np.isfinite(t[["median", "ceiling", "ratio"]].to_numpy()).all()
    lam = t[(t["param"] == "lam") & (t["measure"] == "w1")].iloc[0]
    assert lam["p_above"] > 0.9


def test_needs_partial_pooling(report_fit):
    post = report_fit.posterior
    tree = report_fit.tree.copy()
    tree["posterior"] = tree["posterior"].to_dataset().drop_vars([v for v in post if v.endswith("_sigma")])
    import dataclasses
    pooled = dataclasses.replace(report_fit, tree=tree)
    with pytest.raises(ValueError, match="partial pooling"):
        cogfit.align(pooled, "human")


def test_likelihood_view_importance_sampling_matches_plain_monte_carlo():
    """log p(y_i | population) by importance sampling against plain Monte Carlo with many draws
    from the population (accurate for members with few trials); the population that generated
    the data predicts it better than a shifted one."""
    from cogfit._hierarchy import trial_loglik
    from cogfit._record import Record
    from cogfit.alignment.likelihood import member_elpd, predictive

    shifted = dict(HUMAN, lam=(np.log(4.0), 0.1), tau=(np.log(1.5), 0.1))
    fit = synthetic_fit("cpt_linear", {"human": (10, HUMAN), "clone": (10, HUMAN), "shifted": (10, shifted)},
                        n_trials=8, simulate_choices=True, draws=50, member_sd=0.2, seed=3)
    got = member_elpd(fit, "human", draws=100, samples=512, seed=1)
    post, model, data = fit.posterior, fit.model, fit.data
    rng = np.random.default_rng(0)
    for pop in ("clone", "shifted"):
        g = list(data.populations).index(pop)
        D = post.sizes["chain"] * post.sizes["draw"]
        d = rng.integers(0, D, 40_000)
        theta = {k: jnp.full(len(d), v) for k, v in model.fixed.items()}
        for p in model.params:
            mu = post[f"{p.name}_mu"].values.reshape(D, -1)[d, g]
            sigma = post[f"{p.name}_sigma"].values.reshape(D, -1)[d, g]
            theta[p.name] = jnp.asarray(p.transform.forward(mu + sigma * rng.normal(size=len(d))))
        for i in range(3):                                           # the first three human members
            trials = Record({k: jnp.broadcast_to(jnp.asarray(np.asarray(v)[i]), (len(d),) + np.shape(v)[1:])
                             for k, v in data.fields.items()})
            ll = np.asarray(jnp.sum(trial_loglik(model, Record(theta), trials), -1), np.float64)
            want = np.log(np.mean(np.exp(ll - ll.max()))) + ll.max()
            assert got[pop][i] == pytest.approx(want, abs=0.05), (pop, i)
    # Psych-201's view in the same table: mean response NLL and Cohen's d against a base model
    key = dict(experiment="e", participant=np.repeat(np.arange(5), 4), response=np.tile(np.arange(4), 5))
    scores = {"clone": pd.DataFrame(dict(key, nll=rng.gamma(2.0, 0.4, 20))),
              "shifted": pd.DataFrame(dict(key, nll=rng.gamma(2.0, 0.6, 20)))}
    table = predictive(fit, "human", draws=50, samples=128, scores=scores, base="clone").set_index("population")
    assert table.loc["clone", "elpd"] > table.loc["shifted", "elpd"]
    assert abs(table.loc["clone", "diff"]) < 3 * table.loc["clone", "diff_se"] + 0.2
    a, b = scores["clone"]["nll"], scores["shifted"]["nll"]
    assert table.loc["shifted", "nll"] == pytest.approx(b.mean())
    assert table.loc["shifted", "cohens_d"] == pytest.approx((b.mean() - a.mean()) / np.sqrt((a.var() + b.var()) / 2))
    assert table.loc["clone", "cohens_d"] == 0.0 and np.isnan(table.loc["human", "nll"])


def test_twins_are_closer_than_random_persons_only_when_matched():
    """LLM members built as noisy copies of their persons: twin W1 matches the copy noise (draws
    shifted by a known amount) and is far below a random person's; shuffled pairs are not."""
    import dataclasses

    from cogfit._fit import assemble
    from cogfit.alignment import twins

    fit = synthetic_fit("cpt_linear", {"human": (20, HUMAN), "llm": (20, HUMAN)}, draws=100, seed=8)
    post, data = fit.posterior, fit.data
    human = np.flatnonzero(np.asarray(data.population) == 0)
    llm = np.flatnonzero(np.asarray(data.population) == 1)
    samples = {k: post[k].values.copy() for k in post.data_vars}
    shift = 0.05
    samples["lam"][..., llm] = samples["lam"][..., human] + shift            # each LLM member: its person + 0.05
    twin_fit = dataclasses.replace(fit, tree=assemble(fit.model, data, samples, {}, attrs=fit.meta).tree)
    ids = [str(s) for s in data.subjects]
    pairs = {ids[m]: ids[h] for m, h in zip(llm, human)}
    t = twins(twin_fit, pairs, params=["lam"]).iloc[0]
    assert t["twin_w1"] == pytest.approx(shift, rel=1e-4)
    assert t["ratio"] < 0.2 and t["closer"] > 0.9
    shuffled = dict(zip(pairs, np.random.default_rng(0).permutation(list(pairs.values()))))
    s = twins(twin_fit, shuffled, params=["lam"]).iloc[0]
    assert s["ratio"] > 0.5 and 0.2 < s["closer"] < 0.8
    with pytest.raises(ValueError, match="not in the fit"):
        twins(twin_fit, {"nobody": ids[0]})


def test_refit_ceiling_runs_and_separates_a_shift():
    """ceiling='refit': the reference refitted as two populations per split (one vmapped SVI call);
    a doubled loss aversion stays above that ceiling, a clone does not."""
    shifted = dict(HUMAN, lam=(HUMAN["lam"][0] + np.log(2.0), HUMAN["lam"][1]))
    fit = synthetic_fit("cpt_linear", {"human": (24, HUMAN), "clone": (10, HUMAN), "shifted": (10, shifted)},
                        n_trials=40, simulate_choices=True, draws=100, seed=2)
    al = cogfit.align(fit, "human", params=["lam"], n_splits=4, ceiling="refit", refit=cogfit.SVI(steps=300, draws=50))
    assert "refitted per split" in al.summary()
    t = al.to_pandas().set_index(["population", "measure"])
    assert np.isfinite(t[["ceiling", "ratio"]].to_numpy()).all()
    assert t.loc[("shifted", "w1"), "ratio"] > 1.5 and t.loc[("clone", "w1"), "ratio"] < 1.5
    with pytest.raises(ValueError, match="ceiling must be"):
        cogfit.align(fit, "human", ceiling="halves")


def test_w1_uses_each_parameters_own_transform():
    """cpt_linear_bias has a log-scale ``lam`` before a real-valued ``bias``: W1 of ``bias`` is the
    identity-scale distance. (Transforms once compared equal as empty tuples, ``Real() ==
    Positive()``, and the cached W1 of ``lam`` was reused for ``bias``: exp of a normal.)"""
    assert Real() != Positive() and hash(Real()) != hash(Positive()) and Interval(0, 2) != (0, 2)
    pops = {"human": (20, {**HUMAN, "bias": (0.0, 0.5)}), "llm": (20, {**HUMAN, "bias": (0.5, 3.0)})}
    fit = synthetic_fit("cpt_linear_bias", pops, draws=40, seed=3)
    al = cogfit.align(fit, "human", n_splits=4)
    t = al.to_pandas()
    w1 = t[(t["param"] == "bias") & (t["measure"] == "w1") & (t["population"] == "llm")]["median"].iloc[0]
    post = fit.posterior
    mu, sigma = (post[f"bias_{k}"].values.reshape(-1, 2) for k in ("mu", "sigma"))
    direct = [float(dv.wasserstein(*map(jnp.float32, (mu[d, 0], sigma[d, 0], mu[d, 1], sigma[d, 1]))))
              for d in range(len(mu))]
    assert np.isclose(w1, np.median(direct), rtol=1e-3), (w1, np.median(direct))
    assert w1 < 5.0                                           # the exp-scale value would be in the hundreds
