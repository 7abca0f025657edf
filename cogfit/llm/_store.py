"""Results written incrementally, one JSON line per finished participant, so runs resume.

The first line records the settings of the run; resuming with other settings raises rather
than mixing results. A half-written last line (an interrupted write) is dropped with a
warning and that participant is redone.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from typing import Any

import numpy as np
import pandas as pd


def _key(experiment: Any, participant: Any) -> str:
    return json.dumps([str(experiment), _clean(participant)], default=str)


def _clean(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


class Store:
    """Append-only JSONL of ``{"key": [experiment, participant], "rows": [...]}`` lines.

    ``path=None`` keeps everything in memory (no resume).
    """

    def __init__(self, path: str | os.PathLike | None, settings: dict[str, Any]):
        self.path = None if path is None else os.fspath(path)
        self.rows: list[dict[str, Any]] = []
        self.done: set[str] = set()
        settings = json.loads(json.dumps(settings, default=str))
        if self.path is None:
            return
        if not os.path.exists(self.path) or os.path.getsize(self.path) == 0:
            with open(self.path, "w") as f:
                f.write(json.dumps({"settings": settings}) + "\n")
            return
        with open(self.path) as f:
            lines = f.read().split("\n")
        good = 0
        for n, line in enumerate(lines):
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                if n >= len(lines) - 2:  # only the last line may be half written
                    warnings.warn(f"{self.path}: dropping a half-written last line; that participant "
                                  "is redone", stacklevel=3)
                    break
                raise ValueError(f"{self.path} line {n + 1}: not valid JSON") from None
            if n == 0:
                if obj.get("settings") != settings:
                    raise ValueError(f"{self.path}: written with other settings {obj.get('settings')}; "
                                     f"now {settings}. Use a new file.")
            else:
                self.done.add(_key(*obj["key"]))
                self.rows += obj["rows"]
            good += len(line) + 1
        with open(self.path, "r+") as f:
            f.truncate(good)

    def has(self, experiment: Any, participant: Any) -> bool:
        return _key(experiment, participant) in self.done

    def add(self, experiment: Any, participant: Any, rows: list[dict[str, Any]]) -> None:
        rows = [{k: _clean(v) for k, v in r.items()} for r in rows]
        self.rows += rows
        self.done.add(_key(experiment, participant))
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(json.dumps({"key": [str(experiment), _clean(participant)], "rows": rows}) + "\n")
                f.flush()

    def table(self, columns: list[str] | None = None) -> pd.DataFrame:
        table = pd.DataFrame(self.rows)
        if columns is not None and table.empty:
            table = pd.DataFrame(columns=columns)
        return table
