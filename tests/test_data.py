"""TrialData: every kind of bad input raises DataError naming column, subject and row."""

import numpy as np
import pandas as pd
import pytest

import cogfit
from cogfit import DataError, TrialData

CPT = cogfit.models.get("cpt_linear")
RA = cogfit.models.get("prospect_ra")


def cpt_table(n_subjects=3, n_trials=4, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_subjects):
        for t in range(n_trials):
            rows.append(dict(subject=f"s{s}", trial=t, choice=int(rng.integers(2)),
                             x_a_1=10.0, x_a_2=-5.0, p_a_1=0.5, p_a_2=0.5,
                             x_b_1=3.0, x_b_2=0.0, p_b_1=0.25, p_b_2=0.75,
                             population="A" if s < 2 else "B"))
    return pd.DataFrame(rows)


def test_packs_ragged_subjects_with_mask_and_coords():
    df = cpt_table().drop(index=[9, 10, 11]).sample(frac=1, random_state=1)  # s2 has 1 trial, rows shuffled
    data = TrialData.from_table(df, CPT)
    assert data.subjects == ("s1", "s0", "s2") or set(data.subjects) == {"s0", "s1", "s2"}
    assert data.fields["x_a"].shape == (3, 4, 2)
    assert data.n_trials.tolist() == [int((df.subject == s).sum()) for s in data.subjects]
    i = data.subjects.index("s2")
    assert data.mask[i].tolist() == [True, False, False, False]
    # padding repeats the last real trial, so it is numerically valid
    assert (data.fields["x_a"][i, 1:] == data.fields["x_a"][i, 0]).all()
    assert (data.trial[i, 1:] == -1).all()
    assert data.populations == tuple(pd.unique(df.population))
    # trials sorted within subject and the table round-trips
    back = data.to_table().sort_values(["subject", "trial"]).reset_index(drop=True)
    ref = df.sort_values(["subject", "trial"]).reset_index(drop=True)
    assert (back.choice.to_numpy() == ref.choice.to_numpy()).all()


def test_model_by_registered_name():
    by_name = TrialData.from_table(cpt_table(), "cpt_linear")
    assert by_name.fields["x_a"].shape == TrialData.from_table(cpt_table(), CPT).fields["x_a"].shape
    with pytest.raises(KeyError, match="no_such_model"):
        TrialData.from_table(cpt_table(), "no_such_model")


def _err(df, model=CPT, **kw):
    with pytest.raises(DataError) as e:
        TrialData.from_table(df, model, **kw)
    return str(e.value)


def test_missing_column():
    msg = _err(cpt_table().drop(columns="x_b_1").drop(columns="x_b_2"))
    assert "'x_b'" in msg and "missing" in msg


def test_missing_choice_column():
    assert "'choice'" in _err(cpt_table().drop(columns="choice"))


def test_nan_names_column_subject_row():
    df = cpt_table()
    df.loc[5, "x_a_1"] = np.nan
    msg = _err(df)
    assert "'x_a_1'" in msg and "'s1'" in msg and "row 5" in msg and "NaN" in msg


def test_inf():
    df = cpt_table()
    df.loc[2, "x_b_2"] = np.inf
    msg = _err(df)
    assert "'x_b_2'" in msg and "row 2" in msg and "infinite" in msg


def test_non_numeric():
    df = cpt_table()
    df["x_a_2"] = df["x_a_2"].astype(object)
    df.loc[7, "x_a_2"] = "ten"
    msg = _err(df)
    assert "'x_a_2'" in msg and "row 7" in msg and "not a number" in msg and "'s1'" in msg


def test_choice_outside_options():
    df = cpt_table()
    df.loc[3, "choice"] = 2
    msg = _err(df)
    assert "'choice'" in msg and "row 3" in msg and "0..1" in msg


def test_rt_not_positive():
    ddm_like = cogfit.Model("rt_model", (cogfit.Param("a"),), lambda th, tr: tr.rt * 0,
                            lambda k, th, tr: {}, rt=True)
    df = pd.DataFrame(dict(subject=[1, 1, 2], trial=[0, 1, 0], choice=[0, 1, 1], rt=[0.5, 0.0, 0.7]))
    msg = _err(df, ddm_like)
    assert "'rt'" in msg and "row 1" in msg and "> 0" in msg and "subject 1" in msg


def test_duplicated_subject_trial():
    df = cpt_table()
    df.loc[6, "trial"] = 1
    msg = _err(df)
    assert "duplicated" in msg and "row 6" in msg and "'s1'" in msg


def test_subject_with_no_valid_trials():
    df = cpt_table()
    df["exclude"] = df.subject == "s2"
    msg = _err(df)
    assert "no valid trials" in msg and "'s2'" in msg


def test_exclusions_are_counted_not_silent():
    df = cpt_table()
    df["exclude"] = False
    df.loc[[0, 5], "exclude"] = True
    data = TrialData.from_table(df, CPT)
    assert data.excluded == 2 and int(data.mask.sum()) == len(df) - 2


def test_unknown_population_label():
    msg = _err(cpt_table(), populations=["A"])
    assert "'population'" in msg and "unknown label" in msg and "'B'" in msg


def test_unknown_condition_label():
    df = cpt_table()
    df["condition"] = "easy"
    df.loc[4, "condition"] = "hard"
    msg = _err(df, conditions=["easy"])
    assert "'condition'" in msg and "row 4" in msg and "'hard'" in msg


def test_probability_outside_unit_interval():
    df = cpt_table()
    df.loc[1, "p_a_1"], df.loc[1, "p_a_2"] = 1.5, -0.5
    msg = _err(df)
    assert "'p_a_1'" in msg and "row 1" in msg and "[0, 1]" in msg


def test_probabilities_not_summing_to_one():
    df = cpt_table()
    df.loc[8, "p_b_2"] = 0.7
    msg = _err(df)
    assert "sum to 0.95" in msg and "row 8" in msg and "'s2'" in msg


def test_numbered_columns_must_be_contiguous():
    df = cpt_table().rename(columns={"x_a_2": "x_a_3"})
    assert "column x_a_2 missing" in _err(df)


def test_soft_labels_validated_and_packed():
    df = cpt_table()
    df["choice_prob_1"], df["choice_prob_2"] = 0.3, 0.7
    data = TrialData.from_table(df, CPT)
    assert data.fields["choice_prob"].shape == (3, 4, 2)
    df.loc[0, "choice_prob_2"] = 0.6
    assert "choice_prob" in _err(df)


def test_scalar_columns_for_ra_prospect():
    df = pd.DataFrame(dict(subject=[1, 1], trial=[0, 1], choice=[0, 1], gain=[10.0, 4], loss=[5.0, 2], cert=[0.0, 1]))
    data = TrialData.from_table(df, RA)
    assert data.fields["gain"].shape == (1, 2)


def test_records_and_trial_data_pickle():
    """Process pools and Dask workers receive data by pickling."""
    import pickle

    model = cogfit.models.get("prospect_ra")
    design = cogfit.random_design(model, n_subjects=2, n_trials=5, seed=0)
    data = cogfit.TrialData.from_table(cogfit.simulate(model, design, {"rho": 0.9, "lam": 1.5, "tau": 1.0}), model)
    back = pickle.loads(pickle.dumps(data))
    assert back.fields.gain.shape == data.fields.gain.shape and (back.fields.choice == data.fields.choice).all()
    assert pickle.loads(pickle.dumps(cogfit.Record(x=1.0))).x == 1.0
