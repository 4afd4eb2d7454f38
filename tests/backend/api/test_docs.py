"""`/docs` serves Swagger UI from the app itself."""

import re

from fastapi.testclient import TestClient


def _assets(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


def test_the_docs_page_references_only_same_origin_assets(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    assets = _assets(response.text)
    assert len(assets) == 4
    for asset in assets:
        assert asset.startswith("/") and not asset.startswith("//"), asset
        fetched = client.get(asset)
        assert fetched.status_code == 200 and len(fetched.content) > 0, asset
    assert "<script>" not in response.text  # no inline script


def test_swagger_ui_is_told_not_to_call_the_online_validator(client: TestClient) -> None:
    assert "validatorUrl: null" in client.get("/js/api-docs.js").text


def test_the_cdn_only_redoc_page_is_not_served(client: TestClient) -> None:
    assert "redoc" not in client.get("/redoc").text.lower()
