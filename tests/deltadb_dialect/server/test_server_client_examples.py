"""DeltaDatabase's own client examples (its documentation's "Chat Interface Example"), run
unchanged.

The examples are kept verbatim in client_examples/; the only edit at run time is the server
address (their 127.0.0.1:8080 becomes the test server's free port).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ddb_server_helpers import LiveServer

EXAMPLES = Path(__file__).with_name("client_examples")
EXAMPLE_ADDRESS = "http://127.0.0.1:8080"


def example(name: str, live_server: LiveServer, tmp_path: Path) -> Path:
    """The example with only its base URL pointed at the test server."""
    text = (EXAMPLES / f"{name}.txt").read_text(encoding="utf-8")
    assert text.count(EXAMPLE_ADDRESS) == 1
    path = tmp_path / name
    path.write_text(text.replace(EXAMPLE_ADDRESS, live_server.base_url), encoding="utf-8")
    return path


def expected(name: str) -> str:
    return (EXAMPLES / f"{name}.expected").read_text(encoding="utf-8")


def test_python_client_example(live_server: LiveServer, tmp_path: Path) -> None:
    pytest.importorskip("requests")
    script = example("chat_client.py", live_server, tmp_path)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected("chat_client.py")


def test_curl_walkthrough(live_server: LiveServer, tmp_path: Path) -> None:
    missing = [tool for tool in ("bash", "curl", "jq") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the walkthrough needs {', '.join(missing)} (apt-get install them)")
    script = example("chat_demo.sh", live_server, tmp_path)
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=60,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out_lines, want_lines = result.stdout.splitlines(), expected("chat_demo.sh").splitlines()
    assert re.fullmatch(r"Token: [A-Za-z0-9_-]{20}…", out_lines[0]), out_lines[0]
    # The stored lines are printed by the script itself and must match exactly.
    assert out_lines[1:6] == want_lines[1:6]
    assert out_lines[6] == "=== Full session ==="
    # The documentation hand-aligned jq's output; compare the document itself.
    want_json = json.loads("\n".join(want_lines[7:]))
    assert json.loads("\n".join(out_lines[7:])) == want_json


def test_go_client_example(live_server: LiveServer, tmp_path: Path) -> None:
    go = shutil.which("go")
    if go is None:
        pytest.skip("Go is not installed (apt-get install golang-go to run the Go example)")
    text = (EXAMPLES / "chat_client.go.txt").read_text(encoding="utf-8")
    assert text.count('"' + EXAMPLE_ADDRESS + '"') == 1
    source = tmp_path / "main.go"
    source.write_text(text.replace(EXAMPLE_ADDRESS, live_server.base_url), encoding="utf-8")
    env = {**os.environ, "GOCACHE": str(Path.home() / ".cache" / "go-build"),
           "GOPATH": str(tmp_path / "gopath"), "GOFLAGS": "-mod=mod", "GO111MODULE": "off",
           "GOTOOLCHAIN": "local"}
    result = subprocess.run([go, "run", str(source)], capture_output=True, text=True,
                            timeout=240, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    # The documentation hand-aligned "Stored [user]:      ..."; the program prints one space.
    def aligned(text: str) -> str:
        return re.sub(r"\]: +", "]: ", text)

    assert aligned(result.stdout) == aligned(expected("chat_client.go"))
