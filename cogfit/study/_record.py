"""``study.json``: what a study folder was made with (settings, seeds, versions, model hashes).

Written before the first step; a rerun into the same folder must ask for the same settings and
models (else an error names what differs), so that resumed steps never mix two studies.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("cogfit", "jax", "jaxlib", "numpyro", "arviz", "numpy", "pandas", "torch", "transformers", "tokenizers")


def versions() -> dict[str, str]:
    """Python, the platform and the installed versions of :data:`PACKAGES`."""
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def weights_sha256(lm: Any) -> str:
    """SHA-256 over the model's parameters (names, dtypes, shapes and bytes, in name order)."""
    import torch

    h = hashlib.sha256()
    for name, tensor in sorted(lm.model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(-1).view(dtype=torch.uint8).numpy().tobytes())
    return h.hexdigest()


def model_record(lm: Any, role: str, asked: str) -> dict[str, Any]:
    """One model's entry: its name, role (base / post-trained), what was asked for, its source
    manifest (registry models: GGUF and safetensors SHA-256) and the SHA-256 of its weights."""
    return {"name": lm.name, "role": role, "asked": asked, "source": lm.source,
            "weights_sha256": weights_sha256(lm), "device": str(lm.device), "max_tokens": lm.max_tokens}


def check_or_write(path: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Write ``record`` to ``path``; if the file exists, its settings and models must match."""
    if path.exists():
        old = json.loads(path.read_text())
        def same(m: dict) -> dict:   # where a model runs and how it was named may change
            return {k: v for k, v in m.items() if k not in ("device", "asked")}

        for key in ("settings", "models"):
            keep = [same(m) for m in old[key]] if key == "models" else old[key]
            new = [same(m) for m in record[key]] if key == "models" else record[key]
            if json.loads(json.dumps(new, default=str)) != keep:
                raise ValueError(f"{path}: this folder holds a study with other {key} ({keep}); now {new}. "
                                 "Use a new --out folder.")
        return old
    path.write_text(json.dumps(record, indent=1, default=str) + "\n")
    return record


def note_step(path: Path, step: str, seconds: float, *, done: bool = True, **info: Any) -> None:
    """Add a run's ``seconds`` on ``step`` to ``study.json``: ``wall_s`` sums every run that worked
    on the step (an interrupted one too), ``runs`` counts them, ``done`` says whether it finished;
    ``info``: other diagnostics, kept from the last run."""
    record = json.loads(path.read_text())
    old = record.setdefault("steps", {}).get(step, {})
    record["steps"][step] = {**old, **info, "wall_s": round(old.get("wall_s", 0.0) + seconds, 1),
                             "runs": old.get("runs", 0) + 1, "done": done}
    path.write_text(json.dumps(record, indent=1, default=str) + "\n")
