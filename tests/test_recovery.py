"""Recovery studies (cogfit.recover): metrics against numpy, SBC against exact posteriors,
chunk independence, resume, Dask equals in-process, model recovery, the CLI."""

import os

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import cogfit
from cogfit.recovery import grid, recover
from cogfit.recovery import run as runner
from cogfit.recovery import simulate as sim
from cogfit.recovery import truth as tr
from cogfit.recovery.metrics import estimates, metrics, summarise
from cogfit.recovery.sbc import uniformity

FAST = cogfit.SVI(steps=300, draws=100)


def _table(rng, n_datasets=40, n_subjects=5):
    """A synthetic estimates table: posterior means near the truth, random intervals."""
    D, S = n_datasets, n_subjects
    truth = rng.normal(size=(D, S))
    mean = truth + rng.normal(0.1, 0.5, size=(D, S))
    sd = rng.uniform(0.2, 1.0, size=(D, S))
    rows = dict(dataset=np.repeat(np.arange(D), S), level="subject", param="x", parameter="x",
                unit=np.tile(np.arange(S).astype(str), D), truth=truth.ravel(), mean=mean.ravel(),
                median=mean.ravel(), sd=sd.ravel(), sd_u=sd.ravel() * 2, rank=rng.integers(0, 100, D * S), n_ranked=99,
                warning=np.repeat(rng.uniform(size=D) < 0.2, S))
    for p in (0.5, 0.9, 0.95):
        z = stats.norm.ppf((1 + p) / 2)
        rows[f"lo{round(p * 100)}"], rows[f"hi{round(p * 100)}"] = (mean - z * sd).ravel(), (mean + z * sd).ravel()
    return pd.DataFrame(rows)


def test_metrics_match_numpy():
    rng = np.random.default_rng(0)
    t = _table(rng)
    m = metrics(t, {"x": 1.5}).iloc[0]
    err = t["mean"] - t["truth"]
    assert m["n"] == len(t) and m["datasets"] == 40
    assert m["correlation"] == pytest.approx(np.corrcoef(t["mean"], t["truth"])[0, 1])
    assert m["bias"] == pytest.approx(err.mean())
    assert m["rmse"] == pytest.approx(np.sqrt((err ** 2).mean()))
    for p in (50, 90, 95):
        inside = (t[f"lo{p}"] <= t["truth"]) & (t["truth"] <= t[f"hi{p}"])
        assert m[f"coverage{p}"] == pytest.approx(inside.mean())
    assert m["contraction"] == pytest.approx(np.mean(1 - t["sd_u"] ** 2 / 1.5 ** 2))
    assert m["warnings"] == pytest.approx(t.groupby("dataset")["warning"].first().mean())
    assert np.isnan(metrics(t).iloc[0]["contraction"])          # no prior sd given


def test_summarise_matches_numpy():
    rng = np.random.default_rng(1)
    draws = rng.normal(size=(3, 2, 50, 4))                      # (dataset, chain, draw, subject)
    truth = rng.normal(size=(3, 4))
    out = summarise(draws, truth, n_rank=20)
    flat = draws.reshape(3, 100, 4)
    np.testing.assert_allclose(out["sd_u"], flat.std(1, ddof=1))
    np.testing.assert_allclose(summarise(np.exp(draws), np.exp(truth), 20, cogfit.Positive())["sd_u"], out["sd_u"])
    np.testing.assert_allclose(out["mean"], flat.mean(1))
    np.testing.assert_allclose(out["sd"], flat.std(1, ddof=1))
    np.testing.assert_allclose(out["lo90"], np.quantile(flat, 0.05, axis=1))
    np.testing.assert_allclose(out["hi50"], np.quantile(flat, 0.75, axis=1))
    idx = np.unique(np.linspace(0, 99, 20).round().astype(int))
    np.testing.assert_array_equal(out["rank"], (flat[:, idx] < truth[:, None]).sum(1))
    assert out["n_ranked"].max() == 20 and out["rank"].max() <= 20


