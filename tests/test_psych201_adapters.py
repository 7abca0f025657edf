"""Experiment adapters on the real Psych-201 files, checked against independent string parsing."""

import collections

import numpy as np
import pandas as pd
import pytest
from conftest import data_mirror

from cogfit import psych201
from cogfit.psych201 import Participant, TranscriptError

DATA = data_mirror() / "psych201"   # COGFIT_DATA_MIRROR, see conftest


@pytest.fixture(scope="module")
def raw():
    """Participants of the three files (read once)."""
    return {e: psych201.read_jsonl(DATA / e / "prompts.jsonl.zip")
            for e in ("spektor2024lossaversion", "dezfouli2019", "guenther2020LDT")}


@pytest.fixture(scope="module")
def tables(raw):
    return {e: psych201.read(ps, e) for e, ps in raw.items()}


def _trial_lines(p: Participant) -> list[str]:
    return [line for line in p.text.split("\n") if "<<" in line]


@pytest.mark.parametrize("experiment, n_subjects, n_trials", [
    ("spektor2024lossaversion", 282, 73250), ("dezfouli2019", 101, 132251), ("guenther2020LDT", 146, 75870)])
def test_every_response_is_a_trial(raw, tables, experiment, n_subjects, n_trials):
    df = tables[experiment]
    assert df.shape[0] == n_trials and df["subject"].nunique() == n_subjects
    markers = {psych201.get_adapter(experiment).subject(p): p.text.count("<<") for p in raw[experiment]}
    assert df.groupby("subject").size().to_dict() == markers
    assert (df.groupby("subject")["trial"].agg(lambda t: list(t) == list(range(len(t))))).all()
    assert set(df["choice"].unique()) == {0, 1}
    assert df["choice"].dtype.kind == "i"


def test_spektor_against_string_split(raw, tables):
    df = tables["spektor2024lossaversion"]
    rows = []
    for p in raw["spektor2024lossaversion"]:
        exp = p.experiment.split("/")[1].removesuffix(".csv")
        session, t = 0, 0
        for line in p.text.split("\n"):
            if line.startswith("Session "):
                session = int(line.split()[1].rstrip(":"))
            if "<<" not in line:
                continue
            # "The outcomes of lottery S are -9 with 50 chance and 16 with 50 chance. The ..."
            w = line.replace("%", " ").split()
            a, b, chosen = w[4], w[19], line.split("<<")[1].split(">>")[0]
            rows.append({
                "subject": f"{exp}/{p.participant}", "trial": t, "choice": 0 if chosen == a else 1,
                "x_a_1": float(w[6]), "x_a_2": float(w[11]), "p_a_1": int(w[8]) / 100, "p_a_2": int(w[13]) / 100,
                "x_b_1": float(w[21]), "x_b_2": float(w[26]), "p_b_1": int(w[23]) / 100, "p_b_2": int(w[28]) / 100,
                "option_a": a, "option_b": b, "response": chosen, "session": session,
                "rt": p.rts[t] / 1000, "experiment": exp, "population": exp,
            })
            t += 1
    expected = pd.DataFrame(rows)
    pd.testing.assert_frame_equal(df, expected, check_exact=True, check_dtype=False)


def test_spektor_lottery_order_and_ids(raw, tables):
    df = tables["spektor2024lossaversion"]
    # the first-mentioned lottery is constant within each participant ...
    assert (df.groupby("subject")["option_a"].nunique() == 1).all()
    # ... and is the first name of "The lotteries' names are S and Q."
    for p in raw["spektor2024lossaversion"]:
        listed = p.text.split("The lotteries' names are ")[1].split(".")[0].split(" and ")
        first_line = _trial_lines(p)[0]
        assert first_line.split()[4] == listed[0]
    assert {"exp1/1", "exp2/1", "exp3/2", "exp2/2"} <= set(df["subject"])  # numbers restart per experiment
    assert df.groupby("experiment")["subject"].nunique().to_dict() == {"exp1": 40, "exp2": 185, "exp3": 57}
    assert set(df["session"]) == {1, 2}
    assert np.allclose(df[["p_a_1", "p_a_2", "p_b_1", "p_b_2"]], 0.5)
    assert (df["rt"] > 0).all()


def test_dezfouli_against_string_split(raw, tables):
    df = tables["dezfouli2019"]
    by = df.groupby("subject")
    for p in raw["dezfouli2019"]:
        lines = _trial_lines(p)
        sub = by.get_group(p.participant)
        first = p.text.split("two options: ")[1].split(".")[0].split(" and ")[0]
        pressed = [line.split("<<")[1].split(">>")[0] for line in lines]
        assert list(sub["choice"]) == [0 if k == first else 1 for k in pressed]
        assert list(sub["reward"]) == [0.0 if "received no food" in line else 1.0 for line in lines]
        assert list(sub["block"]) == [int(line.split(":")[0].split()[1]) for line in lines]
        assert set(sub["population"]) == {p.fields["diagnosis"]}
    assert df.groupby("population")["subject"].nunique().to_dict() == {"Bipolar": 33, "Depression": 34, "Healthy": 34}
    assert (df.groupby("subject")["block"].agg(lambda b: sorted(set(b)) == list(range(1, 13)))).all()
    assert "rt" not in df.columns


