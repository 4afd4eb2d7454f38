"""Supervised connections to real MCP servers: calls, limits, timeouts, restarts."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from mcp_test_servers import stdio_entry

from backend.mcp.config import parse_server
from backend.mcp.connection import ServerConnection

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def connected(
    entry: dict, tmp_path: Path, **options: float
) -> AsyncIterator[ServerConnection]:
    connection = ServerConnection(
        parse_server("tests", entry),
        workdir=tmp_path / "tests",
        restart_delays=(0.2,),
        **options,  # type: ignore[arg-type]
    )
    async with anyio.create_task_group() as group:
        group.start_soon(connection.run)
        assert await connection.wait_ready(30), connection.last_error
        try:
            yield connection
        finally:
            await connection.stop()


async def test_stdio_server_lists_and_runs_tools(tmp_path: Path) -> None:
    async with connected(stdio_entry(), tmp_path) as connection:
        names = {tool.name for tool in connection.tools}
        assert {"echo", "slow", "fail", "big", "crash"} <= names
        echoed = await connection.call("echo", {"text": "héllo"})
        assert (echoed.status, echoed.text) == ("succeeded", "héllo")
        failed = await connection.call("fail", {})
        assert failed.status == "failed"


async def test_a_slow_call_times_out_and_the_server_keeps_working(tmp_path: Path) -> None:
    async with connected(stdio_entry(), tmp_path, call_timeout=1.5) as connection:
        started = anyio.current_time()
        outcome = await connection.call("slow", {"seconds": 20})
        assert outcome.status == "failed" and "did not answer within" in outcome.text
        assert anyio.current_time() - started < 5
        assert (await connection.call("echo", {"text": "still here"})).text == "still here"


async def test_a_result_over_the_limit_is_refused(tmp_path: Path) -> None:
    async with connected(stdio_entry(), tmp_path, result_limit=64 * 1024) as connection:
        outcome = await connection.call("big", {})
        assert outcome.status == "failed" and "larger than 65536 bytes" in outcome.text
        assert len(outcome.text) < 200


async def test_a_server_that_dies_is_restarted(tmp_path: Path) -> None:
    async with connected(stdio_entry(), tmp_path, ping_interval=1.0) as connection:
        crashed = await connection.call("crash", {})
        assert crashed.status == "failed"
        assert await connection.wait_ready(30)
        with anyio.fail_after(30):
            while connection.restarts == 0 or not connection.healthy:
                await anyio.sleep(0.1)
        assert (await connection.call("echo", {"text": "back"})).text == "back"


async def test_stdio_servers_get_a_minimal_environment_and_their_own_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DELTADB_MASTER_KEY", "do-not-leak")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-do-not-leak")
    entry = stdio_entry() | {"env": {"TOOL_SETTING": "1"}}
    async with connected(entry, tmp_path) as connection:
        seen = (await connection.call("environment", {})).text
    assert "TOOL_SETTING" in seen
    assert "DELTADB_MASTER_KEY" not in seen and "OPENAI_API_KEY" not in seen
    assert f"cwd={tmp_path / 'tests'}" in seen


async def test_streamable_http_server(http_server: str, tmp_path: Path) -> None:
    async with connected({"url": http_server}, tmp_path) as connection:
        assert (await connection.call("echo", {"text": "over http"})).text == "over http"
        big = await connection.call("big", {})
        assert big.status == "failed" and "larger than" in big.text
