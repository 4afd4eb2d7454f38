"""Request counters and latency histograms, rendered in Prometheus' text format.

Counters are per worker process (each process answers /metrics with its own); store-level
counters (cache, encryption failures) come from ``deltadb_dialect.store_metrics()`` when the
store provides it.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Route labels are the first path segment from this list, so label cardinality stays bounded.
ROUTES = frozenset({
    "entity", "entities", "databases", "schema", "admin", "api", "health", "metrics",
    "openapi.json", "static",
})


def route_label(path: str) -> str:
    if path == "/":
        return "ui"
    first = path[1:].split("/", 1)[0]
    return first if first in ROUTES else "other"


class RequestMetrics:
    def __init__(self) -> None:
        self.started = time.time()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency_counts: dict[str, list[int]] = {}
        self.latency_sums: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            counts = self.latency_counts.get(route)
            if counts is None:
                counts = self.latency_counts[route] = [0] * (len(BUCKETS) + 1)
            counts[bisect.bisect_left(BUCKETS, seconds)] += 1
            self.latency_sums[route] += seconds

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())



class MetricsMiddleware:
    """Pure ASGI middleware (cheaper than Starlette's BaseHTTPMiddleware)."""

    def __init__(self, app: ASGIApp, metrics: RequestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            self.metrics.observe(scope["method"], route_label(scope["path"]), status,
                                 time.perf_counter() - start)


def store_counters() -> dict[str, float]:
    """The store's own counters, or an empty dict when the store does not report any."""
    try:
        import deltadb_dialect

        provider = getattr(deltadb_dialect, "store_metrics", None)
        counters = provider() if callable(provider) else {}
    except Exception:  # metrics must never take the endpoint down
        return {}
    return {k: v for k, v in dict(counters).items() if isinstance(v, int | float)}


def _counter(counters: dict[str, float], *names: str) -> float:
    for name in names:
        if name in counters:
            return counters[name]
    return 0


def cache_summary(counters: dict[str, float]) -> dict[str, float | None]:
    hits = _counter(counters, "cache_hits", "cache_hits_total")
    misses = _counter(counters, "cache_misses", "cache_misses_total")
    total = hits + misses
    return {"hits": hits, "misses": misses, "hit_rate": (hits / total) if total else None}


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render(metrics: RequestMetrics, entities: int | None, databases: int | None) -> str:
    counters = store_counters()
    cache = cache_summary(counters)
    lines = [
        "# HELP deltadb_http_requests_total HTTP requests served by this worker process.",
        "# TYPE deltadb_http_requests_total counter",
    ]
    with metrics._lock:
        requests = dict(metrics.requests)
        latency = {route: list(c) for route, c in metrics.latency_counts.items()}
        sums = dict(metrics.latency_sums)
    for (method, route, status), count in sorted(requests.items()):
        lines.append(
            f'deltadb_http_requests_total{{method="{method}",route="{route}",'
            f'status="{status}"}} {count}'
        )
    lines += [
        "# HELP deltadb_http_request_duration_seconds Time to answer a request.",
        "# TYPE deltadb_http_request_duration_seconds histogram",
    ]
    for route, counts in sorted(latency.items()):
        cumulative = 0
        for bound, count in zip((*BUCKETS, float("inf")), counts, strict=True):
            cumulative += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            lines.append(
                f'deltadb_http_request_duration_seconds_bucket{{route="{route}",le="{le}"}} '
                f"{cumulative}"
            )
        lines.append(f'deltadb_http_request_duration_seconds_sum{{route="{route}"}} '
                     f"{sums[route]:.6f}")
        lines.append(f'deltadb_http_request_duration_seconds_count{{route="{route}"}} '
                     f"{cumulative}")
    gauges_and_counters = [
        ("deltadb_cache_hits_total", "counter", "Store cache hits.", cache["hits"]),
        ("deltadb_cache_misses_total", "counter", "Store cache misses.", cache["misses"]),
        ("deltadb_encryption_failures_total", "counter",
         "Entities that failed to encrypt or to decrypt/authenticate.",
         _counter(counters, "encryption_failures", "encryption_failures_total",
                  "decryption_failures")),
        ("deltadb_entities", "gauge", "Entities in the store (rows of every database).",
         entities if entities is not None else 0),
        ("deltadb_databases", "gauge", "Databases in the store.",
         databases if databases is not None else 0),
        ("deltadb_process_start_time_seconds", "gauge", "When this worker process started.",
         metrics.started),
    ]
    for name, kind, help_text, value in gauges_and_counters:
        number = _number(value or 0)
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {number}"]
    for name, value in sorted(counters.items()):
        metric = "deltadb_store_" + "".join(c if c.isalnum() else "_" for c in name)
        lines += [f"# TYPE {metric} untyped", f"{metric} {_number(value)}"]
    return "\n".join(lines) + "\n"
