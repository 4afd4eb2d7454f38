"""An MCP server for the tests, built with the SDK: stdio by default, Streamable HTTP with
`--http PORT`. Its tools echo, sleep, fail, return 5 MB, report their environment and
working directory, and exit the process."""

import argparse
import asyncio
import os

from mcp.server.mcpserver import MCPServer

app = MCPServer("test-tools")


@app.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@app.tool()
async def slow(seconds: float) -> str:
    """Wait, then answer."""
    await asyncio.sleep(seconds)
    return f"slept {seconds}"


@app.tool()
def fail() -> str:
    """Always fails."""
    raise RuntimeError("this tool always fails")


@app.tool()
def big() -> str:
    """Five megabytes of text."""
    return "x" * (5 * 1024 * 1024)


@app.tool()
def environment() -> str:
    """The names of the environment variables and the working directory."""
    return f"{sorted(os.environ)} cwd={os.getcwd()}"


@app.tool()
def crash() -> str:
    """End the server process at once."""
    os._exit(3)


@app.tool()
def html() -> str:
    """Markup that must be shown as text."""
    return '<img src=x onerror="alert(1)"><b>bold</b>'


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int)
    options = parser.parse_args()
    if options.http:
        app.run("streamable-http", host="127.0.0.1", port=options.http)
    else:
        app.run()