def test_guenther_keys_and_lexicality(raw, tables):
    df = tables["guenther2020LDT"]
    by = df.groupby("subject")
    yes_counts, seen = collections.Counter(), collections.Counter()
    for p in raw["guenther2020LDT"]:
        yes_key = p.text.split("exists, press the ")[1].split(" key")[0]
        lines = _trial_lines(p)
        sub = by.get_group(str(p.participant))
        items = [line.split(". You press")[0] for line in lines]
        keys = [line.split("<<")[1].split(">>")[0] for line in lines]
        assert list(sub["item"]) == items and list(sub["response"]) == keys
        assert list(sub["choice"]) == [int(k == yes_key) for k in keys]
        assert np.array_equal(sub["rt"].to_numpy(), np.asarray(p.rts) / 1000)
        assert set(sub["age"]) == {p.fields["age"]}
        for item, k in zip(items, keys, strict=True):
            seen[item] += 1
            yes_counts[item] += k == yes_key
    items = df.drop_duplicates("item").set_index("item")
    for item in list(seen)[:300]:
        share = yes_counts[item] / seen[item]
        assert items.loc[item, "p_exists"] == pytest.approx(share)
        assert items.loc[item, "n_raters"] == seen[item]
        assert items.loc[item, "condition"] == ("word" if share > 0.5 else "nonword" if share < 0.5 else "tie")
    assert items["condition"].value_counts().to_dict() == {"nonword": 1681, "word": 1314, "tie": 23}
    assert (df["rt"] <= 0).sum() == 11 and df["exclude"].sum() == 11  # kept as recorded, flagged
    assert list(df.loc[df["exclude"], "subject"].unique()) == ["19", "30", "32"]


# ---- errors name the participant and the line ------------------------------------------------

SPEKTOR = psych201.get_adapter("spektor2024lossaversion")
HEAD = "The lotteries' names are S and Q.\n\nSession 1:\n"
LINE = ("The outcomes of lottery S are -9 with 50% chance and 16 with 50% chance. The outcomes of "
        "lottery Q are -15 with 50% chance and 22 with 50% chance. You choose <<{}>>.")


def _spektor(body: str, head: str = HEAD) -> Participant:
    return Participant("spektor2024lossaversion/exp1.csv", 9, head + body)


@pytest.mark.parametrize("body, head, match", [
    (LINE.format("Q") + "\n" + LINE.format("Q").replace("lottery Q are", "lottery Q is"), HEAD,
     r"participant 9 line 5: cannot parse 'The outcomes"),
    (LINE.format("Q") + "\n" + LINE.format("Z"), HEAD,
     r"participant 9 line 5: response 'Z' is neither lottery S nor Q"),
    (LINE.format("Q"), "The lotteries' names are S and R.\n",
     r"participant 9 line 2: lotteries S, Q are not the instructions' S, R"),
    (LINE.format("Q"), "Choose.\n", r"participant 9: the instructions do not match"),
    (LINE.format("Q") + "\nA stray remark.", HEAD, r"participant 9 line 5: cannot parse 'A stray remark.'"),
    (LINE.format("Q"), "Type <<S>> or <<Q>>. " + HEAD, r"participant 9: parsed 1 trials but the text has 3"),
])
def test_unparsable_lines_raise(body, head, match):
    with pytest.raises(TranscriptError, match=match):
        psych201.read([_spektor(body, head)], SPEKTOR)


def test_duplicate_subject_and_unknown_adapter():
    p = _spektor(LINE.format("Q"))
    with pytest.raises(TranscriptError, match="subject id 'exp1/9' repeats"):
        psych201.read([p, p], SPEKTOR)
    with pytest.raises(KeyError, match="no adapter for experiment 'nope'"):
        psych201.read([p], "nope")
    with pytest.raises(KeyError, match=r"experiment field 'dezfouli//Users/x.csv'; pass adapter=, one of dezfouli2019"):
        psych201.read([p._replace(experiment="dezfouli//Users/x.csv")])


