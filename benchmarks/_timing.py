"""Shared timing helpers for the benchmark scripts: JAX compile time and peak memory."""

from __future__ import annotations

import resource
from collections import defaultdict

import jax

_EVENTS: defaultdict[str, float] = defaultdict(float)
# backend_compile_duration times ``compiler.compile_or_get_cached``, so it already includes
# reading a persistent-cache hit (cache_retrieval_time_sec is a part of it, not added to it).
_COMPILE = (
    "/jax/core/compile/backend_compile_duration",
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
)


def _listener(event: str, duration: float, **_) -> None:
    _EVENTS[event] += duration


jax.monitoring.register_event_duration_secs_listener(_listener)


def compile_seconds() -> float:
    """Seconds spent tracing, lowering, compiling or loading compiled programs so far."""
    return sum(_EVENTS[e] for e in _COMPILE)


def cache_hits() -> float:
    """Seconds spent reading programs from the persistent cache (included in compile_seconds)."""
    return _EVENTS["/jax/compilation_cache/cache_retrieval_time_sec"]


def peak_rss_gib() -> float:
    """Peak resident memory of this process (GiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
