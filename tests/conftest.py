"""Test settings: a persistent JAX compilation cache and the real data.

Tests that read the real Psych-201 files get their folder from :func:`data_mirror`: the folder
named by ``COGFIT_DATA_MIRROR`` (the README's variable; when it is unset, a ``shared/data``
folder beside this checkout, if there is one), else the files downloaded into the cache. Without
either, they fail with one line saying what is missing.
"""

import functools
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(ROOT / ".jax_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
_mirror = ROOT.parent / "shared" / "data"
if _mirror.is_dir():
    os.environ.setdefault("COGFIT_DATA_MIRROR", str(_mirror))
os.environ.setdefault("COGFIT_CACHE_DIR", str(ROOT / ".cogfit_cache"))


def find_data_mirror() -> Path:
    """A folder holding every registered data set's file at its registry path: the mirror, or the
    cache after downloading; ``pytest.fail`` (one line) when neither is possible."""
    from cogfit import datasets

    try:
        for name in datasets.available():
            datasets.path(name)                        # checksummed; downloads into the cache if needed
    except OSError as err:
        where = datasets.mirror_dir() or "unset"
        pytest.fail(f"real data unavailable (COGFIT_DATA_MIRROR: {where}; download failed): set "
                    f"COGFIT_DATA_MIRROR to a folder holding psych201/<experiment>/prompts.jsonl.zip "
                    f"or allow downloads. {str(err).splitlines()[0]}", pytrace=False)
    return datasets.mirror_dir() or datasets.cache_root()


@functools.cache
def data_mirror() -> Path:
    """:func:`find_data_mirror`, once per test session."""
    return find_data_mirror()