def test_dezfouli_and_guenther_bad_responses():
    dez = psych201.get_adapter("dezfouli2019")
    text = psych201.render(pd.DataFrame({"subject": ["s1"], "trial": [0], "choice": [1], "reward": [1.0],
                                         "population": ["Healthy"]}), dez)[0].text
    bad = Participant("dezfouli2019", "s1", text.replace("<<R>>", "<<X>>"), None, {"diagnosis": "Healthy"})
    with pytest.raises(TranscriptError, match=r"participant 's1' line 6: response 'X' is neither option L nor R"):
        psych201.read([bad], dez)
    with pytest.raises(TranscriptError, match=r"participant 's1': missing field 'diagnosis' \(column 'population'\)"):
        psych201.read([bad._replace(fields={})], dez)
    g = psych201.get_adapter("guenther2020LDT")
    text = psych201.render(pd.DataFrame({"subject": ["4"], "trial": [0], "item": ["doorman"], "choice": [1],
                                         "age": [20]}), g)[0].text
    bad = Participant("guenther2020LDT", 4, text.replace("<<Y>>", "<<Q>>"), None, {"age": 20})
    with pytest.raises(TranscriptError, match=r"participant 4 line 7: response 'Q' is neither the 'exists' key Y"):
        psych201.read([bad], g)


@pytest.mark.parametrize("experiment, model, n_excluded", [
    ("spektor2024lossaversion", "cpt", 0), ("dezfouli2019", "bandit_rw_blocks", 0), ("guenther2020LDT", "ddm", 11)])
def test_tables_pack_for_their_models(tables, experiment, model, n_excluded):
    import cogfit

    df = tables[experiment]
    data = cogfit.TrialData.from_table(df, cogfit.models.get(model))
    assert data.excluded == n_excluded
    assert int(np.asarray(data.fields["mask"]).sum()) == len(df) - n_excluded
    assert len(data.subjects) == df["subject"].nunique()


def test_the_documented_adapter_example_works(monkeypatch):
    """The ~30-line adapter in the module docstring of cogfit.psych201._adapter runs as written."""
    from cogfit.psych201 import _adapter

    monkeypatch.setattr(_adapter, "_ADAPTERS", dict(_adapter._ADAPTERS))
    doc = _adapter.__doc__
    code = doc[doc.index("Writing an adapter for another experiment") :].split("::\n", 1)[1]
    code = "\n".join(line[4:] for line in code.split("\n\nThen")[0].split("\n"))
    exec(compile(code, "adapter-example", "exec"), {})
    text = ("Press J to accept and F to reject a gamble.\n\nBlock 1:\nYou can win 12 points. You press <<J>>.\n"
            "You can win -3.5 points. You press <<F>>.\n\nBlock 2:\nYou can win 7 points. You press <<F>>.\n")
    p = Participant("myexperiment2025", 1, text, (900, 1200, 650), {"age": 44})
    df = psych201.read([p])  # the adapter is found from the experiment field
    assert list(df["choice"]) == [0, 1, 1] and list(df["gain"]) == [12.0, -3.5, 7.0]
    assert list(df["block"]) == [1, 1, 2] and list(df["rt"]) == [0.9, 1.2, 0.65] and set(df["age"]) == {44}
    (back,) = psych201.render(df, "myexperiment2025")
    assert back.text == text and back.rts == (900, 1200, 650) and back.fields == {"age": 44}
    with pytest.raises(TranscriptError, match=r"participant 1 line 5: response 'K' is neither J nor F"):
        psych201.read([p._replace(text=text.replace("<<F>>", "<<K>>", 1))])


def test_codings_have_face_validity(tables):
    """Behaviour that any correct coding shows (a swapped choice or reward code would fail)."""
    df = tables["spektor2024lossaversion"]
    ev_a = df.x_a_1 * df.p_a_1 + df.x_a_2 * df.p_a_2
    ev_b = df.x_b_1 * df.p_b_1 + df.x_b_2 * df.p_b_2
    differ = ev_a != ev_b
    assert ((ev_b > ev_a) == (df.choice == 1))[differ].mean() > 0.7  # measured 0.756 on 6,850 trials

    dz = tables["dezfouli2019"]
    g = dz.groupby("subject")
    same_block = g["block"].shift() == dz["block"]
    stay = dz["choice"] == g["choice"].shift()
    win, loss = (g["reward"].shift() == 1) & same_block, (g["reward"].shift() == 0) & same_block
    assert stay[win].mean() > stay[loss].mean() + 0.03  # win-stay 0.80 > lose-stay 0.73

    gu = tables["guenther2020LDT"]
    label = gu.drop_duplicates("item").set_index("item")["condition"]
    assert set(label[["sledgehammer", "doorman", "payroll", "shotgun", "password", "eggplant"]]) == {"word"}
    assert set(label[["censorlead", "comicshed", "doveore", "cheeseradish", "sawfuel", "doormilk"]]) == {"nonword"}
    rt = gu[~gu["exclude"]].groupby("condition")["rt"].median()
    assert rt["word"] < rt["nonword"] < rt["tie"]  # 0.775 s < 0.834 s < 0.953 s
