"""Security headers come as HTTP headers on every page and every API answer, from one place."""

import pytest
from chat_factories import create_user
from fastapi.testclient import TestClient

from backend.main import FRONTEND_DIR
from backend.security_headers import headers_for

PAGES = sorted(path.name for path in FRONTEND_DIR.glob("*.html"))
EVERYWHERE = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


def _assert_hardened(response: object) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    for name, value in EVERYWHERE.items():
        assert headers.get(name) == value, (name, headers.get(name))
    policy = headers["content-security-policy"]
    for directive in (
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "object-src 'none'",
    ):
        assert directive in policy, (directive, policy)
    assert "camera=()" in headers["permissions-policy"]


def test_there_are_seven_pages() -> None:
    assert len(PAGES) == 7, PAGES


@pytest.mark.parametrize("page", PAGES)
def test_every_page_carries_the_policy_as_a_header(client: TestClient, page: str) -> None:
    response = client.get(f"/{page}")
    assert response.status_code == 200
    _assert_hardened(response)
    assert "script-src 'self';" in response.headers["content-security-policy"]
    # One source of truth: the header, not a meta tag that cannot say frame-ancestors.
    assert 'http-equiv="Content-Security-Policy"' not in response.text


def test_static_assets_and_the_root_page_are_covered(client: TestClient) -> None:
    for path in ("/", "/js/api.js", "/css/app.css", "/favicon.svg"):
        response = client.get(path)
        assert response.status_code == 200, path
        _assert_hardened(response)
        assert "no-store" not in response.headers.get("cache-control", ""), path


def test_api_answers_are_never_stored(client: TestClient) -> None:
    user = create_user()
    for response in (
        client.get("/api/health"),
        client.get("/api/conversations", headers=user.headers),
        client.get("/api/auth/me"),  # 401
        client.get("/api/does-not-exist"),  # 404
        client.post("/api/auth/login", json={}),  # 422
    ):
        _assert_hardened(response)
        assert response.headers["cache-control"] == "no-store", response.request.url


def test_api_docs_get_their_own_policy_still_unframeable(client: TestClient) -> None:
    response = client.get("/docs")
    _assert_hardened(response)
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_hsts_only_where_the_deployment_is_https() -> None:
    assert "Strict-Transport-Security" not in headers_for("/", https_only=False)
    assert headers_for("/", https_only=True)["Strict-Transport-Security"].startswith("max-age=")
