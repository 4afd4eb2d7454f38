"""Health, workers, dashboard figures and Prometheus metrics."""

from __future__ import annotations

import os
import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse

from deltadb_dialect.server import metrics
from deltadb_dialect.server.auth import Principal, can_read, is_admin
from deltadb_dialect.server.http import services

router = APIRouter(tags=["admin"])
VERSION = "1.0"


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness, no authentication (as in DeltaDatabase)."""
    return {"status": "ok"}


@router.get("/api/info")
async def info(request: Request) -> dict[str, Any]:
    """What the sign-in page needs to know before anyone signs in."""
    dev = services(request).auth.development_mode
    return {"server": "deltadb", "version": VERSION,
            "mode": "development" if dev else "production"}


@router.get("/admin/workers", dependencies=[Depends(is_admin)])
def list_workers(request: Request) -> list[dict[str, Any]]:
    return services(request).workers.list()


_size_cache: dict[str, tuple[float, int]] = {}


def store_size_bytes(path: str | None) -> int | None:
    """Bytes on disk under the store's path (a directory or a SQLite file and its journals)."""
    if not path:
        return None
    cached = _size_cache.get(path)
    if cached and time.monotonic() - cached[0] < 5:
        return cached[1]
    total = 0
    if os.path.isdir(path):
        for folder, _, files in os.walk(path):
            for name in files:
                try:
                    total += os.path.getsize(os.path.join(folder, name))
                except OSError:
                    continue  # removed while we walked
    else:
        for suffix in ("", "-wal", "-shm", "-journal"):
            if os.path.exists(path + suffix):
                total += os.path.getsize(path + suffix)
    _size_cache[path] = (time.monotonic(), total)
    return total


@router.get("/admin/stats")
def stats(request: Request, principal: Principal = Depends(can_read)) -> dict[str, Any]:
    """The dashboard's figures in one call (over the databases the caller may use)."""
    svc = services(request)
    databases = [d for d in svc.store.databases() if principal.may_use(d["name"])]
    return {
        "health": "ok",
        "mode": "development" if svc.auth.development_mode else "production",
        "databases": len(databases),
        "entities": sum(d["entities"] for d in databases),
        "store_size_bytes": store_size_bytes(svc.store_path),
        "cache": metrics.cache_summary(metrics.store_counters()),
        "workers": svc.workers.list(),
        "requests_served": svc.metrics.total_requests,
        "uptime_seconds": round(time.time() - svc.metrics.started, 1),
    }


@router.get("/metrics", response_class=PlainTextResponse)
async def prometheus_metrics(request: Request) -> PlainTextResponse:
    """Prometheus text format; aggregate figures only, so no authentication."""
    svc = services(request)
    databases = await run_in_threadpool(svc.store.databases)
    text = metrics.render(svc.metrics, sum(d["entities"] for d in databases), len(databases))
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
