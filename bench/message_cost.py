"""What one chat message costs the server in CPU, measured in process, without HTTP or load.

api_bench.py measures the service as users see it, but on a shared 2-core VM its figures move
by 20 % or more with whatever else runs. This drives the real ASGI app (every middleware,
dependency, service, the SDK and the mock model, the encrypted store) in this process: a few
users each create a conversation, ask 10 questions (JSON answers) and read the history, like
api_bench's users. It prints the CPU time per message (best of the batches) and, with
`--instructions`, the instructions executed per message counted by valgrind's callgrind:
a figure that other load on the machine cannot change (slow: about a minute per batch).

    .venv/bin/python bench/message_cost.py                   # CPU ms per message, deltadb
    .venv/bin/python bench/message_cost.py --store sqlite
    .venv/bin/python bench/message_cost.py --instructions    # under callgrind, one batch
"""

import argparse
import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
USERS, QUESTIONS, CONVERSATIONS_PER_BATCH = 5, 10, 4


def configure(store: str, workdir: str) -> None:
    """The environment of a production server with the mock model, before `backend` loads."""
    url = f"sqlite:///{workdir}/bench.db" if store == "sqlite" else f"deltadb:///{workdir}/store"
    os.environ.update(
        DATABASE_URL=url,
        DELTADB_MASTER_KEY=secrets.token_hex(32),
        ENVIRONMENT="production",
        SECRET_KEY=secrets.token_urlsafe(32),
        MOCK_OPENAI="true",
        MOCK_OPENAI_DELAY_MS="0",
        LOG_LEVEL="INFO",
    )
    sys.path.insert(0, str(REPO))


class InProcessClient:
    """Calls the ASGI app directly: no sockets, no HTTP parsing, no client library."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def call(self, method: str, path: str, body: Any = None, token: str = "") -> Any:
        payload = b"" if body is None else json.dumps(body).encode()
        headers = [(b"host", b"127.0.0.1:8000"), (b"accept", b"application/json")]
        if body is not None:
            headers += [(b"content-type", b"application/json")]
            headers += [(b"content-length", str(len(payload)).encode())]
        if token:
            headers.append((b"authorization", b"Bearer " + token.encode()))
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "headers": headers, "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 8000),
        }  # fmt: skip
        messages = [{"type": "http.request", "body": payload, "more_body": False}]
        response: dict[str, Any] = {"body": b""}

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await asyncio.Event().wait()  # the client never disconnects
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
            else:
                response["body"] += message.get("body", b"")

        await self.app(scope, receive, send)
        if response["status"] >= 400:
            raise SystemExit(f"{method} {path}: {response['status']} {response['body'][:200]!r}")
        return json.loads(response["body"]) if response["body"] else None


async def sign_up(client: InProcessClient, name: str) -> str:
    user = {"username": name, "email": f"{name}@bench.example", "password": "bench-password-1"}
    await client.call("POST", "/api/auth/register", user)
    login = {"username": name, "password": user["password"]}
    return (await client.call("POST", "/api/auth/login", login))["access_token"]


async def conversation(client: InProcessClient, token: str) -> None:
    """One conversation as api_bench's users hold it: create, ask, read the history."""
    uuid = (await client.call("POST", "/api/conversations", {}, token))["uuid"]
    path = f"/api/conversations/{uuid}/messages"
    for number in range(QUESTIONS):
        question = {"content": f"Benchmark question number {number}: how fast is this?"}
        await client.call("POST", path, question, token)
    await client.call("GET", path, None, token)


def callgrind(switch: str) -> None:
    """Start or stop counting instructions (when running under callgrind)."""
    if os.environ.get("MESSAGE_COST_CALLGRIND"):
        command = ["callgrind_control", "-i", switch, str(os.getpid())]
        subprocess.run(command, check=True, capture_output=True)


async def measure(batches: int) -> list[float]:
    from backend.main import app  # imported once the environment is set

    client = InProcessClient(app)
    async with app.router.lifespan_context(app):
        tokens = [await sign_up(client, f"cost{index}") for index in range(USERS)]
        for token in tokens:  # warm up: compiled statements, SDK client, caches
            await conversation(client, token)
        costs = []
        for _ in range(batches):
            callgrind("on")
            started = time.process_time()
            for _ in range(CONVERSATIONS_PER_BATCH):
                for token in tokens:
                    await conversation(client, token)
            costs.append(time.process_time() - started)
            callgrind("off")
    return costs


def run(args: argparse.Namespace) -> None:
    import logging

    from alembic import command

    from backend.core.db import alembic_config

    command.upgrade(alembic_config(), "head")
    logging.disable(logging.WARNING)  # the access log would flood the output
    messages = CONVERSATIONS_PER_BATCH * USERS * QUESTIONS
    costs = asyncio.run(measure(args.batches))
    per_message = [cost * 1000 / messages for cost in costs]
    print(f"{args.store}: {messages} messages per batch ({USERS} users, {QUESTIONS} per chat)")
    print("CPU ms per message, each batch:", " ".join(f"{value:.2f}" for value in per_message))
    print(f"CPU ms per message (best batch): {min(per_message):.2f}")


def count_instructions(args: argparse.Namespace) -> None:
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (Debian package valgrind)")
    with tempfile.TemporaryDirectory(prefix="message-cost-") as out:
        command = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
        command += [f"--callgrind-out-file={out}/callgrind.out", sys.executable, __file__]
        command += ["--store", args.store, "--batches", "1"]
        env = {**os.environ, "MESSAGE_COST_CALLGRIND": "1"}
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SystemExit(result.stderr[-2000:])
        total = next(
            int(line.split()[-1].replace(",", ""))
            for line in result.stderr.splitlines()
            if "Collected :" in line
        )
    messages = CONVERSATIONS_PER_BATCH * USERS * QUESTIONS
    print(f"{args.store}: {messages} messages under callgrind")
    print(f"instructions per message: {total / messages / 1e6:.2f} million")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["deltadb", "sqlite"], default="deltadb")
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--instructions", action="store_true", help="count under callgrind")
    args = parser.parse_args()
    if args.instructions:
        count_instructions(args)
        return
    with tempfile.TemporaryDirectory(prefix="message-cost-") as workdir:
        configure(args.store, workdir)
        run(args)


if __name__ == "__main__":
    main()
