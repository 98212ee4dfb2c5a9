"""Swagger UI (/docs) and ReDoc (/redoc) work on a machine without internet: each page names
only assets the service itself serves (from the fastapi-offline package), and those answer
with the JavaScript and CSS of the real UIs."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']""")
ANY_URL = re.compile(r"""(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}""")
UIS = {
    "/docs": {"SwaggerUIBundle", "swagger-ui"},
    "/redoc": {"Redoc"},
}
MEDIA_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


@pytest.mark.parametrize("page", sorted(UIS))
def test_the_page_names_only_assets_the_service_serves(client: TestClient, page: str) -> None:
    answer = client.get(page)
    assert answer.status_code == 200
    html = answer.text
    assert ANY_URL.findall(html) == []  # no CDN, no web font, no validator badge
    assets = ASSET.findall(html)
    assert any(asset.endswith(".js") for asset in assets)
    words = set()
    for asset in assets:
        assert asset.startswith("/"), asset
        served = client.get(asset)
        assert served.status_code == 200, asset
        suffix = asset[asset.rindex(".") :]
        assert MEDIA_TYPES[suffix] in served.headers["content-type"], asset
        if suffix == ".js":
            assert len(served.content) > 100_000, asset  # the whole UI, not a stub
            words |= {word for word in UIS[page] if word in served.text}
    assert words == UIS[page]


def test_the_pages_load_the_document_from_the_service(client: TestClient) -> None:
    assert "url: '/openapi.json'" in client.get("/docs").text
    assert 'spec-url="/openapi.json"' in client.get("/redoc").text
    assert client.get("/openapi.json").json()["info"]["title"] == "d2l-service"