def _conjugate_table(shift: float, n_datasets: int = 300, n_obs: int = 5, L: int = 99, seed: int = 0):
    """SBC of the exact posterior of theta ~ N(0, 1), y_i ~ N(theta, 1): truths drawn from
    N(shift, 1) (shift 0: the prior the posterior assumes)."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(shift, 1.0, n_datasets)
    y = rng.normal(theta[:, None], 1.0, (n_datasets, n_obs))
    post_var = 1.0 / (1.0 + n_obs)
    draws = rng.normal(post_var * y.sum(1)[:, None], np.sqrt(post_var), (n_datasets, L))
    stats_ = summarise(draws[:, None, :, None], theta[:, None], n_rank=L)
    t = pd.DataFrame({k: v.ravel() for k, v in stats_.items()})
    return t.assign(dataset=np.arange(n_datasets), level="group", param="theta", parameter="theta", unit="all",
                    truth=theta, warning=False)


def test_sbc_detects_a_wrong_prior_and_not_the_right_one():
    right = uniformity(_conjugate_table(0.0)).iloc[0]
    wrong = uniformity(_conjugate_table(1.0)).iloc[0]
    assert right["p_value"] > 0.05 and right["inside_band"]
    assert wrong["p_value"] < 1e-3 and not wrong["inside_band"]


def test_sbc_false_alarms_are_rare():
    """Under the right prior the band test rejects about 5% of studies, not more."""
    rejected = [not uniformity(_conjugate_table(0.0, n_datasets=100, seed=s)).iloc[0]["inside_band"]
                for s in range(40)]
    assert np.mean(rejected) <= 0.15


def test_prior_truths_follow_the_hierarchy():
    model = cogfit.models.get("cpt_linear")
    keys = tr.dataset_keys(0, np.arange(2000), 0)
    t = tr.prior(model, keys, np.zeros(3, np.int32), 1)
    p = model.param("tau")                                     # Positive, prior N(-1, 1), sd HalfNormal(1)
    assert abs(t.mu["tau"].mean() - (-1.0)) < 0.1 and abs(t.mu["tau"].std() - 1.0) < 0.1
    assert abs(t.sigma["tau"].mean() - np.sqrt(2 / np.pi)) < 0.05
    z = (np.log(t.subject["tau"]) - t.mu["tau"]) / t.sigma["tau"]      # back to the standard normal
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1.0) < 0.05
    assert p.transform.describe().startswith("positive")
    flat = tr.prior(model, keys[:50], np.zeros(3, np.int32), 1, hierarchical=False)
    assert np.isnan(flat.mu["tau"]).all() and flat.subject["tau"].shape == (50, 3)


def test_truth_sources_and_their_errors():
    model = cogfit.models.get("cpt_linear")
    kw = dict(seed=3, datasets=np.arange(2), n_subjects=3, population=np.zeros(3, np.int32), n_populations=1,
              hierarchical=True)
    g = grid({"alpha": [0.5, 1.0], "lam": [1.0, 2.0], "tau": [0.3]}, n_datasets=2, n_subjects=3)
    t = tr.draw(model, g, **kw)
    np.testing.assert_array_equal(t.subject["lam"], [[1.0, 2.0, 1.0], [2.0, 1.0, 2.0]])
    np.testing.assert_array_equal(t.subject["alpha"], [[0.5, 0.5, 1.0], [1.0, 0.5, 0.5]])
    called = tr.draw(model, lambda rng, n: {"alpha": rng.uniform(0.5, 1, n), "lam": 2.0, "tau": np.full(n, 0.5)}, **kw)
    assert (called.subject["lam"] == 2.0).all() and called.subject["alpha"].shape == (2, 3)
    import numpyro.distributions as dist
    dists = tr.draw(model, {"alpha": dist.Uniform(0.2, 0.4), "lam": 1.5, "tau": dist.LogNormal(0, 0.1)}, **kw)
    assert ((dists.subject["alpha"] > 0.2) & (dists.subject["alpha"] < 0.4)).all()
    with pytest.raises(ValueError, match="'alpha' = 2.5.*outside its domain"):
        tr.draw(model, g.assign(alpha=2.5), **kw)
    with pytest.raises(ValueError, match=r"no values for parameters \['tau'\]"):
        tr.draw(model, g.drop(columns="tau"), **kw)
    with pytest.raises(ValueError, match="no row for dataset 1, subject 2"):
        tr.draw(model, g.iloc[:-1], **kw)


def test_datasets_do_not_depend_on_the_chunking():
    model = cogfit.models.get("bandit_rw")
    d = sim.design(model, n_subjects=2, n_trials=10)
    study = runner.Study("bandit_rw", 5, d, "prior", FAST, cogfit.Hierarchy(), 7, 5)
    _, t_all, all_ = runner.simulate_chunk(study, np.arange(5))
    _, t_two, two = runner.simulate_chunk(study, np.array([3, 4]))
    np.testing.assert_array_equal(t_all.subject["alpha"][3:], t_two.subject["alpha"])
    for a, b in zip(all_[3:], two):
        for k in ("choice", "reward", "payoff"):
            np.testing.assert_array_equal(a.fields[k], b.fields[k])
    assert all_[0].fields["choice"].dtype == np.int32 and set(np.unique(all_[0].fields["reward"])) <= {0.0, 1.0}


def test_a_design_table_is_shared_and_checked():
    model = cogfit.models.get("cpt_linear")
    table = cogfit.random_design(model, n_subjects=3, n_trials=12, seed=1)
    d = sim.design(model, n_subjects=None, n_trials=None, table=table)
    assert (d.n_subjects, d.n_trials) == (3, 12)
    fields = sim.stimuli(model, d, 0, np.arange(2))
    np.testing.assert_array_equal(fields["x_a"][1], d.table["x_a"])
    with pytest.raises(ValueError, match="n_trials=10 but the design table has 12"):
        sim.design(model, n_subjects=None, n_trials=10, table=table)
    with pytest.raises(ValueError, match="subject 2 has 11 trials"):
        sim.design(model, n_subjects=None, n_trials=None, table=table.iloc[:-1])


def test_estimates_align_subjects_and_groups():
    """Draws equal to the truth plus a known offset give exactly that bias, per site."""
    model = cogfit.models.get("cpt_linear")
    t = tr.prior(model, tr.dataset_keys(0, np.arange(4), 0), np.zeros(3, np.int32), 1)
    samples = {}
    for p in model.params:
        samples[p.name] = t.subject[p.name][:, None, None, :] + np.linspace(-1, 1, 11)[None, None, :, None] + 0.25
        for site, v in (("_mu", t.mu), ("_sigma", t.sigma)):
            samples[p.name + site] = v[p.name][:, None, None, :] + np.zeros((1, 1, 11, 1))
        samples[p.name + "_group"] = np.asarray(p.transform.forward(samples[p.name + "_mu"]))
    tab = estimates(model, samples, t, np.arange(10, 14), ("all",), np.zeros(4, bool), n_rank=11)
    m = metrics(tab).set_index("param")
    assert m.loc["lam", "bias"] == pytest.approx(0.25) and m.loc["lam", "coverage90"] == 1.0
    assert m.loc["alpha_mu", "rmse"] == pytest.approx(0.0, abs=1e-12)
    assert set(tab["dataset"]) == set(range(10, 14))
    assert (tab.loc[tab["param"] == "tau", "rank"] == 4).all()       # truth + 0.25 lies above 4 of 11 draws


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("recovery")


@pytest.fixture(scope="module")
def result(study_dir):
    return recover("cpt_linear", n_datasets=6, n_subjects=4, n_trials=40, method=FAST, chunk=3, seed=5,
                   out=study_dir, progress=False)


def test_recover_tables(result):
    t = result.to_pandas()
    assert set(t["dataset"]) == set(range(6)) and set(t["chunk"]) == {0, 1}
    assert len(t) == 6 * (3 * 4 + 3 * 3)                       # 3 params x (4 subjects + mu, sigma, group)
    s = result.summary()
    assert set(s["param"]) >= {"alpha", "lam", "tau", "lam_mu", "lam_sigma", "tau_group"}
    assert np.isfinite(s[["correlation", "rmse", "coverage90", "contraction"]].to_numpy()).all()
    assert (s["warnings"] == 0).all()
    sb = result.sbc()
    assert ((sb["p_value"] >= 0) & (sb["p_value"] <= 1)).all() and (sb["n"] == 6).all()
    assert t["rank"].between(0, 99).all()


def test_resume_reads_finished_chunks(result, study_dir, monkeypatch):
    (study_dir / "chunk-00001.parquet").unlink()
    ran = []
    real = runner.run_chunk
    monkeypatch.setattr(runner, "run_chunk", lambda study, i: ran.append(i) or real(study, i))
    again = recover("cpt_linear", n_datasets=6, n_subjects=4, n_trials=40, method=FAST, chunk=3, seed=5,
                    out=study_dir, progress=False)
    assert ran == [1]                                          # chunk 0 was read, chunk 1 refitted
    cols = [c for c in result.table if c != "seconds"]
    pd.testing.assert_frame_equal(again.table[cols], result.table[cols], rtol=1e-5)
    with pytest.raises(ValueError, match="holds a different study.*seed: 5 there, 6 here"):
        recover("cpt_linear", n_datasets=6, n_subjects=4, n_trials=40, method=FAST, chunk=3, seed=6,
                out=study_dir, progress=False)


def test_pipeline_sbc_flags_a_wrong_prior():
    """Truths from a prior whose loss aversion sits far above the fitted model's (population mean
    of log lam 2 +- 0.3 against 0 +- 1) pile the ranks of lam_mu at the top: SBC flags it."""
    import dataclasses

    import numpyro.distributions as dist
    model = cogfit.models.get("cpt_linear")
    shifted = dataclasses.replace(model, name="cpt_linear_lam7", params=tuple(
        p._replace(prior=dist.Normal(2.0, 0.3)) if p.name == "lam" else p for p in model.params))
    res = recover(model, n_datasets=12, n_subjects=4, n_trials=40, method=FAST, truth=shifted, chunk=12, seed=2,
                  progress=False)
    sb = res.sbc().set_index("param")
    assert sb.loc["lam_mu", "p_value"] < 0.01 and not sb.loc["lam_mu", "inside_band"]
    lam_mu = res.table[res.table["param"] == "lam_mu"]
    assert (lam_mu["rank"] > 60).mean() > 0.8                 # the truth above most posterior draws
    assert res.summary().set_index("param").loc["lam_mu", "bias"] < 0


@pytest.mark.slow
def test_dask_cluster_equals_in_process(result, tmp_path):
    """The module's in-process study again on a real two-process Dask cluster: the same tables
    (the workers find its compiled programs in the persistent JAX cache)."""
    import distributed
    env = {k: os.environ[k] for k in ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS")
           if k in os.environ}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, env=env,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        there = recover("cpt_linear", n_datasets=6, n_subjects=4, n_trials=40, method=FAST, chunk=3, seed=5,
                        executor=client, out=tmp_path, progress=False).table
    cols = [c for c in result.table if c != "seconds"]
    pd.testing.assert_frame_equal(there[cols], result.table[cols], rtol=1e-6)
    assert sorted(p.name for p in tmp_path.glob("chunk-*.parquet")) == ["chunk-00000.parquet", "chunk-00001.parquet"]


def test_model_recovery_confusion_and_inversion():
    from cogfit.recovery import model_recovery
    mr = model_recovery(["cpt_linear", "cpt_linear_bias"], n_datasets=4, n_subjects=4, n_trials=40,
                        method=cogfit.SVI(steps=500, draws=200), progress=False)
    t = mr.to_pandas()
    assert len(t) == 2 * 4 * 2 and np.isfinite(t["elpd"]).all()
    assert (t.groupby(["true_model", "dataset"])["best"].sum() == 1).all()
    c, inv = mr.confusion(), mr.inversion()
    np.testing.assert_allclose(c.sum(axis=1), 1.0)
    best = t[t["best"]]
    for g in c.index:
        for k in c.columns:
            assert c.loc[g, k] == pytest.approx(np.mean(best.loc[best["true_model"] == g, "candidate"] == k))
    defined = inv.columns[c.sum(axis=0) > 0]
    np.testing.assert_allclose(inv[defined].sum(axis=0), 1.0)


def test_a_non_finite_loss_flags_only_its_dataset(monkeypatch):
    """fit_batch raises when any dataset's loss is not finite; the chunk is then fitted dataset by
    dataset and only the failing one is flagged (its draws NaN)."""
    def fake(model, data, *, method, hierarchy, seed, progress):
        if 1 in seed:
            raise FloatingPointError("svi: the loss is not finite")
        return type("B", (), {"samples": {"x": np.stack([np.full((1, 3, 2), float(s)) for s in seed])}})()
    monkeypatch.setattr(cogfit, "fit_batch", fake)
    study = runner.Study("cpt_linear", 3, None, "prior", FAST, cogfit.Hierarchy(), 0, 3)
    samples, warning = runner.fit_chunk(None, [0, 1, 2], study, [0, 1, 2])
    np.testing.assert_array_equal(warning, [False, True, False])
    assert np.isnan(samples["x"][1]).all() and (samples["x"][2] == 2.0).all()


def test_nuts_chunks_are_batched_on_an_accelerator_and_looped_on_a_cpu(monkeypatch):
    """Where NUTS chunks go: one fit_batch call when nuts_batched() (an accelerator; its draws
    equal cogfit.fit's, tests/test_methods.py), else cogfit.fit per dataset; a fit failing its
    check is flagged either way."""
    nuts = cogfit.NUTS(draws=5, tune=5, chains=2, chain_method="vectorized", centered=False)
    model = cogfit.models.get("cpt_linear")
    study = runner.Study("cpt_linear", 2, sim.design(model, n_subjects=3, n_trials=30), "prior", nuts,
                         cogfit.Hierarchy(), 2, 2)
    _, _, data = runner.simulate_chunk(study, np.arange(2))
    calls = []
    real_batch, real_fit = cogfit.fit_batch, cogfit.fit
    monkeypatch.setattr(cogfit, "fit_batch", lambda *a, **k: calls.append("batch") or real_batch(*a, **k))
    monkeypatch.setattr(cogfit, "fit", lambda *a, **k: calls.append("fit") or real_fit(*a, **k))
    assert runner.nuts_batched() is False                        # this machine: a CPU
    samples, warning = runner.fit_chunk(model, data, study, [5, 6])
    assert calls == ["fit", "fit"] and samples["alpha"].shape == (2, 2, 5, 3)
    np.testing.assert_array_equal(warning, [True, True])         # 2 x 5 draws: bulk ESS < 400
    monkeypatch.setattr(runner, "nuts_batched", lambda: True)
    calls.clear()
    batched, _ = runner.fit_chunk(model, data, study, [5, 6])
    assert calls == ["batch"] and batched["alpha"].shape == (2, 2, 5, 3)


def test_pointwise_loglik_matches_fit_with_log_likelihood():
    from cogfit.recovery.models import pointwise_loglik
    model = cogfit.models.get("cpt_linear")
    study = runner.Study("cpt_linear", 2, sim.design(model, n_subjects=4, n_trials=40), "prior", FAST,
                         cogfit.Hierarchy(), 1, 2)
    _, _, data = runner.simulate_chunk(study, np.arange(2))
    batch = cogfit.fit_batch(model, data, method=FAST, seed=[3, 4], progress=False)
    ll = pointwise_loglik(model, data, batch.samples)
    ref = batch.fit(1).with_log_likelihood().tree["log_likelihood"]["choice"].values[0]
    np.testing.assert_allclose(ll[1], ref, rtol=1e-5, atol=1e-6)


def test_cli_recover_writes_tables_and_figures(tmp_path, capsys):
    from cogfit.cli import main
    code = main(["recover", "cpt_linear", "--datasets", "6", "--subjects", "4", "--trials", "40", "--steps", "300",
                 "--draws", "100", "--chunk", "3", "--seed", "5", "--out", str(tmp_path), "--quiet"])
    assert code == 0
    names = {p.name for p in tmp_path.iterdir()}
    assert {"summary.csv", "sbc.csv", "recovery_subject.png", "recovery_group.png", "coverage.png",
            "sbc_subject.png", "sbc_group.png", "chunks"} <= names
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert set(summary["param"]) >= {"alpha", "lam_mu"} and "coverage90" in summary
    assert "wrote" in capsys.readouterr().out


def test_recover_rejects_bad_options():
    with pytest.raises(ValueError, match="n_datasets must be an integer >= 1"):
        recover("cpt_linear", n_datasets=0, n_subjects=2, n_trials=5, progress=False)
    with pytest.raises(ValueError, match="n_trials must be a positive integer"):
        recover("cpt_linear", n_datasets=2, n_subjects=2, progress=False)
    with pytest.raises(ValueError, match="pooling='none'"):
        recover("cpt_linear", n_datasets=2, n_subjects=2, n_trials=5, hierarchical=cogfit.Hierarchy(pooling="complete"),
                progress=False)
    with pytest.raises(ValueError, match="truth must be 'prior'"):
        recover("cpt_linear", n_datasets=2, n_subjects=2, n_trials=5, truth="uniform", progress=False)
