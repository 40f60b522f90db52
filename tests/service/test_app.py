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


def test_docs_render_under_their_policy_in_a_real_browser(fake_app):
    """Swagger UI runs under the /docs policy: its operations render and the browser reports no violation."""
    import os
    import time
    from pathlib import Path

    import pytest

    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    chromium = os.environ.get("SPIKEDET_CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).is_file():
        pytest.skip(f"no chromium at {chromium} (apt-get install chromium)")
    with fake_app() as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            messages = []
            page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: messages.append(f"page error: {e}"))
            page.goto(url + "/docs")
            deadline = time.monotonic() + 30
            while not page.evaluate("document.querySelectorAll('.opblock').length") and time.monotonic() < deadline:
                time.sleep(0.1)
            assert page.evaluate("document.querySelectorAll('.opblock').length") >= 4
            assert not [m for m in messages if "Content Security Policy" in m or m.startswith("page error")], messages
        finally:
            browser.close()
