"""Schemathesis (`--checks all`) against a running server's OpenAPI document, as one caller.

The run is bounded (examples per operation, and 20 s: unbounded, the coverage and stateful
phases take minutes) so it fits in `make test`. The seed is fixed so a failure reproduces
(SCHEMATHESIS_SEED picks another, SCHEMATHESIS_EXAMPLES a larger run). What the tests assert is
that no answer is a server error; the other checks' findings (undocumented status codes and the
like) are returned for the report.
"""

import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ST = Path(sys.executable).with_name("st")


@dataclass
class FuzzResult:
    responses: Counter[int] = field(default_factory=Counter)
    failed_checks: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    output: str = ""


def run_schemathesis(
    schema_url: str,
    *,
    token: str,
    workdir: Path,
    exclude_path_regex: str,
    max_examples: int = 5,
    max_seconds: int = 20,
) -> FuzzResult:
    report_dir = workdir / "schemathesis"
    command = [
        str(ST), "run", schema_url, "--checks", "all",
        "-H", f"Authorization: Bearer {token}",
        "--exclude-path-regex", exclude_path_regex,
        "-n", os.environ.get("SCHEMATHESIS_EXAMPLES", str(max_examples)),
        "--max-time", str(max_seconds), "--request-timeout", "10",
        "--seed", os.environ.get("SCHEMATHESIS_SEED", "20261201"),
        "--no-color", "--report", "ndjson", "--report-dir", str(report_dir),
    ]  # fmt: skip
    workdir.mkdir(parents=True, exist_ok=True)
    finished = subprocess.run(  # in workdir: its example cache (.schemathesis/) stays there
        command, cwd=workdir, capture_output=True, text=True, timeout=max_seconds + 120
    )
    result = FuzzResult(output=finished.stdout + finished.stderr)
    reports = sorted(report_dir.glob("*.ndjson"))
    assert reports, result.output
    for line in reports[-1].read_text().splitlines():
        _record(json.loads(line), result)
    return result


def _record(event: dict, result: FuzzResult) -> None:
    scenario = event.get("ScenarioFinished")
    if not scenario:
        return
    recorder = scenario["recorder"]
    for interaction in (recorder.get("interactions") or {}).values():
        response, request = interaction.get("response") or {}, interaction.get("request") or {}
        if not response:
            continue
        result.responses[response["status_code"]] += 1
        if response["status_code"] >= 500:
            result.server_errors.append(
                f"{request.get('method')} {request.get('uri')} -> {response['status_code']}"
            )
    for checks in (recorder.get("checks") or {}).values():
        for check in checks:
            if check["status"] == "failure":
                result.failed_checks[check["name"]] += 1
