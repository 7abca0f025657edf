"""The code base passes the project's ruff configuration (pyproject.toml: pyflakes, pycodestyle,
import order, 120 columns)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_passes():
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "cogfit", "models", "tests", "benchmarks"],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
