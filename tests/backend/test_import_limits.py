"""The upload route has its own body limit (MAX_IMPORT_BYTES) instead of the 1 MiB one, and
only that route: bodies past it are refused with 413 and a sentence before any route runs."""

import pytest
from fastapi.testclient import TestClient

from backend.core.config import settings
from backend.main import create_app


@pytest.fixture
def small_limits_app(monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setattr(settings, "MAX_IMPORT_BYTES", 3 * 2**20)
    return TestClient(create_app())  # no lifespan: the limit answers before any route


def test_uploads_get_their_own_limit_and_other_routes_keep_theirs(
    small_limits_app: TestClient,
) -> None:
    over = small_limits_app.post("/api/imports", content=b"x" * (3 * 2**20 + 1))
    assert over.status_code == 413
    assert over.json() == {"detail": f"Request body larger than {3 * 2**20} bytes"}
    # Under the upload limit but over the general one: the route is reached (and asks who).
    under = small_limits_app.post("/api/imports", content=b"x" * (2 * 2**20))
    assert under.status_code == 401
    elsewhere = small_limits_app.post(
        "/api/import",
        content=b"[" + b" " * (2 * 2**20) + b"]",
        headers={"Content-Type": "application/json"},
    )
    assert elsewhere.status_code == 413
    assert (
        elsewhere.json()["detail"] == f"Request body larger than {settings.MAX_REQUEST_BYTES} bytes"
    )
