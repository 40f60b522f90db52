"""The app (service/app.py): the web page and its static files, OpenAPI and the docs served offline."""

from __future__ import annotations

from tests.service.common import assert_error


def test_page_and_static_files(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    page = r.text
    assert "/static/app.js" in page and "/static/style.css" in page
    assert "http://" not in page and "https://" not in page  # nothing from elsewhere
    for name in ("app.js", "style.css"):
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200
        assert "https://" not in asset.text and "http://" not in asset.text
    assert client.get("/static/favicon.svg").headers["content-type"].startswith("image/svg+xml")
    assert_error(client.get("/static/missing.js"), 404)


def test_openapi_and_docs(client):
    spec = client.get("/openapi.json").json()
    detect = spec["paths"]["/v1/detect"]["post"]
    assert "multipart/form-data" in detect["requestBody"]["content"]
    params = {p["name"]: p["schema"] for p in detect["parameters"]}
    assert params["imgsz"]["multipleOf"] == 32 and params["imgsz"]["maximum"] == 640
    assert params["conf"]["maximum"] == 1.0
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    # swagger-ui-bundle is a dependency: the docs page is served locally, nothing from a CDN
    assert "/docs-assets/" in docs.text and "cdn.jsdelivr" not in docs.text
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200


def test_docs_page_has_a_policy_that_allows_only_its_own_inline_script(client):
    import base64
    import hashlib
    import re

    docs = client.get("/docs")
    policy = docs.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-eval" not in policy
    scripts = re.findall(r"<script>(.*?)</script>", docs.text, flags=re.DOTALL)
    assert scripts
    script_src = next(d for d in policy.split(";") if d.strip().startswith("script-src"))
    assert "unsafe-inline" not in script_src
    for body in scripts:
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in script_src
