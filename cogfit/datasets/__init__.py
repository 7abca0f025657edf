"""Named real data sets, loaded reproducibly as tidy trial tables.

``load("psych201/spektor2024lossaversion")`` fetches the file (from a mirror folder, the cache,
or its pinned upstream URL), checks its SHA-256 and returns the tidy table of its adapter
(:mod:`cogfit.psych201`). ``available()`` lists the names, ``describe(name)`` and
``citations()`` say where each comes from and what to cite. Set ``COGFIT_DATA_MIRROR`` (or pass
``mirror=``) to a folder laid out as ``<mirror>/psych201/<experiment>/prompts.jsonl.zip`` to
work offline.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import warnings
from pathlib import Path

import pandas as pd

from cogfit.datasets._fetch import (
    CACHE_ENV,
    MIRROR_ENV,
    ChecksumError,
    DatasetUnavailableError,
    cache_root,
    fetch,
    mirror_dir,
    sha256,
)
from cogfit.datasets._registry import Dataset, available, get, register


def _parser_key() -> str:
    """Hash of the transcript-reading code: a parsed table is reused only by the same code."""
    import cogfit.psych201 as p

    h = hashlib.sha256()
    for f in sorted(Path(p.__file__).parent.glob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def path(name: str, *, mirror: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None) -> Path:
    """Local path of the verified raw file of data set ``name`` (downloading it if needed)."""
    return fetch(get(name), mirror=mirror, cache_dir=cache_dir)


def load(
    name: str,
    *,
    mirror: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    cache: bool = True,
) -> pd.DataFrame:
    """The tidy trial table of data set ``name``.

    Parameters
    ----------
    name
        One of :func:`available`, e.g. ``"psych201/dezfouli2019"``.
    mirror
        Folder to read the file from instead of downloading (default ``$COGFIT_DATA_MIRROR``).
    cache_dir
        Where downloads and parsed tables are kept (default ``$COGFIT_CACHE_DIR`` or the user
        cache directory).
    cache
        Keep the parsed table next to the cache (keyed by the file's SHA-256 and the parser's
        code) so later loads take milliseconds.

    Returns
    -------
    One row per trial with ``subject``, ``trial``, ``choice`` and the columns of the data set's
    model (``get(name).model``); see :mod:`cogfit.psych201` for each experiment's columns.
    """
    ds = get(name)
    raw = fetch(ds, mirror=mirror, cache_dir=cache_dir)
    if not cache:
        return ds.reader(raw)
    parsed = cache_root(cache_dir) / "parsed" / f"{ds.path}.{ds.sha256[:16]}.{_parser_key()}.pkl"
    if parsed.is_file():
        try:
            with open(parsed, "rb") as f:
                table = pickle.load(f)
            if isinstance(table, pd.DataFrame):
                return table
        except Exception:  # any damaged or incompatible pickle is rebuilt from the verified file
            pass
        parsed.unlink()
    table = ds.reader(raw)
    try:
        _save(table, parsed)
    except OSError as err:  # a read-only cache only costs speed
        warnings.warn(f"could not keep the parsed table in {parsed} ({err})", stacklevel=2)
    return table


def _save(table: pd.DataFrame, target: Path) -> None:
    """Pickle ``table`` to ``target`` atomically (temporary file, then rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(table, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def describe(name: str) -> str:
    """A few lines on data set ``name``: description, source URL, SHA-256, license, citation."""
    ds = get(name)
    return "\n".join(
        [
            f"{ds.name}: {ds.description}",
            f"  model:    {ds.model}",
            f"  source:   {ds.url}",
            f"  sha256:   {ds.sha256}",
            f"  license:  {ds.license}",
            f"  citation: {ds.citation}",
        ]
    )


def citations() -> pd.DataFrame:
    """One row per data set: name, model, description, license, citation, url, sha256."""
    rows = [
        {k: getattr(get(n), k) for k in ("name", "model", "description", "license", "citation", "url", "sha256")}
        for n in available()
    ]
    return pd.DataFrame(rows)


__all__ = [
    "CACHE_ENV",
    "MIRROR_ENV",
    "ChecksumError",
    "Dataset",
    "DatasetUnavailableError",
    "available",
    "cache_root",
    "citations",
    "describe",
    "get",
    "load",
    "mirror_dir",
    "path",
    "register",
    "sha256",
]
