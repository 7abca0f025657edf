"""Writing tidy trials back as transcripts: the experiments' own text, and exact round trips."""

import math

import numpy as np
import pandas as pd
import pytest
from conftest import data_mirror

import cogfit
from cogfit import psych201

DATA = data_mirror() / "psych201"   # COGFIT_DATA_MIRROR, see conftest
EXPERIMENTS = ("spektor2024lossaversion", "dezfouli2019", "guenther2020LDT")


@pytest.fixture(scope="module")
def samples():
    """The first 12 participants of each file."""
    return {e: psych201.read_jsonl(DATA / e / "prompts.jsonl.zip")[:12] for e in EXPERIMENTS}


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_render_reproduces_the_real_transcripts(samples, experiment):
    original = samples[experiment]
    table = psych201.read(original, experiment)
    rendered = psych201.render(table, experiment)
    assert [p.text for p in rendered] == [p.text for p in original]  # character for character
    assert [p.rts for p in rendered] == [p.rts for p in original]
    assert [dict(p.fields) for p in rendered] == [dict(p.fields) for p in original]
    if experiment != "dezfouli2019":  # its experiment field is a stray local path upstream
        assert [(p.experiment, p.participant) for p in rendered] == [(p.experiment, p.participant) for p in original]
    pd.testing.assert_frame_equal(psych201.read(rendered, experiment), table, check_exact=True)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_round_trip_through_a_file(samples, experiment, tmp_path):
    table = psych201.read(samples[experiment], experiment)
    path = psych201.write_jsonl(psych201.render(table, experiment), tmp_path / "prompts.jsonl.zip")
    pd.testing.assert_frame_equal(psych201.read(path, experiment), table, check_exact=True)


def test_prompt_for_an_llm_ends_at_the_response(samples):
    """``text[:response.start]`` is what an LLM sees before answering trial ``index``."""
    p = psych201.render(psych201.read(samples["spektor2024lossaversion"][:1]), "spektor2024lossaversion")[0]
    responses = psych201.extract_responses(p.text)
    prompt = p.text[: responses[5].start]
    assert prompt.startswith("Dear participant,") and prompt.endswith("You choose <<")
    assert prompt.count("<<") == 6 and "Session 1:" in prompt


def test_simulated_cpt_table_round_trips():
    design = cogfit.random_design("cpt", n_subjects=3, n_trials=15, seed=1)
    params = {"alpha": [0.8, 0.9, 1.0], "beta": [0.8, 0.9, 1.0], "lam": [1.5, 2.0, 1.0],
              "gamma": [0.6, 0.7, 0.9], "delta": [0.6, 0.7, 0.9], "tau": [1.0, 0.5, 2.0]}
    params = {k: v for k, v in params.items() if k in cogfit.models.get("cpt").param_names}
    table = cogfit.simulate("cpt", design, params, seed=2)
    assert set(table["choice"]) == {0, 1}
    participants = psych201.render(table, "spektor2024lossaversion")
    assert len(participants) == 3 and participants[0].experiment == "spektor2024lossaversion"
    assert "The lotteries' names are A and B." in participants[0].text
    back = psych201.read(participants, "spektor2024lossaversion")
    expected = table.assign(subject=table["subject"].astype(str))
    pd.testing.assert_frame_equal(back[expected.columns], expected, check_dtype=False, rtol=1e-9)
    assert list(back["response"]) == ["A" if c == 0 else "B" for c in table["choice"]]


def test_simulated_ddm_table_round_trips():
    rng = np.random.default_rng(0)
    design = pd.DataFrame({"subject": np.repeat(["p1", "p2"], 20), "trial": np.tile(np.arange(20), 2),
                           "item": rng.choice(["doorman", "sawfuel", "payroll", "cheeseradish"], 40),
                           "age": np.repeat([21, 40], 20)})
    table = cogfit.simulate("ddm", design, {"v": [1.0, -0.5], "a": [1.5, 2.0], "z": [0.5, 0.6], "t": [0.3, 0.25]},
                            seed=0)
    table = design.merge(table[["subject", "trial", "choice", "rt"]], on=["subject", "trial"], validate="1:1")
    assert len(table) == 40
    participants = psych201.render(table, "guenther2020LDT")
    assert "press the Y key on your keyboard" in participants[0].text
    back = psych201.read(participants, "guenther2020LDT")
    pd.testing.assert_frame_equal(back[table.columns], table, check_dtype=False, rtol=1e-9)
    # RTs are written in ms rounded to 1e-6 ms: at most 5e-10 s off
    assert np.abs(back["rt"].to_numpy() - table["rt"].to_numpy(float)).max() <= 5.1e-10


def test_render_errors_name_subject_and_trial():
    base = pd.DataFrame({"subject": ["s1", "s1"], "trial": [0, 1], "choice": [0, 1], "reward": [1.0, 0.5],
                         "population": ["Healthy", "Healthy"]})
    with pytest.raises(ValueError, match=r"subject 's1' row trial=1: .*reward 0.5 is neither 0 nor 1"):
        psych201.render(base, "dezfouli2019")
    with pytest.raises(ValueError, match=r"subject 's1': column 'population' must hold one value"):
        psych201.render(base.assign(reward=1.0, population=["Healthy", "Bipolar"]), "dezfouli2019")
    with pytest.raises(ValueError, match=r"subject 's1' row trial=0: KeyError\('choice'\)"):
        psych201.render(base.drop(columns="choice"), "dezfouli2019")
    with pytest.raises(KeyError, match=r"lacks column\(s\) \['trial'\]"):
        psych201.render(base.drop(columns="trial"), "dezfouli2019")
    with pytest.raises(ValueError, match=r"subject 's1' has trial 0 more than once"):
        psych201.render(base.assign(trial=0, reward=1.0), "dezfouli2019")
    with pytest.raises(ValueError, match=r"missing subject id in row 1"):
        psych201.render(base.assign(reward=1.0, subject=["s1", None]), "dezfouli2019")
    with pytest.raises(ValueError, match=r"trial=1: .*\['name_1'\] change within the subject"):
        psych201.render(base.assign(reward=1.0, option_a=["L", "Z"]), "dezfouli2019")
    with pytest.raises(ValueError, match=r"trial=0: .*'doorman. You press <<N>> >>.' would not read back"):
        psych201.render(pd.DataFrame({"subject": ["a"], "trial": [0], "item": ["doorman"], "choice": [0],
                                      "key_nonword": ["N>> "], "age": [3]}), "guenther2020LDT")


def test_trial_order_and_nan_rts():
    rows = pd.DataFrame({"subject": ["a"] * 3, "trial": [2, 0, 1], "item": ["x", "y", "z"], "choice": [1, 0, 1],
                         "rt": [0.5, math.nan, 0.7], "age": [30] * 3})
    (p,) = psych201.render(rows, "guenther2020LDT")
    assert [r.text for r in psych201.extract_responses(p.text)] == ["N", "Y", "Y"]  # sorted by trial
    assert p.rts[0] == 0.0 or math.isnan(p.rts[0])
    back = psych201.read([p], "guenther2020LDT")
    assert list(back["item"]) == ["y", "z", "x"] and math.isnan(back["rt"][0])
    assert list(back["exclude"]) == [True, False, False]  # a missing RT is flagged, not dropped
