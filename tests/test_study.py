"""The human-vs-LLM study (issue 33) end to end with two tiny offline models, quick sizes: the
folder's files, study.json, a resumed rerun that recomputes nothing, and a recomputed step that
reproduces its tables."""

import json
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

import cogfit
import cogfit.llm as L
from cogfit.study import human_vs_llm
from cogfit.study._summary import CONFOUND

STEPS = ["1_likelihood/cohens_d.csv", "1_likelihood/nll.csv", "1_likelihood/nll.png",
         "2_behaviour/humans_bandit.csv", "2_behaviour/humans_lottery.csv", "2_behaviour/schedule_bandit.csv",
         "3_fits/bandit.nc", "3_fits/lottery.nc", "3_fits/convergence.csv",
         "4_alignment/bandit/alignment.csv", "4_alignment/lottery/alignment_likelihood.csv",
         "4_alignment/lottery/alignment_heatmap.png", "summary.md", "study.json"]
NAMES = ("tiny-base", "tiny-post")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("study")
    lms = [L.load_lm(L.build_tiny_lm(root / name, arch="llama", seed=i), name=name) for i, name in enumerate(NAMES)]
    folder = human_vs_llm(lms, root / "out", participants=2, quick=True, seed=3, progress=False)
    return lms, folder


def test_folder_has_every_step(study):
    lms, folder = study
    missing = [p for p in STEPS if not (folder / p).is_file()]
    for name in NAMES:
        missing += [p for p in (f"1_likelihood/scores_{name}.csv", f"2_behaviour/play_bandit_{name}.csv",
                                f"2_behaviour/play_lottery_{name}.csv", f"2_behaviour/soft_bandit_{name}.csv",
                                f"2_behaviour/soft_lottery_{name}.csv") if not (folder / p).is_file()]
    assert not missing
    cohens = pd.read_csv(folder / "1_likelihood/cohens_d.csv")
    assert sorted(cohens["experiment"][:-1]) == ["dezfouli2019", "guenther2020LDT", "spektor2024lossaversion"]
    assert cohens["experiment"].iloc[-1] == "overall"
    assert np.isclose(cohens["d"].iloc[-1], cohens["d"][:-1].mean())
    for task in ("bandit", "lottery"):
        played = pd.read_csv(folder / f"2_behaviour/play_{task}_tiny-post.csv")
        assert played["subject"].nunique() == 2
        assert {"n_invalid", "fallback", "choice_prob_1", "choice_prob_2"} <= set(played.columns)
        people = pd.read_csv(folder / f"2_behaviour/humans_{task}.csv")["subject"].nunique()
        assert people == 4                                    # twice the participants: two ceiling halves
        soft = pd.read_csv(folder / f"2_behaviour/soft_{task}_tiny-base.csv")
        assert soft["subject"].str.startswith("soft:tiny-base/").all() and soft["human"].nunique() == 2
        assert np.allclose(soft["choice_prob_1"] + soft["choice_prob_2"], 1.0)
    al = pd.read_csv(folder / "4_alignment/bandit/alignment.csv")
    assert set(al["population"]) == {"llm:tiny-base", "llm:tiny-post", "soft:tiny-base", "soft:tiny-post"}
    summary = (folder / "summary.md").read_text()
    assert CONFOUND in summary and "Cohen's d" in summary and "energy / ceiling" in summary
    conv = pd.read_csv(folder / "3_fits/convergence.csv", keep_default_na=False)
    for r in conv.itertuples():      # what fails is named: the first row of fit.flags(), in the summary too
        flags = cogfit.load(folder / f"3_fits/{r.task}.nc").flags()
        assert (r.worst == "") == flags.empty
        if not flags.empty:
            assert r.worst.startswith(f"{flags['variable'].iloc[0]} [")
            assert f"worst value {r.worst}" in summary


def test_study_json_records_seeds_versions_and_hashes(study):
    lms, folder = study
    record = json.loads((folder / "study.json").read_text())
    assert record["seed"] == 3 and record["quick"] is True and record["settings"]["participants"] == 2
    assert {"cogfit", "jax", "numpyro", "torch", "transformers", "python"} <= set(record["versions"])
    assert [m["name"] for m in record["models"]] == list(NAMES)
    assert [m["role"] for m in record["models"]] == ["base", "post-trained"]
    hashes = [m["weights_sha256"] for m in record["models"]]
    assert all(len(h) == 64 for h in hashes) and hashes[0] != hashes[1]
    assert {"likelihood", "behaviour", "fits", "alignment"} <= set(record["steps"])


def test_rerun_resumes_and_reproduces(study):
    lms, folder = study
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    mtimes = {p: p.stat().st_mtime_ns for p in files}
    human_vs_llm(lms, folder, participants=2, quick=True, seed=3, progress=False)
    assert {p: p.stat().st_mtime_ns for p in files} == mtimes             # nothing recomputed or rewritten
    # a step recomputed from scratch gives the same tables
    redo = ["2_behaviour/play_bandit_tiny-post.csv", "2_behaviour/play_lottery_tiny-base.csv",
            "1_likelihood/scores_tiny-base.csv"]
    before = {p: pd.read_csv(folder / p) for p in redo}
    for p in redo:
        (folder / p).unlink()
    for work in ("2_behaviour/work/play_bandit_tiny-post.jsonl", "2_behaviour/work/play_lottery_tiny-base.jsonl",
                 "1_likelihood/work/tiny-base.jsonl"):
        (folder / work).unlink()
    human_vs_llm(lms, folder, participants=2, quick=True, seed=3, progress=False)
    for p in redo:
        pd.testing.assert_frame_equal(pd.read_csv(folder / p), before[p])
    assert (folder / "3_fits/bandit.nc").stat().st_mtime_ns == mtimes[folder / "3_fits/bandit.nc"]


