"""``cogfit align FIT.nc --reference human --out DIR``: tables, figures and a report from a saved fit."""

import numpy as np
import pandas as pd

from cogfit.alignment.synthetic import synthetic_fit
from cogfit.cli import main

HUMAN = {"alpha": (0.0, 0.3), "lam": (0.4, 0.4), "tau": (-1.0, 0.5)}
LLM = {"alpha": (0.2, 0.02), "lam": (1.2, 0.05), "tau": (-1.0, 0.5)}


def test_align_writes_tables_figures_and_report(tmp_path, capsys):
    path = synthetic_fit("cpt_linear", {"human": (30, HUMAN), "llm:tiny": (12, LLM)}, draws=40, seed=5).save(
        tmp_path / "fit.nc")
    out = tmp_path / "report"
    assert main(["align", str(path), "--reference", "human", "--out", str(out), "--splits", "4", "--likelihood"]) == 0
    printed = capsys.readouterr().out
    assert "lam: llm:tiny 3.3" in printed and "x the split-half ceiling" in printed
    table = pd.read_csv(out / "alignment.csv")
    lam = table[(table["param"] == "lam") & (table["measure"] == "w1")].iloc[0]
    assert lam["population"] == "llm:tiny" and lam["p_above"] > 0.9 and np.isfinite(lam["ratio"])
    draws = pd.read_csv(out / "alignment_draws.csv")
    assert len(draws) == 3 * 2 * 40 and {"w1", "w1_ceiling", "energy"} <= set(draws.columns)
    for name in ("densities", "heatmap", "forest"):
        assert (out / f"alignment_{name}.png").stat().st_size > 10_000
    assert "# Alignment with 'human'" in (out / "alignment.md").read_text()
    likelihood = pd.read_csv(out / "alignment_likelihood.csv")
    assert list(likelihood["population"]) == ["human", "llm:tiny"] and np.isfinite(likelihood["elpd"]).all()


def test_align_names_the_populations_of_a_wrong_reference(tmp_path, capsys):
    path = synthetic_fit("cpt_linear", {"human": (8, HUMAN), "llm": (4, LLM)}, draws=10, seed=1).save(
        tmp_path / "fit.nc")
    assert main(["align", str(path), "--reference", "people", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "cogfit align: error: reference 'people' is not a population" in err and "'human', 'llm'" in err
