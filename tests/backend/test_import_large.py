"""A 200 MB ChatGPT export imported by a real server: memory stays bounded, progress moves,
and another user's questions are answered throughout.

Generated in the test's own folder (about 10 s), uploaded as a stream, imported as a job. It
prints the figures docs/FRONTEND.md quotes: throughput, the server's peak RSS, and the other
user's message latency before and during the import.
"""

import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from chat_factories import DEFAULT_PASSWORD
from chatgpt_exports import Shape, write_export_of_size
from fake_openai_server import free_port
from import_service import migrated_env, server
from live_server import REPO

SIZE = 200 * 2**20
SHAPE = Shape(turns=8, words=150)


def _signed_in(base: str, name: str) -> httpx.Client:
    http = httpx.Client(base_url=base, timeout=120)
    user = {"username": name, "email": f"{name}@example.com", "password": DEFAULT_PASSWORD}
    assert http.post("/api/auth/register", json=user).status_code == 201
    login = http.post("/api/auth/login", json={"username": name, "password": DEFAULT_PASSWORD})
    http.headers["X-CSRF-Token"] = login.json()["csrf_token"]
    return http


def _rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process: unlike wall time, not inflated by other load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _send(http: httpx.Client, chat: str, text: str) -> float:
    started = time.perf_counter()
    answer = http.post(f"/api/conversations/{chat}/messages", json={"content": text})
    assert answer.status_code in (200, 201), answer.text
    return time.perf_counter() - started


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


@pytest.fixture(scope="module")
def export_200(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int]:
    """The 200 MiB `conversations.json`, made once for this module: (path, count, size)."""
    export = tmp_path_factory.mktemp("export") / "conversations.json"
    return (export, *write_export_of_size(export, SIZE, SHAPE))


# Parses an export the way a job does (spool, then batches), in a process of its own, and
# prints how many conversations it read and its peak RSS in KiB.
PARSE_ONLY = """
import sys
from pathlib import Path
from backend.services import import_spool
from backend.services.import_jobs import Claimed
from backend.services.import_runner import ExportReader

source, spool = Path(sys.argv[1]), Path(sys.argv[2])
salt = import_spool.new_salt()
writer = import_spool.SpoolWriter(spool, key=import_spool.job_key(salt))
with open(source, "rb") as data:
    while chunk := data.read(1 << 20):
        writer.write(chunk)
writer.close()
reader = ExportReader(path=spool, claimed=Claimed(1, "job", 1, salt, writer.size, 0))
reader.open()
count = 0
while (batch := reader.next_batch()) is not None:
    count += len(batch.conversations)
reader.close()
spool.unlink()
status = Path("/proc/self/status").read_text().splitlines()
print(count, next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")))
"""


def _parse_only(export: Path, workdir: Path) -> tuple[int, int]:
    env = {**migrated_env(workdir), "IMPORT_SPOOL_DIR": str(workdir)}
    done = subprocess.run(
        [sys.executable, "-c", PARSE_ONLY, str(export), str(workdir / "spool")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    count, peak = done.stdout.split()
    return int(count), int(peak)


@pytest.mark.slow
def test_parsing_memory_does_not_grow_with_the_file(
    export_200: tuple[Path, int, int], tmp_path: Path
) -> None:
    small = tmp_path / "small.json"
    small_count, _ = write_export_of_size(small, 10 * 2**20, SHAPE)
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    assert _parse_only(small, tmp_path / "a")[0] == small_count
    large_count, large_peak = _parse_only(export_200[0], tmp_path / "b")
    _, small_peak = _parse_only(small, tmp_path / "a")
    print(
        f"\nparse only: peak RSS {small_peak / 1024:.0f} MiB for 10 MiB, "
        f"{large_peak / 1024:.0f} MiB for {export_200[2] / 2**20:.0f} MiB"
    )
    assert large_count == export_200[1]
    assert large_peak - small_peak < 16 * 1024, (small_peak, large_peak)


@pytest.mark.slow
def test_a_200_mb_export_with_bounded_memory_while_others_chat(
    export_200: tuple[Path, int, int], tmp_path: Path
) -> None:
    export, count, size = export_200
    env = migrated_env(tmp_path, IMPORT_SPOOL_DIR=str(tmp_path / "spool"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with server(tmp_path, env, port) as process:
        alice, bob = _signed_in(base, "alice"), _signed_in(base, "bob")
        chat = bob.post("/api/conversations", json={}).json()["uuid"]
        before = [_send(bob, chat, f"warm-up question {i}") for i in range(20)]
        rss_idle = _rss_kib(process.pid, "VmRSS")
        during: list[float] = []
        importing = threading.Event()

        def chat_meanwhile() -> None:
            while importing.is_set():
                during.append(_send(bob, chat, f"question {len(during)}"))
                time.sleep(0.2)

        importing.set()
        chatter = threading.Thread(target=chat_meanwhile)
        chatter.start()
        started, cpu_before = time.perf_counter(), _cpu_seconds(process.pid)
        try:
            with open(export, "rb") as body:
                answer = alice.post(
                    "/api/imports?filename=conversations.json",
                    content=body,
                    headers={"Content-Type": "application/json"},
                )
            assert answer.status_code == 202, answer.text
            uploaded = time.perf_counter() - started
            job, progress = answer.json()["uuid"], []
            while (state := alice.get(f"/api/imports/{job}").json())["status"] not in (
                "done",
                "failed",
            ):
                progress.append(state["bytes_read"])
                assert time.perf_counter() - started < 900, state
                time.sleep(1)
            elapsed = time.perf_counter() - started
            cpu = _cpu_seconds(process.pid) - cpu_before
        finally:
            importing.clear()
            chatter.join()
        rss_peak = _rss_kib(process.pid, "VmHWM")
    assert state["status"] == "done", state
    assert (state["imported"], state["messages"]) == (count, count * SHAPE.messages)
    assert state["bytes_read"] == state["bytes_total"] == size
    assert progress == sorted(progress) and len(set(progress)) > 3  # progress moved, in steps
    mib = size / 2**20
    print(
        f"\n{mib:.0f} MiB, {count} conversations, {count * SHAPE.messages} messages: "
        f"upload {uploaded:.1f} s, import {elapsed:.1f} s in all = {mib / elapsed:.2f} MiB/s, "
        f"{count / elapsed:.0f} conversations/s; server CPU {cpu:.0f} s "
        f"(the other user's requests included) = {mib / cpu:.1f} MiB per CPU-second; "
        f"RSS idle {rss_idle / 1024:.0f} MiB, "
        f"peak {rss_peak / 1024:.0f} MiB\n"
        f"other user's message send: before median {statistics.median(before) * 1000:.0f} ms; "
        f"during ({len(during)} sends) median {statistics.median(during) * 1000:.0f} ms, "
        f"p95 {_p95(during) * 1000:.0f} ms, max {max(during) * 1000:.0f} ms"
    )
    # Memory: what one conversation and one batch take, not the file (200 MiB of it).
    assert rss_peak - rss_idle < 150 * 1024, (rss_idle, rss_peak)
    # Other users wait for one batch at most, never for the import.
    assert len(during) >= 20
    assert max(during) < 2.5, sorted(during)[-5:]