def test_other_settings_in_the_same_folder_are_refused(study):
    lms, folder = study
    with pytest.raises(ValueError, match="other settings"):
        human_vs_llm(lms, folder, participants=2, quick=True, seed=4, progress=False)


def test_command_resumes_the_study(study, capsys):
    from cogfit.cli import main

    lms, folder = study
    summary = folder / "summary.md"
    mtime = summary.stat().st_mtime_ns
    paths = [str(folder.parent / name) for name in NAMES]        # the tiny models' folders, loaded by path
    assert main(["study", "human-vs-llm", "--models", *paths, "--out", str(folder), "--participants", "2",
                 "--quick", "--seed", "3", "--quiet"]) == 0
    assert "Likelihood view" in capsys.readouterr().out
    assert summary.stat().st_mtime_ns == mtime


def test_worker_processes_give_the_same_tables(study, tmp_path, capsys, monkeypatch):
    """Steps 1-2 redone on a pool of two spawned processes, each loading the models from their
    folders with one torch thread, reproduce the tables made in this process."""
    import multiprocessing
    import shutil
    from concurrent.futures import ProcessPoolExecutor

    lms, folder = study
    copy = tmp_path / "again"
    shutil.copytree(folder, copy)
    redo = [p.relative_to(copy) for step in ("1_likelihood", "2_behaviour") for p in (copy / step).rglob("*")
            if p.is_file() and not p.name.startswith(("humans_", "schedule_"))]   # the people's tables stay
    for p in redo:
        (copy / p).unlink()
    assert any(str(p).startswith("2_behaviour/play_") for p in redo) and any("scores_" in str(p) for p in redo)
    paths = [str(folder.parent / name) for name in NAMES]
    monkeypatch.setattr(sys.modules["cogfit.study.human_vs_llm"], "POLL_S", 0.2)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        human_vs_llm(paths, copy, participants=2, quick=True, seed=3, progress=True, executor=pool)
    # the bar counts the workers' finished sessions: 2 models x 2 tasks x (play, soft labels) x 2
    assert "playing and soft labels: 100%" in capsys.readouterr().err.replace("\r", "\n")
    for p in redo:
        if p.suffix == ".csv":
            pd.testing.assert_frame_equal(pd.read_csv(copy / p), pd.read_csv(folder / p))


def test_bandit_people_have_every_block_the_study_keeps():
    """dezfouli2019: 4 of 101 people have fewer than 20 trials in one of blocks 1..12 (s_042_: 6);
    the full study's 60 people are drawn from the other 97, round-robin over diagnoses."""
    from cogfit.study._designs import bandit_humans

    trials, schedule = bandit_humans(60, blocks=12, block_trials=20)
    per = trials.groupby("subject").size()
    assert len(per) == 60 and (per == 240).all() and "s_042_" not in per.index
    assert trials.drop_duplicates("subject")["diagnosis"].value_counts().to_dict() == {
        "Bipolar": 20, "Depression": 20, "Healthy": 20}
    assert len(schedule) == 60 * 12
    with pytest.raises(ValueError, match="has 97 with at least 20 trials in each of blocks 1..12"):
        bandit_humans(98, blocks=12, block_trials=20)


def test_an_interrupted_step_keeps_its_time_and_a_resume_adds_to_it(study, tmp_path, monkeypatch):
    import shutil

    lms, folder = study
    copy = tmp_path / "again"
    shutil.copytree(folder, copy)
    first = json.loads((copy / "study.json").read_text())["steps"]["behaviour"]
    assert first["runs"] == 1 and first["done"] is True and first["wall_s"] > 0
    for p in ("2_behaviour/soft_lottery_tiny-post.csv", "2_behaviour/work/soft_lottery_tiny-post.jsonl"):
        (copy / p).unlink()
    module = sys.modules["cogfit.study.human_vs_llm"]   # the module; the package exports the function
    real = module._soft

    def interrupted(*args, **kwargs):
        time.sleep(0.3)
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "_soft", interrupted)
    with pytest.raises(KeyboardInterrupt):
        human_vs_llm(lms, copy, participants=2, quick=True, seed=3, progress=False)
    cut = json.loads((copy / "study.json").read_text())["steps"]["behaviour"]
    assert cut["runs"] == 2 and cut["done"] is False and cut["wall_s"] >= first["wall_s"] + 0.3
    monkeypatch.setattr(module, "_soft", real)
    human_vs_llm(lms, copy, participants=2, quick=True, seed=3, progress=False)
    done = json.loads((copy / "study.json").read_text())["steps"]["behaviour"]
    assert done["runs"] == 3 and done["done"] is True and done["wall_s"] > cut["wall_s"]


def test_summary_sentences_name_the_direction_and_cap_the_ratio():
    from cogfit.study._summary import _beyond
    al = pd.DataFrame(dict(measure="w1", population="llm:m", param=["alpha_pos", "tau", "bias"],
                           pop_value=[0.1, 0.05, 2.0], ref_value=[0.7, 1.1, 0.1], ratio=[3.14, 2.0, 2e5],
                           p_above=[0.95, 0.5, 1.0]))
    said = _beyond(al, "llm:m")
    assert said == ["`alpha_pos` 0.1 vs people 0.7 (slower learning from rewards; W1 3.1x the ceiling)",
                    "`bias` 2 vs people 0.1 (more biased towards the second lottery; W1 >1000x the ceiling)"]
