"""Real MCP servers for the tests."""

from collections.abc import Iterator

import pytest
from mcp_test_servers import http_tools_server


@pytest.fixture(scope="module")
def http_server() -> Iterator[str]:
    with http_tools_server() as url:
        yield url
