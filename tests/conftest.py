"""Test settings: a persistent JAX compilation cache and the local data mirror."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(ROOT / ".jax_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
_mirror = ROOT.parent / "shared" / "data"
if _mirror.is_dir():
    os.environ.setdefault("COGFIT_DATA_MIRROR", str(_mirror))
os.environ.setdefault("COGFIT_CACHE_DIR", str(ROOT / ".cogfit_cache"))
