"""An immutable mapping with attribute access that JAX treats as a pytree.

Models receive their parameters as ``theta.lam`` and their trial data as ``trials.gain``:
named fields, never positional matrices.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import jax


@jax.tree_util.register_pytree_node_class
class Record(Mapping[str, Any]):
    """Frozen ``name -> array`` mapping; ``r.x`` is ``r["x"]``. Keys are kept in sorted order."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Mapping[str, Any] | None = None, /, **kwargs: Any):
        merged = dict(fields or {}, **kwargs)
        object.__setattr__(self, "_fields", {k: merged[k] for k in sorted(merged)})

    def __getattr__(self, name: str) -> Any:
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(
                f"no field {name!r}; available: {', '.join(self._fields)}"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Record is immutable; use r.replace(...)")

    def __getitem__(self, key: str) -> Any:
        return self._fields[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={getattr(v, 'shape', v)!r}" for k, v in self._fields.items())
        return f"Record({inner})"

    def __reduce__(self):
        """Pickle as the plain mapping (for process pools and Dask workers)."""
        return Record, (dict(self._fields),)

    def replace(self, **kwargs: Any) -> "Record":
        """A copy with some fields replaced or added."""
        return Record(self._fields, **kwargs)

    def tree_flatten(self):
        return tuple(self._fields.values()), tuple(self._fields)

    @classmethod
    def tree_unflatten(cls, keys, values):
        return cls(dict(zip(keys, values)))
