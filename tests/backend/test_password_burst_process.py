"""A burst of sign-ins by strangers against a real uvicorn process with real Argon2 costs:
the server sheds what its password pool cannot take, and everyone else stays served."""

import asyncio
import secrets
import statistics
import time
from pathlib import Path

import httpx
import pytest
from live_server import live_process, memory_kib, service_env

BURST = 120


async def burst_of_logins(base: str) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=BURST, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        names = [f"stranger-{secrets.token_hex(6)}" for _ in range(BURST)]
        return await asyncio.gather(
            *(
                http.post("/api/auth/login", json={"username": n, "password": "guess-guess"})
                for n in names
            )
        )


async def health_latencies(base: str, stop: asyncio.Event) -> list[float]:
    """A second client timing /api/health every 50 ms until told to stop."""
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        while not stop.is_set():
            started = time.perf_counter()
            assert (await http.get("/api/health")).status_code == 200
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.05)
    return latencies


async def burst_while_timing_health(base: str) -> tuple[list[httpx.Response], list[float]]:
    stop = asyncio.Event()
    timer = asyncio.create_task(health_latencies(base, stop))
    await asyncio.sleep(0.3)  # a few quiet samples first
    responses = await burst_of_logins(base)
    await asyncio.sleep(0.3)
    stop.set()
    return responses, await timer


@pytest.mark.slow
def test_a_login_burst_is_shed_with_503_while_health_stays_fast(tmp_path: Path) -> None:
    env = {
        **service_env(tmp_path),
        # Anything but "test" hashes at the real cost (Argon2id, 64 MiB, t=3, p=4).
        "ENVIRONMENT": "development",
        # One address sends the whole burst: the per-address and global throttles would
        # answer 429 part-way; this test is about the password pool behind them.
        "LOGIN_ADDRESS_FREE_FAILURES": "100000",
        "LOGIN_GLOBAL_FAILURES_PER_MINUTE": "100000",
    }
    with live_process(tmp_path, env=env) as server:
        warm = httpx.post(f"{server.base}/api/auth/login", json={"username": "x", "password": "y"})
        assert warm.status_code == 401
        rss_before = memory_kib(server.pid, "VmRSS")
        responses, latencies = asyncio.run(burst_while_timing_health(server.base))
        peak = memory_kib(server.pid, "VmHWM")

    statuses = [r.status_code for r in responses]
    shed = [r for r in responses if r.status_code == 503]
    print(  # the figures, for the record (pytest -s)
        f"\n401: {statuses.count(401)}, 503: {len(shed)}; health p50 "
        f"{statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms "
        f"({len(latencies)} samples); RSS {rss_before // 1024} MiB before, "
        f"peak {peak // 1024} MiB"
    )
    assert set(statuses) <= {401, 503}, statuses
    assert shed, "no sign-in was shed: the pool queued the whole burst"
    assert all(r.headers.get("Retry-After") == "1" for r in shed)
    assert all("busy" in r.json()["detail"] for r in shed)
    assert statuses.count(401) >= 3  # the pool's threads and waiting room were served
    assert len(latencies) >= 5
    # Before the pool: 7.9 s (and 26 s on a quieter machine). The bound leaves room for a
    # busy test machine (2 cores shared with other work); typical here is 0.1-0.7 s.
    assert max(latencies) < 3.0, latencies
    assert (peak - rss_before) < 400 * 1024, (rss_before, peak)
