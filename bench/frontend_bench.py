"""First render of the chat page in Debian's Chromium: a 5,000-chat sidebar, a 1,000-message chat.

Builds a throw-away store (deltadb by default) with one user owning N conversations (default
5,000) and one conversation whose branch shown has M messages (default 1,000: questions and
Markdown answers with code; every tenth exchange also has an edited question with its own
answer and a regenerated answer, so those messages carry version arrows), starts the real
app with uvicorn, signs in through Playwright and opens `/` and `/?c=<the long chat>` R times
each (fresh page each time). Per page: time until the page says
it is ready (`body[data-ready]`, measured from navigation start), the browser's scripting
time (CDP `Performance.getMetrics` ScriptDuration) and the number of elements. Medians.

    .venv/bin/python bench/frontend_bench.py
    .venv/bin/python bench/frontend_bench.py --store sqlite --chats 1000 --messages 300 --rounds 3
"""

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "bench-password-123"
ANSWER = (
    "Here is **one way** to do it:\n\n"
    "```python\ndef reverse(items):\n    return items[::-1]\n```\n\n"
    "- it copies the list\n- it keeps the original\n\nSee [the docs](https://docs.python.org/)."
)


def _populate(*, chats: int, messages: int) -> str:
    from sqlalchemy import insert

    from backend.core.db import SessionLocal
    from backend.core.security import hash_password
    from backend.models import Conversation, Message, User, new_uuid, utcnow

    now = utcnow()
    with SessionLocal() as session:
        user = User(username="bench", email="bench@x.org", hashed_password=hash_password(PASSWORD))
        session.add(user)
        session.commit()
        long_chat = Conversation(
            user_id=user.id, title="The long chat", created_at=now, updated_at=now
        )
        session.add(long_chat)
        session.commit()
        rows, shown = _tree_rows(conversation_id=long_chat.id, messages=messages, now=now)
        session.execute(insert(Message), rows)
        long_chat.current_message_uuid = shown
        session.commit()
        for start in range(0, chats - 1, 1000):
            batch = range(start, min(chats - 1, start + 1000))
            session.execute(
                insert(Conversation),
                [
                    {
                        "uuid": new_uuid(),
                        "user_id": user.id,
                        "title": f"Chat number {i}",
                        "kind": "chat",
                        "pinned": False,
                        "archived": False,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in batch
                ],
            )
            session.commit()
        return long_chat.uuid


def _tree_rows(*, conversation_id: int, messages: int, now: object) -> tuple[list[dict], str]:
    """The long chat as a tree: its branch of `messages` messages, and at every tenth
    exchange a second version of the question (answered) and of the answer, off the branch.
    Also the uuid of the branch's last message (the one shown)."""
    from backend.models import new_uuid

    rows: list[dict] = []

    def add(role: str, content: str, parent: int | None) -> int:
        row_id = len(rows) + 1  # a fresh store: ids from 1, in creation order
        rows.append(
            {
                "id": row_id,
                "uuid": new_uuid(),
                "conversation_id": conversation_id,
                "parent_id": parent,
                "role": role,
                "content": content,
                "position": len(rows),
                "created_at": now,
            }
        )
        return row_id

    tip: int | None = None
    before: int | None = None
    for i in range(messages):
        if i % 2 == 0:
            before, tip = tip, add("user", f"Question {i // 2}: how do I reverse a list?", tip)
            continue
        question, tip = tip, add("assistant", ANSWER, tip)
        if (i // 2) % 10 == 5:
            edited = add("user", f"Question {i // 2}, asked again: and a tuple?", before)
            add("assistant", ANSWER, edited)
            add("assistant", ANSWER.replace("one way", "another way"), question)
    assert tip is not None
    return rows, rows[tip - 1]["uuid"]


def _measure(page, cdp, url: str) -> tuple[float, float, int]:  # noqa: ANN001
    before = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]", timeout=120_000)
    ready = page.evaluate("performance.now()")
    after = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    scripting = (after["ScriptDuration"] - before.get("ScriptDuration", 0)) * 1000
    elements = page.evaluate("document.getElementsByTagName('*').length")
    return ready, scripting, elements


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["deltadb", "sqlite"], default="deltadb")
    parser.add_argument("--chats", type=int, default=5000)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="frontend-bench-"))
    key = secrets.token_hex(32)
    url = (
        f"deltadb:///{workdir}/store"
        if arguments.store == "deltadb"
        else f"sqlite:///{workdir}/b.db"
    )
    env = {
        **os.environ,
        "DELTADB_MASTER_KEY": key,
        "ENVIRONMENT": "test",
        "MOCK_OPENAI": "true",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "DATABASE_URL": url,
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(REPO),
    }
    os.environ.update(env)
    sys.path.insert(0, str(REPO))
    from alembic import command

    from backend.core.db import alembic_config

    command.upgrade(alembic_config(), "head")
    long_chat = _populate(chats=arguments.chats, messages=arguments.messages)
    from playwright.sync_api import sync_playwright

    port = 8765 + secrets.randbelow(1000)
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "backend.main:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=workdir,
        env=env,
    )
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 800})
            login = context.request.post(
                "/api/auth/login", data={"username": "bench", "password": PASSWORD}
            )
            assert login.ok, login.text()
            for name, path in (("sidebar", "/"), ("long chat", f"/?c={long_chat}")):
                figures = []
                for _ in range(arguments.rounds):
                    page = context.new_page()
                    cdp = context.new_cdp_session(page)
                    cdp.send("Performance.enable")
                    figures.append(_measure(page, cdp, path))
                    page.close()
                ready = statistics.median(f[0] for f in figures)
                scripting = statistics.median(f[1] for f in figures)
                elements = statistics.median(f[2] for f in figures)
                print(
                    f"{name:10s} ready {ready:7.0f} ms   scripting {scripting:6.0f} ms   "
                    f"elements {elements:6.0f}   ({arguments.chats} chats, "
                    f"{arguments.messages} messages, {arguments.store})"
                )
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=15)


if __name__ == "__main__":
    main()
