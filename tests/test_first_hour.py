"""A new user's first hour (issue 36): each friction found, guarded by a test."""

import dataclasses
import json
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import cogfit
from cogfit._demo import DEMO_CSV

MODEL = "cpt_linear"


@pytest.fixture(scope="module")
def demo():
    """The embedded demo table, 4 subjects of each population, 30 trials each (ragged: the
    last subject keeps 20), so packed arrays have padded slots."""
    table = pd.read_csv(DEMO_CSV)
    keep = table["subject"].drop_duplicates().iloc[:8]
    table = table[table["subject"].isin(keep) & (table["trial"] < 30)]
    last = keep.iloc[-1]
    return table[(table["subject"] != last) | (table["trial"] < 20)].reset_index(drop=True)


def _svi(data, *, steps=300, draws=50, seed=0):
    return cogfit.fit(MODEL, data, method=cogfit.SVI(steps=steps, draws=draws), seed=seed, progress=False,
                      warn=False)


# --- 1. the README's first example is the fast, converging one ---------------------------------

def test_readme_use_example_runs(monkeypatch, tmp_path):
    """The README's "Use" block as written, with short chains (its timing and convergence at full
    length: ``benchmarks/readme_use.py``, ``benchmarks/RESULTS.md``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("readme_use", Path(__file__).parents[1] / "benchmarks" /
                                                  "readme_use.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    code = bench.use_block()
    assert "cogfit.NUTS(" in code and '"ref": 16.0' in code and "isin(first)" in code
    code = "\n".join(line for line in code.splitlines() if "jax_num_cpu_devices" not in line)   # JAX runs here
    real = cogfit.NUTS
    monkeypatch.setattr(cogfit, "NUTS", lambda **kw: real(**{**kw, "draws": 20, "tune": 20, "chains": 1,
                                                              "pilot": cogfit.SVI(steps=100)}))
    monkeypatch.chdir(tmp_path)
    namespace = {}
    with pytest.warns(cogfit.ConvergenceWarning):                       # 20 draws: too few, and it says so
        exec(compile(code, "README.md (Use)", "exec"), namespace)
    fit = namespace["fit"]
    assert fit.data.populations == ("exp1", "exp3") and fit.data.n_subjects == 20
    assert fit.model.fixed == {"ref": 16.0} and (tmp_path / "fit.nc").exists()


# --- 2. human and LLM tables combine when their subject ids differ in type ---------------------

def test_mixed_subject_id_types(demo):
    human = demo[demo["population"].str.startswith("human")].copy()
    llm = demo[demo["population"].str.startswith("llm")].copy()
    human["subject"] = human["subject"].str[3:].astype(int)            # 0, 2, 4, ...
    llm["subject"] = "gpt-" + llm["subject"]
    both = pd.concat([human, llm], ignore_index=True)
    data = cogfit.TrialData.from_table(both, MODEL)
    assert data.subjects == tuple(pd.unique(both["subject"]))          # order of first appearance
    assert {type(s) for s in data.subjects} == {int, str}
    back = data.to_table()
    for s in data.subjects:                                             # each subject's own trials
        want = both[both["subject"] == s].sort_values("trial")
        got = back[back["subject"] == s]
        np.testing.assert_array_equal(got["choice"].to_numpy(), want["choice"].to_numpy())
        np.testing.assert_array_equal(got["x_a_1"].to_numpy(), want["x_a_1"].to_numpy())
    one = [t[t["subject"] == t["subject"].iloc[0]] for t in (human, llm)]
    clash = pd.concat([one[0].assign(subject=1), one[1].assign(subject="1")], ignore_index=True)
    with pytest.raises(cogfit.DataError, match="ids 1 and '1' differ only in type"):
        cogfit.TrialData.from_table(clash, MODEL)


# --- 3. validation holes ----------------------------------------------------------------------

def _four_outcomes(demo):
    """The demo lotteries as four-outcome lotteries (two outcomes of probability 0 added)."""
    t = demo.copy()
    for side in "ab":
        t[f"x_{side}_3"], t[f"x_{side}_4"] = 0.0, 0.0
        t[f"p_{side}_3"], t[f"p_{side}_4"] = 0.0, 0.0
    return t


def test_missing_numbered_column_is_named(demo):
    t = _four_outcomes(demo)
    cogfit.TrialData.from_table(t, MODEL)                                # complete: fine
    with pytest.raises(cogfit.DataError, match=r"column x_b_2 missing"):
        cogfit.TrialData.from_table(t.drop(columns="x_b_2"), MODEL)
    with pytest.raises(cogfit.DataError, match=r"x_b: 3.*missing x_b_4 \(have x_b_1, x_b_2, x_b_3\)"):
        cogfit.TrialData.from_table(t.drop(columns="x_b_4"), MODEL)


def test_row_means_the_table_index(demo, tmp_path):
    t = demo.copy()
    t.loc[7, "choice"] = 5
    path = tmp_path / "trials.csv"
    t.to_csv(path, index=False)
    with pytest.raises(cogfit.DataError, match=r"row 7\b") as err:
        cogfit.TrialData.from_table(pd.read_csv(path), MODEL)
    assert err.value.index == 7
    assert path.read_text().splitlines()[7 + 1].split(",")[demo.columns.get_loc("choice")] == "5"  # line 9


# --- 4. observed data and predictions hold real trials only ------------------------------------

@pytest.fixture(scope="module")
def fitted(demo):
    data = cogfit.TrialData.from_table(demo, MODEL)
    return _svi(data).with_log_likelihood().with_posterior_predictive()


def test_observed_and_predicted_hold_real_trials_only(fitted, demo, tmp_path):
    n = len(demo)
    assert int(fitted.data.mask.size) > n                               # the packed arrays are padded
    obs = fitted.tree["observed_data"]["choice"]
    pp = fitted.tree["posterior_predictive"]["choice"]
    ll = fitted.tree["log_likelihood"]["choice"]
    assert obs.dims == ("obs",) and obs.size == n
    assert pp.dims == ("chain", "draw", "obs") and pp.sizes["obs"] == n
    assert pp.sizes["draw"] == ll.sizes["draw"] == fitted.posterior.sizes["draw"]  # every draw
    for coord in ("obs_subject", "obs_trial"):
        np.testing.assert_array_equal(obs[coord].values, ll[coord].values)
        np.testing.assert_array_equal(pp[coord].values, ll[coord].values)
    table = demo.set_index(["subject", "trial"])["choice"]
    want = table.loc[list(zip(obs["obs_subject"].values, obs["obs_trial"].values))].to_numpy()
    np.testing.assert_array_equal(obs.values, want)
    pit = az.loo_pit(fitted.tree)                                        # needs draws and obs to line up
    assert pit["choice"].shape == (n,) and np.all((pit["choice"] >= 0) & (pit["choice"] <= 1))
    back = cogfit.load(fitted.save(tmp_path / "fit.nc"))
    for k, v in fitted.data.fields.items():
        np.testing.assert_array_equal(back.data.fields[k], v)


def test_load_reads_files_with_padded_slots(fitted, tmp_path):
    """Files written before the change stored observed data as (subject, slot) with padding."""
    old = fitted.tree.copy()
    old["observed_data"] = old["observed_data"].to_dataset().drop_vars(["obs", "obs_subject", "obs_trial"]).assign(
        choice=(("subject", "slot"), np.asarray(fitted.data.fields["choice"])))
    del old["posterior_predictive"]
    path = tmp_path / "old.nc"
    old.to_netcdf(path, engine="h5netcdf")
    back = cogfit.load(path)
    np.testing.assert_array_equal(back.data.fields["choice"], fitted.data.fields["choice"])
    assert back.tree["observed_data"]["choice"].dims == ("obs",)
    np.testing.assert_array_equal(back.tree["observed_data"]["choice"].values,
                                  fitted.tree["observed_data"]["choice"].values)


# --- 5. check() reports what is meaningful for each method --------------------------------------

def test_check_of_svi_and_map(fitted):
    svi = fitted.check()
    assert "max_rhat" not in svi and svi["method"] == "svi"
    assert svi["ok"] and np.isfinite(svi["final_loss"]) and svi["min_sigma"] > 1e-3 and svi["collapsed"] == []
    # A hierarchical MAP whose group spread collapsed, with a singular Laplace Hessian for lam.
    tree = fitted.tree.copy()
    post = tree["posterior"].to_dataset()
    post["alpha_sigma"] = post["alpha_sigma"] * 0 + 1e-5
    post["lam"] = post["lam"].isel(draw=[0]).broadcast_like(post["lam"])
    tree["posterior"] = xr.DataTree(post)
    meta = dict(fitted.meta, method="map")
    tree.attrs["cogfit"] = json.dumps(meta)
    point = dataclasses.replace(fitted, tree=tree)
    with pytest.warns(cogfit.ConvergenceWarning, match="collapsed"):
        got = point.check(warn=True)
    assert got["method"] == "map" and not got["ok"]
    assert got["collapsed"] == ["alpha_sigma"] and got["constant"] == ["lam"]
    assert got["min_sigma"] == pytest.approx(1e-5)


# --- 8. one interval probability, stated in every table ----------------------------------------

def test_one_interval_probability(fitted):
    from cogfit._demo import difference_table, population_table

    tables = lambda: (fitted.differences(), fitted.subject_params(), population_table(fitted),  # noqa: E731
                      difference_table(fitted))
    default = az.rcParams["stats.ci_prob"]
    for table in tables():
        assert table.attrs["ci_prob"] == default
        assert table.columns.name == f"{100 * default:g}% equal-tailed interval: lo, hi"
    assert f"eti{100 * default:g}_lb" in fitted.summary().columns
    with az.rc_context({"stats.ci_prob": 0.5}):                          # set once, every table follows
        assert "eti50_lb" in fitted.summary().columns
        for table in tables():
            assert table.attrs["ci_prob"] == 0.5 and table.columns.name.startswith("50% equal-tailed")
        row = fitted.differences().iloc[0]
        group = fitted.posterior[f"{row.param}_group"]
        d = group.sel(population=row.b) - group.sel(population=row.a)
        np.testing.assert_allclose([row.lo, row.hi], np.quantile(d.values, [0.25, 0.75]), rtol=1e-6)
        sp = fitted.subject_params().iloc[0]
        v = fitted.posterior[sp.param].sel(subject=sp.subject).values
        np.testing.assert_allclose([sp.lo, sp.hi], np.quantile(v, [0.25, 0.75]), rtol=1e-6)


# --- 9. Psych-201 labels carry no upstream author's local paths ----------------------------------

def test_psych201_labels_hold_no_local_paths():
    from conftest import data_mirror

    from cogfit import psych201

    labels = {}
    for experiment in ("dezfouli2019", "spektor2024lossaversion", "guenther2020LDT"):
        path = data_mirror() / "psych201" / experiment / "prompts.jsonl.zip"
        labels[experiment] = {p.experiment for p in psych201.read_jsonl(path)}
        assert {label.split("/")[0] for label in labels[experiment]} == {experiment}, labels
        assert not any("Users" in label or "//" in label for label in labels[experiment])
    assert labels["dezfouli2019"] == {"dezfouli2019/choices_diagno.csv"}     # upstream: dezfouli//Users/...
    table = psych201.read(data_mirror() / "psych201/dezfouli2019/prompts.jsonl.zip")   # adapter from the label
    assert table["subject"].nunique() == 101


# --- 10. Jupyter: progress widgets, a readable demo figure -------------------------------------

def test_notebook_extra_has_ipywidgets():
    import tomllib

    meta = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert any(r.startswith("ipywidgets") for r in meta["project"]["optional-dependencies"]["dev"])


def test_demo_figure_is_labelled(fitted, tmp_path):
    from cogfit._demo import DEMO_TRUTH, figure

    fig = figure(fitted, DEMO_TRUTH)
    axes = fig.axes
    assert len(axes) == len(fitted.model.params)
    for ax, p in zip(axes, fitted.model.params):
        assert ax.get_ylabel() == "posterior density" and ax.get_xlabel().startswith(f"{p.name} of the typical")
        labels = ax.get_legend_handles_labels()[1]
        assert ax.get_legend() is not None and set(fitted.data.populations) <= set(labels)
        assert "see " not in ax.get_title() and "see " not in ax.get_xlabel()
    assert "typical subject" in fig._suptitle.get_text() and "dashed" in fig._suptitle.get_text()
    fig.savefig(tmp_path / "populations.png", dpi=110)
    assert (tmp_path / "populations.png").stat().st_size > 10_000


# --- 6. command-line errors: one line, before any work, nothing left behind ----------------------

def _cli(argv, capsys):
    from cogfit.cli import main

    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def csv(demo, tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "trials.csv"
    demo.to_csv(path, index=False)
    return path


def test_cli_errors_are_one_line(csv, tmp_path, capsys, monkeypatch):
    code, _, err = _cli(["summary", str(csv)], capsys)                  # a table, not a saved fit
    assert code == 2 and "is not a saved fit" in err and f"cogfit fit --model NAME --data {csv}" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    monkeypatch.setenv("COGFIT_DATA_MIRROR", str(tmp_path / "empty"))    # offline and no mirror copy
    out = tmp_path / "demo-out"
    code, _, err = _cli(["demo", "--dataset", "psych201/spektor2024lossaversion", "--out", str(out)], capsys)
    assert code == 2 and "has no psych201/spektor2024lossaversion" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    code, _, err = _cli(["demo", "--dataset", "nope", "--out", str(out)], capsys)
    assert code == 2 and "no demo for 'nope'" in err and not out.exists()


def test_cli_checks_out_before_fitting(tmp_path, capsys):
    missing = tmp_path / "no" / "such" / "fit.nc"
    code, _, err = _cli(["fit", "--model", MODEL, "--data", str(tmp_path / "absent.csv"), "--out", str(missing)],
                        capsys)                                          # fails on --out, before reading --data
    assert code == 2 and f"folder {missing.parent} does not exist" in err
    code, _, err = _cli(["fit", "--model", MODEL, "--data", str(tmp_path / "absent.csv"), "--out", str(tmp_path)],
                        capsys)
    assert code == 2 and "is a folder" in err


def test_cli_reads_tsv_and_names_the_file_line(demo, csv, tmp_path, capsys):
    from cogfit.cli import read_table

    tsv = tmp_path / "trials.txt"                                        # tabs, whatever the name
    demo.to_csv(tsv, sep="\t", index=False)
    pd.testing.assert_frame_equal(read_table(tsv), pd.read_csv(csv))
    semi = tmp_path / "trials.csv"
    demo.to_csv(semi, sep=";", index=False)
    with pytest.raises(ValueError, match="not comma- or tab-separated"):
        read_table(semi)
    bad = demo.copy()
    bad.loc[7, "choice"] = 5
    bad.to_csv(tsv, sep="\t", index=False)
    code, _, err = _cli(["fit", "--model", MODEL, "--data", str(tsv), "--out", str(tmp_path / "f.nc")], capsys)
    assert code == 2 and "row 7" in err and f"[line 9 of {tsv}]" in err


def test_cli_warnings_are_one_line(csv, tmp_path, capsys):
    code, _, err = _cli(["fit", "--model", MODEL, "--data", str(csv), "--method", "map", "--steps", "20",
                         "--draws", "5", "--quiet", "--out", str(tmp_path / "f.nc")], capsys)
    assert code == 0
    lines = [line for line in err.splitlines() if "MAP of a hierarchical model" in line]
    assert len(lines) == 1 and lines[0].startswith("cogfit: UserWarning: MAP of a hierarchical model")
    assert "warnings.warn(" not in err and ".py:" not in err


# --- 7. discoverability -----------------------------------------------------------------------

def test_models_lists_data_columns(capsys):
    code, out, _ = _cli(["models"], capsys)
    blocks = {b.split(":")[0]: b for b in out.strip().split("\n\n")}
    assert code == 0
    assert "data: subject, trial, choice (0..1), x_a_1..x_a_K, p_a_1..p_a_K, x_b_1..x_b_K, p_b_1..p_b_K" in \
        blocks["cpt_linear"]
    learner = blocks["bandit_dual_rep_blocks"]
    assert "reward" in learner and "block" in learner and "payoff_1..payoff_K" in learner
    assert "rt (s)" in blocks["ddm"]


def test_help_shows_defaults(capsys):
    from cogfit.cli import parser

    for command, default in (("fit", "(default: 1000)"), ("demo", "(default: 500)")):
        with pytest.raises(SystemExit):
            parser().parse_args([command, "--help"])
        assert default in capsys.readouterr().out


# --- 11. tests find the data through COGFIT_DATA_MIRROR -----------------------------------------

def test_data_tests_use_the_documented_variable(tmp_path, monkeypatch):
    from conftest import find_data_mirror

    here = Path(__file__).parent
    name = "sha" + "red"                                                 # conftest alone knows the default
    hard_coded = (f'"{name}"', f"{name}/data")
    for path in here.glob("test_*.py"):
        assert not any(h in path.read_text() for h in hard_coded), path.name
    elsewhere = tmp_path / "mirror"
    elsewhere.symlink_to(find_data_mirror(), target_is_directory=True)
    monkeypatch.setenv("COGFIT_DATA_MIRROR", str(elsewhere))
    assert find_data_mirror() == elsewhere
    monkeypatch.setenv("COGFIT_DATA_MIRROR", str(tmp_path / "empty"))
    with pytest.raises(pytest.fail.Exception) as failed:
        find_data_mirror()
    message = str(failed.value)
    assert len(message.splitlines()) == 1 and "COGFIT_DATA_MIRROR" in message and "prompts.jsonl.zip" in message
