"""The password pool: a fixed number of threads, a bounded waiting room, then 503 at once."""

import asyncio
import os
import threading
import time

import pytest

from backend.core.password_pool import PasswordPool
from backend.services.errors import ServiceBusy


async def test_beyond_threads_and_waiting_room_callers_are_refused_at_once() -> None:
    pool = PasswordPool(threads=1, waiting=1)
    release = threading.Event()
    running = [asyncio.ensure_future(pool.run(release.wait)) for _ in range(2)]
    await asyncio.sleep(0.05)
    assert pool.admitted == 2
    started = time.monotonic()
    with pytest.raises(ServiceBusy) as refused:
        await pool.run(release.wait)
    assert time.monotonic() - started < 0.05
    assert refused.value.retry_after == 1 and refused.value.status_code == 503
    with pytest.raises(ServiceBusy):
        pool.admit()
    release.set()
    assert await asyncio.gather(*running) == [True, True]
    assert pool.admitted == 0
    assert await pool.run(lambda: "room again") == "room again"


async def test_a_caller_that_gives_up_keeps_its_slot_until_the_work_ends() -> None:
    pool = PasswordPool(threads=1, waiting=0)
    release = threading.Event()
    waiter = asyncio.ensure_future(pool.run(release.wait))
    await asyncio.sleep(0.05)
    waiter.cancel()
    await asyncio.sleep(0.01)
    with pytest.raises(ServiceBusy):  # the hash still runs, so the slot is still taken
        await pool.run(lambda: None)
    release.set()
    for _ in range(100):
        if pool.admitted == 0:
            break
        await asyncio.sleep(0.01)
    assert pool.admitted == 0


async def test_at_most_threads_run_at_once() -> None:
    pool = PasswordPool(threads=2, waiting=10)
    lock, active, peak = threading.Lock(), [0], [0]

    def work() -> None:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.02)
        with lock:
            active[0] -= 1

    await asyncio.gather(*(pool.run(work) for _ in range(12)))
    assert peak[0] == 2


async def test_an_admission_holds_its_place_across_several_hashes() -> None:
    pool = PasswordPool(threads=1, waiting=0)
    with pool.admit() as admission:
        assert await admission.run(lambda: 1) == 1
        with pytest.raises(ServiceBusy):  # taken before, and between, its hashes
            await pool.run(lambda: None)
        assert await admission.run(lambda: 2) == 2
    assert pool.admitted == 0


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="per-thread priority is Linux's")
async def test_hashing_threads_run_below_the_event_loops_priority() -> None:
    pool = PasswordPool(threads=1, waiting=0)
    nice = await pool.run(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
    assert nice > os.getpriority(os.PRIO_PROCESS, 0)
