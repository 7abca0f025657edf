"""The command line: fit, summary, demo, datasets, models, and clear errors."""

import subprocess
import sys

import pandas as pd
import pytest

import cogfit
from cogfit.cli import main


@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    model = cogfit.models.get("cpt_linear")
    design = cogfit.random_design(model, n_subjects=4, n_trials=30, seed=0)
    params = pd.DataFrame({"subject": range(4), "alpha": 0.9, "lam": 1.5, "tau": 0.4})
    path = tmp_path_factory.mktemp("cli") / "trials.csv"
    cogfit.simulate(model, design, params, seed=1).to_csv(path, index=False)
    return path


def test_fit_then_summary(csv, tmp_path, capsys):
    out = tmp_path / "fit.nc"
    assert main(["fit", "--model", "cpt_linear", "--data", str(csv), "--method", "svi", "--out", str(out),
                 "--draws", "50", "--quiet"]) == 0
    assert out.exists() and "lam_group" in capsys.readouterr().out
    assert main(["summary", str(out)]) == 0
    text = capsys.readouterr().out
    assert "method='svi'" in text and "lam_group[all]" in text


def test_fit_options_reach_the_sampler(csv, tmp_path, capsys):
    """--init svi, --steps, --learning-rate, --dense-mass, --centered, --population and --blocks land in the
    saved fit's metadata; summary lists the values that fail the checks."""
    out = tmp_path / "fit.nc"
    assert main(["fit", "--model", "cpt_linear", "--data", str(csv), "--out", str(out), "--draws", "20",
                 "--tune", "20", "--chains", "2", "--init", "svi", "--steps", "30", "--learning-rate", "0.02",
                 "--dense-mass", "--centered", "auto", "--population", "student_t", "--fix", "ref=16", "--quiet"]) == 0
    saved = cogfit.load(out)
    meta = saved.meta
    assert meta["population"] == "student_t" and "lam_nu" in saved.posterior
    assert meta["fixed"] == {"ref": 16.0} and saved.model.fixed == {"ref": 16.0}   # load restores the constant
    assert meta["init"] == "svi" and meta["init_steps"] == 30 and meta["init_learning_rate"] == 0.02
    assert meta["dense_mass"] in (True, 1)
    assert "centring_pilot_loss" in meta and 0 <= meta["centered"] <= 4 * 3
    capsys.readouterr()
    assert main(["summary", str(out)]) == 0                  # 2 x 20 draws: bulk ESS < 400
    text = capsys.readouterr().out
    assert "values fail R-hat" in text and "chain_medians" in text
    assert main(["fit", "--model", "cpt_linear", "--data", str(csv), "--out", str(out), "--draws", "10",
                 "--tune", "10", "--chains", "1", "--centered", "no", "--population", "student_t", "--nu", "5",
                 "--blocks", "population", "--quiet"]) == 0
    meta = cogfit.load(out).meta
    assert meta["centered"] == 0 and meta["nu"] == 5.0 and meta["blocks"] == "population"


def test_fix_needs_name_equals_number(csv, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--model", "cpt_linear", "--data", str(csv), "--fix", "ref:16"])
    assert "expected NAME=VALUE" in capsys.readouterr().err


def test_bad_data_is_a_clear_error(csv, tmp_path, capsys):
    bad = pd.read_csv(csv)
    bad.loc[3, "p_a_1"] = 1.7
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    assert main(["fit", "--model", "cpt_linear", "--data", str(path), "--out", str(tmp_path / "x.nc")]) == 2
    err = capsys.readouterr().err
    assert "'p_a_1'" in err and "row 3" in err


def test_datasets_and_models_listings(capsys):
    assert main(["datasets"]) == 0
    text = capsys.readouterr().out
    assert "psych201/spektor2024lossaversion" in text and "Spektor" in text and "sha256" in text
    assert main(["models"]) == 0
    assert "loss aversion" in capsys.readouterr().out


def test_demo_runs_on_the_embedded_default(tmp_path, capsys):
    """The README's main job, with short chains; a new process as a user would run it, its two
    chains at once on two CPU devices."""
    proc = subprocess.run([sys.executable, "-m", "cogfit.cli", "demo", "--quiet", "--draws", "60", "--tune", "60",
                           "--chains", "2", "--cores", "2", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert "human (simulated)" in proc.stdout and "llm (simulated)" in proc.stdout and "truth" in proc.stdout
    assert "llm (simulated) - human (simulated)" in proc.stdout               # the differences table
    assert (tmp_path / "fit.nc").exists() and (tmp_path / "populations.png").stat().st_size > 10_000
    assert "x the split-half ceiling" in proc.stdout and (tmp_path / "alignment" / "alignment.md").exists()
    fit = cogfit.load(tmp_path / "fit.nc")
    assert fit.data.populations == ("human (simulated)", "llm (simulated)")
    assert fit.meta["chain_method"] == "parallel" and fit.posterior["lam"].sizes["chain"] == 2
    assert main(["summary", str(tmp_path / "fit.nc")]) == 0
    text = capsys.readouterr().out
    assert "differences between populations (typical subject; lo, hi: 89% equal-tailed interval)" in text
    assert "p_positive" in text


def test_demo_on_a_named_real_data_set(tmp_path, capsys):
    """`cogfit demo --dataset psych201/spektor2024lossaversion` (a few subjects, short chains)."""
    assert main(["demo", "--dataset", "psych201/spektor2024lossaversion", "--subjects", "2", "--draws", "40",
                 "--tune", "40", "--chains", "1", "--quiet", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "psych201/spektor2024lossaversion: 6 of 282 subjects" in text and "lam" in text   # 2 per experiment
    assert "--subjects 0 for all 282" in text
    saved = cogfit.load(tmp_path / "fit.nc")
    assert saved.data.n_subjects == 6 and saved.model.fixed == {"ref": 16.0}   # spektor's reference stake
    assert saved.data.populations == ("exp1", "exp2", "exp3")
