"""Browser tests: the real backend (uvicorn subprocess, fresh store) driven through Chromium.

Debian's /usr/bin/chromium is used (``make test`` installs it); Playwright's own browser
download is never needed. One server and one browser serve the whole session; every test
gets its own users and browser contexts, so tests do not depend on each other.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from .fake_provider import FakeProvider
from .ui_helpers import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    PASSWORD,
    REPO,
    Server,
    User,
    database_env,
    login_token,
)

INHERITED_ENV = {
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "TEMP",
    "TMP",
    "VIRTUAL_ENV",
    "SYSTEMROOT",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not become healthy:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("openchat")
    # A clean environment: nothing from the caller's shell or another suite's settings, and
    # the server runs in the temporary directory so no developer `.env` is read either.
    env = {
        **{k: v for k, v in os.environ.items() if k in INHERITED_ENV or k.startswith("LC_")},
        "PYTHONPATH": str(REPO),
        **database_env(tmp),
        "ENVIRONMENT": "test",
        "MOCK_OPENAI": "true",
        "MOCK_OPENAI_DELAY_MS": "50",  # streamed mock answers arrive word by word
        "SECRET_KEY": secrets.token_urlsafe(32),
        "ADMIN_USERNAME": ADMIN_USERNAME,
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "ADMIN_EMAIL": "admin@example.com",
        "ALLOW_REGISTRATION": "true",
        # Every test registers its own users, all from 127.0.0.1.
        "REGISTRATIONS_PER_ADDRESS_PER_HOUR": "100000",
        # Users point their own connection at the loopback fake provider (ui_helpers).
        "ALLOW_USER_CONNECTIONS": "true",
        "EGRESS_ALLOW_PRIVATE_NETWORKS": "127.0.0.0/8",
        # A model list as an operator gives one (the mock still answers as "mock").
        "AVAILABLE_MODELS": "gpt-4o-mini,gpt-4o",
        "DEFAULT_MODEL": "gpt-4o-mini",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        # Uploaded exports wait here (encrypted) while imported; the import test looks in.
        "IMPORT_SPOOL_DIR": str(tmp / "import-spool"),
    }
    bindir = Path(sys.executable).parent
    alembic = shutil.which("alembic", path=str(bindir)) or "alembic"
    migrate = subprocess.run(
        [alembic, "-c", str(REPO / "alembic.ini"), "upgrade", "head"],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if migrate.returncode:
        raise RuntimeError(f"alembic upgrade head failed:\n{migrate.stdout}\n{migrate.stderr}")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp / "server.log"
    with log.open("wb") as out, FakeProvider() as provider:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "backend.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=tmp,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_healthy(url, proc, log)
            database = {k: v for k, v in env.items() if k in ("DATABASE_URL", "DELTADB_MASTER_KEY")}
            yield Server(url=url, log=log, provider=provider, database=database)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make chromium)")
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture
def make_user(server: Server) -> Iterator[Callable[..., User]]:
    """Registers a fresh user through the API and returns it with a bearer client."""
    made: list[User] = []

    def make(prefix: str = "user", password: str = PASSWORD) -> User:
        username = server.unique(prefix)
        email = f"{username}@example.com"
        with server.client() as c:
            r = c.post(
                "/api/auth/register",
                json={"username": username, "email": email, "password": password},
            )
            assert r.status_code == 201, r.text
            uid = r.json()["id"]
        r = login_token(server, username, password)
        assert r.status_code == 200, r.text
        user = User(username, password, email, uid, server.client(r.json()["access_token"]))
        made.append(user)
        return user

    yield make
    for u in made:
        u.close()


@pytest.fixture(scope="session")
def admin(server: Server) -> Iterator[User]:
    r = login_token(server, ADMIN_USERNAME, ADMIN_PASSWORD)
    assert r.status_code == 200, r.text
    body = r.json()
    user = User(
        ADMIN_USERNAME,
        ADMIN_PASSWORD,
        body["user"]["email"],
        body["user"]["id"],
        server.client(body["access_token"]),
    )
    yield user
    user.close()


@pytest.fixture
def new_context(browser: Browser, server: Server) -> Iterator[Callable[..., BrowserContext]]:
    """Browser contexts (optionally signed in as a user) closed after the test."""
    contexts: list[BrowserContext] = []

    def make(
        user: User | None = None,
        viewport: dict[str, int] | None = None,
        color_scheme: str = "light",
        mobile: bool = False,
    ) -> BrowserContext:
        ctx = browser.new_context(
            base_url=server.url,
            viewport=viewport or DESKTOP,
            color_scheme=color_scheme,  # type: ignore[arg-type]
            is_mobile=mobile,
            has_touch=mobile,
            device_scale_factor=2 if mobile else 1,
        )
        ctx.set_default_timeout(10_000)
        contexts.append(ctx)
        if user is not None:
            r = ctx.request.post(
                "/api/auth/login", data={"username": user.username, "password": user.password}
            )
            assert r.ok, r.text()
        return ctx

    yield make
    for ctx in contexts:
        ctx.close()


@pytest.fixture
def page_as(new_context: Callable[..., BrowserContext]) -> Callable[..., Page]:
    """A page signed in as `user`, with dialogs recorded in page.dialogs."""

    def make(user: User | None = None, **kwargs: object) -> Page:
        page = new_context(user, **kwargs).new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        csp: list[str] = []
        page.on(
            "console",
            lambda m: csp.append(m.text) if "Content Security Policy" in m.text else None,
        )
        page.csp_violations = csp  # type: ignore[attr-defined]
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.requests = requests  # type: ignore[attr-defined]
        page.dialogs = dialogs  # type: ignore[attr-defined]
        page.js_errors = errors  # type: ignore[attr-defined]
        return page

    return make
