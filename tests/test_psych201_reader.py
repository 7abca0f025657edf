"""Reading Psych-201 JSONL files: plain and zipped, RTs as numbers or strings, clear errors."""

import io
import json
import math
import zipfile

import pytest

from cogfit.psych201 import Participant, TranscriptError, extract_responses, read_jsonl, responses_table, write_jsonl

TEXT = "Pick A or B.\nYou pick <<A>>.\nYou pick <<B>>.\n"


def _write(tmp_path, objs, name="p.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(o) + "\n" for o in objs))
    return path


def test_extract_responses_offsets():
    rs = extract_responses(TEXT)
    assert [r.text for r in rs] == ["A", "B"]
    assert [r.index for r in rs] == [0, 1]
    for r in rs:
        assert TEXT[r.start : r.end] == r.text
        assert TEXT[: r.start].endswith("<<")


def test_plain_and_zip_with_macos_fork(tmp_path):
    objs = [
        {"text": TEXT, "experiment": "x", "participant": 1, "RTs": [1200, "830.5"], "age": 30},
        {"text": TEXT, "experiment": "x", "participant": "p2", "RTs": [None, 10], "diagnosis": "Healthy"},
    ]
    plain = _write(tmp_path, objs)
    zipped = tmp_path / "p.jsonl.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("prompts.jsonl", plain.read_text())
        z.writestr("__MACOSX/._prompts.jsonl", b"\x00\x05\x16\x07junk")
    for source in (plain, zipped, str(plain), io.StringIO(plain.read_text())):
        ps = read_jsonl(source)
        assert [p.participant for p in ps] == [1, "p2"]
        assert ps[0].rts == (1200.0, 830.5)
        assert math.isnan(ps[1].rts[0]) and ps[1].rts[1] == 10.0
        assert ps[0].fields == {"age": 30} and ps[1].fields == {"diagnosis": "Healthy"}
        assert ps[0].text == TEXT


def test_without_rts(tmp_path):
    (p,) = read_jsonl(_write(tmp_path, [{"text": TEXT, "experiment": "x", "participant": 3}]))
    assert p.rts is None


@pytest.mark.parametrize(
    "obj, match",
    [
        ({"text": TEXT, "experiment": "x", "participant": 7, "RTs": [1, "fast"]}, r"participant 7.*RTs\[1\] = 'fast'"),
        ({"text": TEXT, "experiment": "x", "participant": 7, "RTs": [1]}, r"participant 7.*1 RTs for 2"),
        ({"text": TEXT, "experiment": "x", "participant": 7, "RTs": "12"}, r"participant 7.*RTs must be a list"),
        ({"text": TEXT, "experiment": "x", "participant": 7, "RTs": [1, True]}, r"RTs\[1\] = True"),
        ({"text": TEXT, "participant": 7}, r"line 2: missing field\(s\) \['experiment'\]"),
        ({"text": 5, "experiment": "x", "participant": 7}, r"line 2: field 'text' is int"),
    ],
)
def test_bad_participants_name_line_and_participant(tmp_path, obj, match):
    good = {"text": TEXT, "experiment": "x", "participant": 1}
    with pytest.raises(TranscriptError, match=match):
        read_jsonl(_write(tmp_path, [good, obj]))


def test_bad_json_names_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"text": TEXT, "experiment": "x", "participant": 1}) + "\n{not json\n")
    with pytest.raises(TranscriptError, match=r"bad.jsonl line 2: not valid JSON"):
        read_jsonl(path)


def test_zip_needs_exactly_one_jsonl(tmp_path):
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.jsonl", "")
        z.writestr("b.jsonl", "")
    with pytest.raises(TranscriptError, match=r"expected one \.jsonl file in the zip"):
        read_jsonl(path)


@pytest.mark.parametrize("name", ["out.jsonl", "out.jsonl.zip"])
def test_write_read_round_trip(tmp_path, name):
    ps = [
        Participant("x", 1, TEXT, (1200.0, 830.5), {"age": 30}),
        Participant("x", "p2", TEXT, (math.nan, 10.0), {}),
        Participant("x", 3, TEXT, None, {"diagnosis": "Bipolar"}),
    ]
    back = read_jsonl(write_jsonl(ps, tmp_path / name))
    assert [(p.experiment, p.participant, p.text, p.fields) for p in back] == [
        (p.experiment, p.participant, p.text, p.fields) for p in ps
    ]
    assert back[0].rts == ps[0].rts and back[2].rts is None
    assert math.isnan(back[1].rts[0]) and back[1].rts[1] == 10.0


def test_responses_table_positions_and_rts():
    ps = [Participant("x", 1, TEXT, (1200.0, 830.5)), Participant("x", "b", "<<yes>> then <<no>>")]
    df = responses_table(ps)
    assert list(df["response"]) == ["A", "B", "yes", "no"]
    assert list(df["index"]) == [0, 1, 0, 1] and list(df["participant"]) == [1, 1, "b", "b"]
    assert list(df["rt"][:2]) == [1.2, 0.8305] and df["rt"][2:].isna().all()
    for row in df.itertuples():
        text = TEXT if row.participant == 1 else ps[1].text
        assert text[row.start : row.end] == row.response and text[row.end : row.end + 2] == ">>"
