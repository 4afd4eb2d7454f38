"""The static UI is served at / after every API route, and its absence is not fatal."""

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend.main import FRONTEND_DIR, mount_frontend


@pytest.mark.skipif(not (FRONTEND_DIR / "index.html").is_file(), reason="no frontend checked out")
def test_index_and_pages_are_served(client: TestClient) -> None:
    index = client.get("/")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert client.get("/login.html").status_code == 200


def test_unknown_api_paths_stay_json(client: TestClient) -> None:
    response = client.get("/api/does-not-exist")
    assert response.status_code == 404 and response.json() == {"detail": "Not Found"}
    assert client.put("/api/conversations").status_code == 405


def test_missing_frontend_is_not_fatal(tmp_path: Path) -> None:
    app = FastAPI()
    mount_frontend(app, tmp_path)  # no index.html here
    assert TestClient(app).get("/").status_code == 404


def test_frontend_directory_is_served_with_html_fallback(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<h1>hello</h1>")
    (tmp_path / "js").mkdir()
    (tmp_path / "js" / "app.js").write_text("console.log(1)")
    app = FastAPI()
    mount_frontend(app, tmp_path)
    client = TestClient(app)
    assert client.get("/").text == "<h1>hello</h1>"
    assert client.get("/js/app.js").status_code == 200
