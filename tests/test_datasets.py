"""Named data sets: registry, mirror, checksummed download into the cache (local server only)."""

import dataclasses
import functools
import hashlib
import http.server
import socket
import threading
from pathlib import Path

import pandas as pd
import pytest
from conftest import data_mirror

from cogfit import datasets, psych201
from cogfit.datasets import ChecksumError, DatasetUnavailableError, _fetch

MIRROR = data_mirror()   # COGFIT_DATA_MIRROR (see conftest), read before any test unsets it
NAMES = ["psych201/dezfouli2019", "psych201/guenther2020LDT", "psych201/spektor2024lossaversion"]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No test reads the user's cache or mirror settings (the mirror's files come from ``MIRROR``)."""
    monkeypatch.setenv("COGFIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("COGFIT_DATA_MIRROR", raising=False)


def test_registry_entries():
    assert datasets.available() == NAMES
    commit = datasets.get(NAMES[0]).url.split("/raw/")[1].split("/")[0]
    assert len(commit) == 40                                           # pinned to one commit
    source = MIRROR / "psych201" / "SOURCE_COMMIT"                     # the mirror records its commit
    assert not source.exists() or source.read_text().split()[0] == commit
    for name in NAMES:
        ds = datasets.get(name)
        experiment = name.split("/")[1]
        assert ds.url == f"https://github.com/marcelbinz/Psych-201/raw/{commit}/{experiment}/prompts.jsonl.zip"
        # the registry's checksum is the one of the shared copy (independently hashed here)
        assert ds.sha256 == hashlib.sha256((MIRROR / ds.path).read_bytes()).hexdigest()
        assert ds.license.startswith("Apache-2.0")
        assert "doi.org" in ds.citation
        text = datasets.describe(name)
        for part in (ds.url, ds.sha256, ds.citation, ds.license):
            assert part in text
    table = datasets.citations()
    assert list(table["name"]) == NAMES and {"citation", "url", "sha256", "license"} <= set(table.columns)
    with pytest.raises(KeyError, match="unknown data set 'psych201/nope'; available: psych201/dezfouli2019"):
        datasets.get("psych201/nope")


def test_load_from_mirror_argument_and_env(monkeypatch, tmp_path):
    name = "psych201/spektor2024lossaversion"
    first = datasets.load(name, mirror=MIRROR)  # the table itself is checked in test_psych201_adapters
    assert first.shape == (73250, 18) and first["subject"].nunique() == 282
    parsed = list((tmp_path / "cache" / "parsed").rglob("*.pkl"))
    assert len(parsed) == 1 and datasets.get(name).sha256[:16] in parsed[0].name
    monkeypatch.setenv("COGFIT_DATA_MIRROR", str(MIRROR))
    pd.testing.assert_frame_equal(datasets.load(name), first)  # from the parsed cache
    assert datasets.path(name) == MIRROR / datasets.get(name).path
    assert not (tmp_path / "cache" / "psych201").exists()  # a mirror is read in place, not copied


def test_parsed_cache_is_checked(monkeypatch, tmp_path):
    """A small data set (5 participants) through load(): parsed once, damaged cache rebuilt."""
    src = MIRROR / "psych201/dezfouli2019/prompts.jsonl.zip"
    small = tmp_path / "mirror" / "psych201/small/prompts.jsonl.zip"
    small.parent.mkdir(parents=True)
    psych201.write_jsonl(psych201.read_jsonl(src)[:5], small)
    ds = dataclasses.replace(datasets.get("psych201/dezfouli2019"), name="psych201/small",
                             path="psych201/small/prompts.jsonl.zip", sha256=datasets.sha256(small))
    monkeypatch.setitem(datasets._registry._DATASETS, ds.name, ds)
    direct = psych201.read(small, "dezfouli2019")
    assert direct["subject"].nunique() == 5
    pd.testing.assert_frame_equal(datasets.load(ds.name, mirror=tmp_path / "mirror"), direct)
    (parsed,) = (tmp_path / "cache" / "parsed").rglob("*.pkl")
    parsed.write_bytes(b"garbage")  # a damaged parsed table is rebuilt, not trusted
    pd.testing.assert_frame_equal(datasets.load(ds.name, mirror=tmp_path / "mirror"), direct)
    pd.testing.assert_frame_equal(pd.read_pickle(parsed), direct)
    pd.testing.assert_frame_equal(datasets.load(ds.name, mirror=tmp_path / "mirror", cache=False), direct)
    (tmp_path / "blocked").mkdir()
    (tmp_path / "blocked" / "parsed").write_text("a file where the cache wants a folder")
    with pytest.warns(UserWarning, match="could not keep the parsed table"):  # an unwritable cache
        table = datasets.load(ds.name, mirror=tmp_path / "mirror", cache_dir=tmp_path / "blocked")
    pd.testing.assert_frame_equal(table, direct)


def test_mirror_errors(tmp_path):
    name = "psych201/spektor2024lossaversion"
    ds = datasets.get(name)
    with pytest.raises(DatasetUnavailableError, match=f"has no {ds.path} \\(upstream: {ds.url}\\)"):
        datasets.load(name, mirror=tmp_path / "empty")
    bad = tmp_path / "bad"
    (bad / ds.path).parent.mkdir(parents=True)
    (bad / ds.path).write_bytes((MIRROR / ds.path).read_bytes()[:1000])
    with pytest.raises(ChecksumError, match=f"expected {ds.sha256}"):
        datasets.load(name, mirror=bad)


# ---- downloads, from a local HTTP server only ------------------------------------------------

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving ``tmp_path / 'www'``; yields its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _served(server, body: bytes):
    root, base = server
    ds = datasets.get("psych201/guenther2020LDT")
    (root / "prompts.jsonl.zip").write_bytes(body)
    return dataclasses.replace(ds, url=f"{base}/prompts.jsonl.zip")


def _leftovers(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []


def test_download_verify_and_reuse(server, tmp_path):
    good = (MIRROR / "psych201/guenther2020LDT/prompts.jsonl.zip").read_bytes()
    ds = _served(server, good)
    cache = tmp_path / "cache"
    path = _fetch.fetch(ds)
    assert path == cache / ds.path and path.read_bytes() == good
    assert _leftovers(cache) == [path]  # no temporary files left
    (server[0] / "prompts.jsonl.zip").unlink()  # the server no longer has it: the cache is used
    assert _fetch.fetch(ds) == path


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_bad_download_does_not_poison_the_cache(server, tmp_path, damage):
    good = (MIRROR / "psych201/guenther2020LDT/prompts.jsonl.zip").read_bytes()
    body = good[: len(good) // 2] if damage == "truncated" else good[:100] + b"\x00" + good[101:]
    ds = _served(server, body)
    with pytest.raises(ChecksumError, match=f"the download of {ds.url} has SHA-256"):
        _fetch.fetch(ds)
    assert _leftovers(tmp_path / "cache") == []
    (server[0] / "prompts.jsonl.zip").write_bytes(good)  # upstream fixed: the next fetch succeeds
    assert _fetch.fetch(ds).read_bytes() == good


def test_corrupt_cached_file_is_replaced(server, tmp_path):
    good = (MIRROR / "psych201/guenther2020LDT/prompts.jsonl.zip").read_bytes()
    ds = _served(server, good)
    target = tmp_path / "cache" / ds.path
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not the file")
    with pytest.warns(UserWarning, match="deleting it and downloading again"):
        assert _fetch.fetch(ds).read_bytes() == good


def test_offline_error_names_url_and_mirror(server, tmp_path):
    ds = _served(server, b"")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ds = dataclasses.replace(ds, url=f"http://127.0.0.1:{port}/prompts.jsonl.zip")
    with pytest.raises(DatasetUnavailableError, match=f"cannot download {ds.url}.*COGFIT_DATA_MIRROR.*{ds.path}"):
        _fetch.fetch(ds)
    missing = dataclasses.replace(ds, url=f"{server[1]}/missing.zip")  # HTTP 404
    with pytest.raises(DatasetUnavailableError, match="404"):
        _fetch.fetch(missing)
    assert _leftovers(tmp_path / "cache") == []


def test_load_downloads_through_the_registry(server, tmp_path, monkeypatch):
    name = "psych201/guenther2020LDT"
    small = tmp_path / "small.zip"
    psych201.write_jsonl(psych201.read_jsonl(MIRROR / datasets.get(name).path)[:3], small)
    ds = dataclasses.replace(_served(server, small.read_bytes()), sha256=datasets.sha256(small))
    monkeypatch.setitem(datasets._registry._DATASETS, name, ds)
    table = datasets.load(name, cache_dir=tmp_path / "elsewhere")
    assert (tmp_path / "elsewhere" / ds.path).read_bytes() == small.read_bytes()
    assert table.shape == (1560, 13) and table["subject"].nunique() == 3


def test_cache_dir_defaults(monkeypatch, tmp_path):
    monkeypatch.delenv("COGFIT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert datasets.cache_root() == tmp_path / "xdg" / "cogfit"
    assert datasets.cache_root(tmp_path / "x") == tmp_path / "x"
    assert datasets.mirror_dir() is None
