"""`/docs`: Swagger UI from the app's own copy of its files, so the page works offline.

FastAPI's built-in page loads Swagger UI from a CDN and starts it with an inline script; this
one loads the vendored `swagger-ui-dist` (served with the rest of `frontend/`) and starts it
from `frontend/js/api-docs.js`, so it contacts no third party and needs no inline script.
"""

from html import escape

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

SWAGGER_UI = "/vendor/swagger-ui-dist-5.35.0"


def _page(*, title: str, openapi_url: str) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} – API</title>
<link rel="icon" type="image/png" href="{SWAGGER_UI}/favicon-32x32.png">
<link rel="stylesheet" href="{SWAGGER_UI}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{escape(openapi_url)}"></div>
<script src="{SWAGGER_UI}/swagger-ui-bundle.js"></script>
<script src="/js/api-docs.js"></script>
</body>
</html>
"""


def mount_api_docs(app: FastAPI) -> None:
    """Serve `/docs` (the app must be built with `docs_url=None`; ReDoc, CDN-only, is off)."""
    page = _page(title=app.title, openapi_url=app.openapi_url or "/openapi.json")

    @app.get("/docs", include_in_schema=False)
    async def api_docs() -> HTMLResponse:
        return HTMLResponse(page)
