#!/bin/sh
# Wheels that benchmarks/device_run.py needs on the device machine beside its image: cogfit itself
# (built from this working tree; its model zoo is installed from models/) and ArviZ 1.x, which
# `import cogfit` needs and the image lacks (it has JAX, NumPyro, torch, transformers, xarray,
# pandas). Run here in the repository root, then carry `.whl` to the device with the command in
# benchmarks/RESULTS.md. PYTHON picks the interpreter (default .venv/bin/python).
set -eu
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
exclude=$(git rev-parse --git-path info/exclude)
grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >> "$exclude"
had_build=$([ -e build ] && echo yes || echo no)
rm -rf .whl
"$PY" -m pip wheel -q --no-deps --no-build-isolation -w .whl .
[ "$had_build" = yes ] || rm -rf build
# the ArviZ packages (and xarray-einstats, without which arviz-stats lacks ecdf) at the versions
# this environment runs, all pure Python
"$PY" -m pip download -q --no-deps -d .whl $("$PY" -m pip list --format=freeze | grep -iE '^(arviz(-base|-plots|-stats)?|xarray-einstats)==')
ls .whl
