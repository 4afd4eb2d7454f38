"""DeltaDatabase's own client examples (seed 001, "Chat Interface Example"), run unchanged.

The examples are kept verbatim in seed_examples/; the only edit at run time is the server
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
from ddb_server_helpers import ROOT, LiveServer

EXAMPLES = Path(__file__).with_name("seed_examples")
SEED_ADDRESS = "http://127.0.0.1:8080"


def example(name: str, live_server: LiveServer, tmp_path: Path) -> Path:
    """The example with only its base URL pointed at the test server."""
    text = (EXAMPLES / f"{name}.txt").read_text(encoding="utf-8")
    assert text.count(SEED_ADDRESS) == 1
    path = tmp_path / name
    path.write_text(text.replace(SEED_ADDRESS, live_server.base_url), encoding="utf-8")
    return path


def expected(name: str) -> str:
    return (EXAMPLES / f"{name}.expected").read_text(encoding="utf-8")


def test_examples_are_verbatim_copies_of_the_seed() -> None:
    seeds = sorted((ROOT.parent / "shared" / "seeds").glob("001_*.txt"))
    if not seeds:
        pytest.skip("seed 001 is not beside this checkout")
    text = seeds[0].read_text(encoding="utf-8")
    chat = text[text.index("## Chat Interface Example"):text.index("## Advanced:")]
    blocks = [body for _, body in re.findall(r"```(\w*)\n(.*?)```", chat, re.S)]
    names = ["chat_client.go.txt", "chat_client.go.expected", "chat_client.py.txt",
             "chat_client.py.expected", "chat_demo.sh.txt", "chat_demo.sh.expected"]
    assert len(blocks) == len(names)
    for name, block in zip(names, blocks, strict=True):
        assert (EXAMPLES / name).read_text(encoding="utf-8") == block, name


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
        pytest.skip(f"the seed's walkthrough needs {', '.join(missing)} (apt-get install them)")
    script = example("chat_demo.sh", live_server, tmp_path)
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=60,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out_lines, want_lines = result.stdout.splitlines(), expected("chat_demo.sh").splitlines()
    assert re.fullmatch(r"Token: [A-Za-z0-9_-]{20}…", out_lines[0]), out_lines[0]
    # The stored lines are printed by the script itself and must match exactly.
    assert out_lines[1:6] == want_lines[1:6]
    assert out_lines[6] == "=== Full session ==="
    # The seed hand-aligned jq's output; compare the document itself.
    want_json = json.loads("\n".join(want_lines[7:]))
    assert json.loads("\n".join(out_lines[7:])) == want_json


def test_go_client_example(live_server: LiveServer, tmp_path: Path) -> None:
    go = shutil.which("go")
    if go is None:
        pytest.skip("Go is not installed (apt-get install golang-go to run the Go example)")
    text = (EXAMPLES / "chat_client.go.txt").read_text(encoding="utf-8")
    assert text.count('"' + SEED_ADDRESS + '"') == 1
    source = tmp_path / "main.go"
    source.write_text(text.replace(SEED_ADDRESS, live_server.base_url), encoding="utf-8")
    env = {**os.environ, "GOCACHE": str(Path.home() / ".cache" / "go-build"),
           "GOPATH": str(tmp_path / "gopath"), "GOFLAGS": "-mod=mod", "GO111MODULE": "off",
           "GOTOOLCHAIN": "local"}
    result = subprocess.run([go, "run", str(source)], capture_output=True, text=True,
                            timeout=240, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    # The seed hand-aligned "Stored [user]:      ..." although the program prints one space.
    def aligned(text: str) -> str:
        return re.sub(r"\]: +", "]: ", text)

    assert aligned(result.stdout) == aligned(expected("chat_client.go"))
