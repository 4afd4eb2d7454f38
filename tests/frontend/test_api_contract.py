"""`js/api.js` calls only what the OpenAPI document describes: every method and path the
client uses must be a route of the app, so a renamed or removed route fails here."""

from __future__ import annotations

import os
import re
import secrets

import pytest

from .ui_helpers import REPO

CALL = re.compile(
    r"(?P<fn>request|send)\('(?P<method>[A-Z]+)',\s*(?P<q>[`'])(?P<path>/api/[^`']*)(?P=q)"
    r"|streamFrom\((?P<sq>[`'])(?P<spath>/api/[^`']*)(?P=sq)(?P<rest>[^\n]*)"
)
PARAM = re.compile(r"\$\{[^}]+\}")


def client_calls() -> set[tuple[str, str]]:
    source = (REPO / "frontend" / "js" / "api.js").read_text()
    calls = set()
    for match in CALL.finditer(source):
        if match["path"]:
            method, path = match["method"], match["path"]
        else:
            method = "GET" if "'GET'" in match["rest"] else "POST"
            path = match["spath"]
        if "${action}" in path:  # approve or reject, chosen by the caller
            calls |= {
                (method, PARAM.sub("{}", path.replace("${action}", a)))
                for a in ("approve", "reject")
            }
        else:
            calls.add((method, PARAM.sub("{}", path)))
    return calls


@pytest.fixture(scope="module")
def documented() -> set[tuple[str, str]]:
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(32))
    os.environ.setdefault("ENVIRONMENT", "test")
    from backend.main import app

    routes = set()
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            routes.add((method.upper(), re.sub(r"\{[^}]+\}", "{}", path)))
    return routes


def test_every_call_of_the_client_is_a_documented_route(documented: set[tuple[str, str]]) -> None:
    calls = client_calls()
    assert len(calls) > 40  # the parser found the client's calls
    assert calls - documented == set()


def test_the_check_catches_a_route_that_does_not_exist(documented: set[tuple[str, str]]) -> None:
    assert ("POST", "/api/conversations/{}/answer/stop") in documented
    assert ("POST", "/api/conversations/{}/answer/halt") not in documented
