"""Get a data set's file: from a mirror folder, from the cache, or by download; always checksummed.

Order: a mirror folder (argument ``mirror=`` or environment variable ``COGFIT_DATA_MIRROR``) is
read instead of the network; otherwise a verified copy in the cache directory (argument
``cache_dir=``, environment variable ``COGFIT_CACHE_DIR``, default ``$XDG_CACHE_HOME/cogfit``
or ``~/.cache/cogfit``) is used, or the file is downloaded into it. A download is written to a
temporary file and moved into place only after its SHA-256 matched, so a corrupt or truncated
transfer never poisons the cache; a cached copy that no longer matches is deleted and fetched
again.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
import warnings
from pathlib import Path

from cogfit.datasets._registry import Dataset

MIRROR_ENV = "COGFIT_DATA_MIRROR"
CACHE_ENV = "COGFIT_CACHE_DIR"
TIMEOUT_S = 60.0


class ChecksumError(OSError):
    """A file whose SHA-256 differs from the registry's."""


class DatasetUnavailableError(OSError):
    """The file is neither in the mirror nor in the cache and cannot be downloaded."""


def sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache directory: the argument, ``$COGFIT_CACHE_DIR``, or the user cache dir."""
    if cache_dir is not None:
        return Path(cache_dir)
    if env := os.environ.get(CACHE_ENV):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cogfit"


def mirror_dir(mirror: str | os.PathLike | None = None) -> Path | None:
    """The mirror folder: the argument or ``$COGFIT_DATA_MIRROR``; ``None`` when neither is set."""
    if mirror is not None:
        return Path(mirror)
    env = os.environ.get(MIRROR_ENV)
    return Path(env) if env else None


def _check(ds: Dataset, path: Path, origin: str) -> None:
    got = sha256(path)
    if got != ds.sha256:
        raise ChecksumError(
            f"{ds.name}: {origin} has SHA-256 {got}, expected {ds.sha256} "
            f"(corrupt, truncated or a different version of {ds.url})"
        )


def _download(ds: Dataset, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(ds.url, timeout=TIMEOUT_S) as response:
                    for block in iter(lambda: response.read(1 << 20), b""):
                        out.write(block)
            except (urllib.error.URLError, OSError) as err:
                raise DatasetUnavailableError(
                    f"{ds.name}: cannot download {ds.url} ({err}). Offline? Point mirror= or "
                    f"the environment variable {MIRROR_ENV} at a folder holding {ds.path}."
                ) from err
        _check(ds, Path(tmp), f"the download of {ds.url}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def fetch(
    ds: Dataset, *, mirror: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None
) -> Path:
    """Local path of the verified file of ``ds`` (see the module docstring for the order).

    Raises
    ------
    ChecksumError
        The mirror's copy or the download does not match the registry's SHA-256.
    DatasetUnavailableError
        The mirror lacks the file, or the download failed (the message names the URL and the
        mirror option).
    """
    root = mirror_dir(mirror)
    if root is not None:
        path = root / ds.path
        if not path.is_file():
            raise DatasetUnavailableError(
                f"{ds.name}: mirror {root} has no {ds.path} (upstream: {ds.url}); unset "
                f"{MIRROR_ENV} / mirror= to download it"
            )
        _check(ds, path, f"mirror file {path}")
        return path
    target = cache_root(cache_dir) / ds.path
    if target.is_file():
        try:
            _check(ds, target, f"cached file {target}")
            return target
        except ChecksumError as err:
            warnings.warn(f"{err}; deleting it and downloading again", stacklevel=2)
            target.unlink()
    _download(ds, target)
    return target
