"""What zero-access conversations cost: per-message latency and search time at 10,000 messages,
with the mode off and on, on a real uvicorn server (one worker, the built-in mock model).

Starts a throw-away store and server, registers one user and imports N messages (default
10,000, in conversations of 20) through `POST /api/import`, then, with the mode off: asks
--questions questions one after another in a new conversation (each one question, one answer
and the title stored: the per-message path), and runs --searches searches (a rare word, a common
word, two words). Then turns the mode on (timing the conversion of everything imported) and
measures the same again. Prints p50/p95 of each and the conversion time, as JSON at the end.

    flock /tmp/bench.lock .venv/bin/python bench/privacy_bench.py
    flock /tmp/bench.lock .venv/bin/python bench/privacy_bench.py --messages 2000 --questions 50
"""

import argparse
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))  # the API benchmark beside this one
from api_bench import wait_until_serving  # noqa: E402

PASSWORD = "bench-password-1"
WORDS = (
    "the a of to and in is it you that he was for on are with as his they be at one have this"
    " from or had by word but what some we can out other were all there when up use your how"
    " garden tomato bicycle recipe kernel database encryption python migration snapshot quota"
).split()
QUERIES = ("bicycle", "the", "tomato recipe")


def start_server(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {
        **os.environ,
        "DATABASE_URL": f"deltadb:///{workdir}/store",
        "DELTADB_MASTER_KEY": secrets.token_hex(32),
        "ENVIRONMENT": "production",
        "COOKIE_SECURE": "false",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "MOCK_OPENAI": "true",
        "MOCK_OPENAI_DELAY_MS": "0",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(REPO),
        "MAX_REQUEST_BYTES": str(64 * 1024 * 1024),
    }
    alembic = [sys.executable, "-m", "alembic", "upgrade", "head"]
    subprocess.run(alembic, cwd=REPO, env=env, check=True, capture_output=True)
    port = 8000 + random.randrange(1000, 20000)
    log = (workdir / "server.log").open("wb")
    command = [sys.executable, "-m", "uvicorn", "backend.main:app", "--port", str(port)]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    wait_until_serving(process, base, workdir, timeout=90)
    return process, base


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 40)))


def import_messages(http: httpx.Client, headers: dict[str, str], messages: int) -> None:
    rng, per = random.Random(7), 20
    conversations = []
    for number in range(messages // per):
        items = [
            {"role": "user" if i % 2 == 0 else "assistant", "content": sentence(rng)}
            for i in range(per)
        ]
        conversations.append(
            {"uuid": str(uuid.uuid4()), "title": f"chat {number}", "messages": items}
        )
    for start in range(0, len(conversations), 100):  # requests of a few hundred KiB each
        body = {"format": "openchat-export", "version": 1}
        body["conversations"] = conversations[start : start + 100]  # type: ignore[assignment]
        response = http.post("/api/import", json=body, headers=headers, timeout=300)
        response.raise_for_status()


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1], 2),
        "n": len(ordered),
    }


def measure(http: httpx.Client, headers: dict[str, str], args: argparse.Namespace) -> dict:
    made = http.post("/api/conversations", json={}, headers=headers).json()
    asked: list[float] = []
    for number in range(args.questions):
        started = time.perf_counter()
        response = http.post(
            f"/api/conversations/{made['uuid']}/messages",
            json={"content": f"question {number} about the tomato garden"},
            headers=headers,
        )
        asked.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    searched: dict[str, list[float]] = {q: [] for q in QUERIES}
    counts: dict[str, int] = {}
    for _ in range(args.searches):
        for q in QUERIES:
            started = time.perf_counter()
            response = http.get("/api/search", params={"q": q}, headers=headers, timeout=120)
            searched[q].append((time.perf_counter() - started) * 1000)
            counts[q] = response.json()["count"]
    return {
        "message": percentiles(asked),
        "search": {q: {**percentiles(s), "hits": counts[q]} for q, s in searched.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--searches", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="privacy-bench-") as tmp:
        process, base = start_server(Path(tmp))
        try:
            result = run(base, args)
        finally:
            process.terminate()
            process.wait(timeout=30)
    print(json.dumps(result, indent=2))


def run(base: str, args: argparse.Namespace) -> dict[str, Any]:
    with httpx.Client(base_url=base, timeout=60) as http:
        body = {"username": "bench", "email": "bench@example.com", "password": PASSWORD}
        http.post("/api/auth/register", json=body).raise_for_status()
        login = http.post("/api/auth/login", json={"username": "bench", "password": PASSWORD})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        import_messages(http, headers, args.messages)
        off = measure(http, headers, args)
        print("off:", json.dumps(off), file=sys.stderr)
        started = time.perf_counter()
        http.post("/api/privacy/on", json={"password": PASSWORD}, headers=headers)
        while http.get("/api/privacy", headers=headers).json()["state"] != "on":
            time.sleep(0.2)
        converted = round(time.perf_counter() - started, 2)
        on = measure(http, headers, args)
        print("on:", json.dumps(on), file=sys.stderr)
    return {"messages": args.messages, "off": off, "on": on, "conversion_seconds": converted}


if __name__ == "__main__":
    main()
