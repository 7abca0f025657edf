"""benchmarks/device_run.py: the --smoke run measures every part on the CPU with every field
finite, and the runner's budget, skip and stop paths keep the figures measured so far."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "device_run.py"
sys.path.insert(0, str(SCRIPT.parent))

import device_run  # noqa: E402

# Every field each part's rows must have (written here, not read from the script).
FIELDS = {
    "wiener": {"trials", "subjects", "precision", "device", "trials_per_s", "compile_s", "seconds"},
    "nuts": {"subjects", "trials", "chains", "chain_method", "tune", "draws", "init", "pilot_steps", "precision",
             "device", "prep_s", "wall_s", "compile_s", "s_per_100_iterations", "leapfrog_steps_per_draw",
             "divergences", "min_ess_group", "ess_per_s", "max_rhat_group", "recovery"},
    "svi": {"model", "participants", "copies", "subjects", "choices", "populations", "steps", "precision", "device",
            "prep_s", "wall_s", "compile_s", "ms_per_step", "final_loss"},
    "batch": {"model", "datasets", "subjects", "trials", "choices", "steps", "precision", "device", "prep_s",
              "total_s", "compile_s", "ms_per_step", "finite_losses", "alpha_r", "beta_r"},
    "llm": {"architecture", "config", "parameters", "dtype", "device", "build_s", "sessions", "trials_per_session",
            "tokens", "tokens_per_s_batch1", "tokens_per_s_batch8", "tokens_per_s_batch32", "play_trials",
            "cached_forward_tokens", "recompute_forward_tokens", "cached_s", "recompute_s", "max_prob_difference"},
}


def numbers(x):
    if isinstance(x, dict):
        for v in x.values():
            yield from numbers(v)
    elif isinstance(x, (int, float)) and not isinstance(x, bool):
        yield x


def test_smoke_run_measures_every_part(tmp_path):
    out = tmp_path / "smoke.json"
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--out", str(out)], capture_output=True,
                         text=True, timeout=900, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    print(f"--smoke took {time.perf_counter() - t0:.0f} s")
    progress = [line for line in res.stdout.splitlines() if line.startswith("[")]
    assert [line.split("]")[0][1:] for line in progress] == list(FIELDS), res.stdout   # one line per part
    result = json.loads(out.read_text())
    assert result["stopped"] is None
    assert result["meta"]["preset"] == "smoke"
    assert result["meta"]["versions"]["jax"] and result["meta"]["versions"]["torch"]
    for name, fields in FIELDS.items():
        part = result["parts"][name]
        assert part["status"] == "done" and not part["skipped"], (name, part)
        assert part["rows"], name
        for row in part["rows"]:
            assert fields <= set(row), (name, fields - set(row))
            assert all(math.isfinite(v) for v in numbers(row)), (name, row)
            assert row.get("device", "").startswith("cpu"), row
    wiener = result["parts"]["wiener"]["rows"]
    assert {r["precision"] for r in wiener} == {"float32", "float64"}
    assert all(r["trials_per_s"] > 0 for r in wiener)
    nuts = result["parts"]["nuts"]["rows"][0]
    assert set(nuts["recovery"]) == {"v", "a", "z", "t"}
    assert nuts["leapfrog_steps_per_draw"] >= 1 and nuts["min_ess_group"] > 0
    assert result["parts"]["batch"]["rows"][0]["finite_losses"] is True
    llm = result["parts"]["llm"]["rows"]
    assert [r["architecture"] for r in llm] == ["gemma-3-270m", "SmolLM2-135M"]
    for r in llm:   # cached and re-read sessions give the same option probabilities (float32)
        assert r["cached_forward_tokens"] < r["recompute_forward_tokens"] and r["max_prob_difference"] < 1e-4


@pytest.fixture
def fake_parts(monkeypatch):
    """Parts that record one row each and then do what the test needs."""
    calls = []

    def make(name, then=None):
        def part(cfg, part):
            calls.append(name)
            part.add({"x": 1.0})
            if then:
                then()
            return "ok"
        monkeypatch.setattr(device_run.device_parts, name, part)
    return make, calls


def test_missing_dependency_and_spent_budget_skip_with_a_line(tmp_path, monkeypatch, capsys, fake_parts):
    make, calls = fake_parts
    make("wiener")
    monkeypatch.setitem(device_run.NEEDS, "llm", ("no_such_module_xyz",))
    out = tmp_path / "r.json"
    res = device_run.run(["wiener", "llm"], preset="smoke", total=200.0, budgets=dict(device_run.BUDGETS), out=str(out))
    assert calls == ["wiener"]
    # a part may use all the run's time that is not kept for the parts after it
    assert res["parts"]["wiener"]["budget_s"] == pytest.approx(200.0 - device_run.BUDGETS["llm"], abs=0.5)
    assert res["parts"]["llm"]["status"] == "skipped"
    assert "no_such_module_xyz" in res["parts"]["llm"]["skipped"][0]["why"]
    assert "[llm] skipped: needs no_such_module_xyz (not installed)" in capsys.readouterr().out
    assert json.loads(out.read_text())["parts"]["wiener"]["rows"] == [{"x": 1.0}]
    res = device_run.run(["wiener"], preset="smoke", total=0.0, budgets=dict(device_run.BUDGETS), out=None)
    assert res["parts"]["wiener"]["status"] == "skipped" and calls == ["wiener"]


def test_part_budget_stops_a_part_and_the_next_one_runs(tmp_path, fake_parts):
    make, calls = fake_parts

    def spin():
        while True:
            time.sleep(0.01)

    make("wiener", spin)
    make("nuts")
    budgets = {**device_run.BUDGETS, "wiener": 0.3, "nuts": 5.0}
    res = device_run.run(["wiener", "nuts"], preset="smoke", total=5.3, budgets=budgets, out=str(tmp_path / "r.json"))
    assert res["parts"]["wiener"]["status"] == "stopped" and res["parts"]["wiener"]["rows"] == [{"x": 1.0}]
    assert res["parts"]["nuts"]["status"] == "done" and calls == ["wiener", "nuts"]
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_sigterm_keeps_the_figures_measured_so_far(tmp_path, fake_parts):
    make, calls = fake_parts
    make("wiener")
    make("nuts", lambda: os.kill(os.getpid(), signal.SIGTERM))
    make("svi")
    out = tmp_path / "r.json"
    before = signal.getsignal(signal.SIGTERM)
    device_run.run(["wiener", "nuts", "svi"], preset="smoke", total=100.0, budgets=dict(device_run.BUDGETS),
                   out=str(out))
    written = json.loads(out.read_text())
    assert written["stopped"] == "SIGTERM" and calls == ["wiener", "nuts"]
    assert written["parts"]["wiener"]["status"] == "done"
    assert written["parts"]["nuts"]["status"] == "stopped" and written["parts"]["nuts"]["rows"] == [{"x": 1.0}]
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_failing_part_is_recorded_and_the_run_goes_on(fake_parts):
    make, calls = fake_parts

    def boom():
        raise RuntimeError("out of memory")

    make("wiener", boom)
    make("nuts")
    res = device_run.run(["wiener", "nuts"], preset="smoke", total=100.0, budgets=dict(device_run.BUDGETS), out=None)
    assert res["parts"]["wiener"]["status"] == "failed" and "out of memory" in res["parts"]["wiener"]["error"]
    assert res["parts"]["nuts"]["status"] == "done"
