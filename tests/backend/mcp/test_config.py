"""The `mcpServers` file format: what is accepted, and one sentence for each mistake."""

import json
from pathlib import Path

import pytest

from backend.mcp.config import McpConfigError, load_file, parse_document, parse_server


def test_claude_desktop_and_seed_documents_are_accepted_as_they_are(tmp_path: Path) -> None:
    document = {
        "mcpServers": {
            "files": {"command": "npx", "args": ["-y", "server-filesystem", "/x"]},
            "web": {"url": "https://tools.example.com/mcp", "headers": {"X-Key": "k"}},
            "off": {"command": "tool", "disabled": True},
        },
        "providers": {"google_genai": {"env_var": "GOOGLE_API_KEY"}},
    }
    path = tmp_path / "servers.json"
    path.write_text(json.dumps(document))
    files, web, off = load_file(path)
    assert files.transport == "stdio" and files.args == ("-y", "server-filesystem", "/x")
    assert web.transport == "http" and web.headers == {"X-Key": "k"}
    assert off.enabled is False
    assert parse_document({"mcpServers": {}}) == []


def test_public_view_names_secrets_without_their_values() -> None:
    server = parse_server("s", {"command": "t", "env": {"API_TOKEN": "hunter2"}})
    web = parse_server("w", {"url": "https://h/mcp", "token": "sekrit"})
    assert "hunter2" not in json.dumps(server.public())
    assert server.public()["env_keys"] == ["API_TOKEN"]
    assert "sekrit" not in json.dumps(web.public())
    assert web.public()["header_keys"] == ["Authorization"]
    assert web.headers["Authorization"] == "Bearer sekrit"


@pytest.mark.parametrize(
    ("name", "entry", "words"),
    [
        ("bad name!", {"command": "x"}, "letters, digits"),
        ("s", {"command": ""}, "'command'"),
        ("s", {"command": "x", "args": "not a list"}, "'args'"),
        ("s", {"url": "ftp://h/x"}, "http(s)"),
        ("s", {"url": "http://user:pw@h/x"}, "credentials"),
        ("s", {"url": "http://h/x\r\nX: y"}, "http(s)"),
        ("s", {"type": "sse", "url": "http://h/sse"}, "deprecated"),
        ("s", {"env": {}}, "needs a 'command'"),
        ("s", {"command": "x", "env": {"A": 1}}, "'env'"),
        ("s", {"command": "x", "oauth": True}, "for HTTP servers"),
        ("s", {"url": "https://h/mcp", "oauth": "yes"}, "'oauth' is true or an object"),
        ("s", {"url": "https://h/mcp", "oauth": {"password": "x"}}, "'oauth' is true or"),
        ("s", {"url": "https://h/mcp", "oauth": {"grant": "implicit"}}, "'oauth.grant'"),
        ("s", {"url": "https://h/mcp", "oauth": {"scope": 3}}, "'oauth' must map"),
        (
            "s",
            {"url": "https://h/mcp", "oauth": {"grant": "client_credentials", "client_id": "c"}},
            "'oauth.client_secret' and 'oauth.issuer'",
        ),
        (
            "s",
            {"url": "https://h/mcp", "oauth": {"issuer": "ftp://as"}},
            "'oauth.issuer' must be an http(s) URL",
        ),
        (
            "s",
            {"url": "https://h/mcp", "oauth": True, "token": "t"},
            "either 'oauth' or an Authorization header",
        ),
    ],
)
def test_mistakes_are_one_sentence(name: str, entry: dict, words: str) -> None:
    with pytest.raises(McpConfigError, match=None) as raised:
        parse_server(name, entry)
    assert words in str(raised.value) and "\n" not in str(raised.value)


def test_unreadable_and_malformed_files_say_so(tmp_path: Path) -> None:
    with pytest.raises(McpConfigError, match="Cannot read MCP_SERVERS_FILE"):
        load_file(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{nope")
    with pytest.raises(McpConfigError, match="not valid JSON"):
        load_file(broken)
    with pytest.raises(McpConfigError, match="'mcpServers' object"):
        parse_document({"mcpServers": []})


def test_oauth_settings_keep_the_client_secret_out_of_the_public_view() -> None:
    entry = {
        "url": "https://tools.example.com/mcp",
        "oauth": {
            "grant": "client_credentials",
            "client_id": "open-chat",
            "client_secret": "cc-secret-value",
            "issuer": "https://auth.example.com",
            "scope": "tools:read",
        },
    }
    server = parse_server("cc", entry)
    assert server.oauth is not None and server.oauth.client_secret == "cc-secret-value"
    assert "cc-secret-value" not in json.dumps(server.public())
    assert server.public()["oauth"]["has_client_secret"] is True
    assert parse_server("cc", server.to_document()) == server  # stored and read back whole
    plain = parse_server("ac", {"url": "https://tools.example.com/mcp", "oauth": True})
    assert plain.oauth is not None and plain.oauth.grant == "authorization_code"
    assert plain.public()["oauth"]["has_client_secret"] is False
