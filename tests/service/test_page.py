"""The web page in a real headless browser (Debian's chromium driven by Playwright): choose and drop an
image, wait for the result, check the boxes on the canvas, the energy panel and an error message.

Skipped, with the reason, when Playwright or /usr/bin/chromium is missing (.ci/run installs chromium).
Set SPIKEDET_SCREENSHOT=/path/page.png to keep a screenshot of the page with its result.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image

from spikedet.service.app import create_app
from spikedet.service.server import BackgroundServer
from spikedet.service.settings import Settings
from tests.support.service import FakeDetector, tiny_weights

CHROMIUM = os.environ.get("SPIKEDET_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 60_000

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
if not Path(CHROMIUM).is_file():
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 960})
    pg = context.new_page()
    problems: list[str] = []
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    pg.on("request", lambda r: None if r.url.startswith(("http://127.0.0.1", "data:", "blob:"))
          else problems.append(f"outside request: {r.url}"))
    pg.problems = problems
    yield pg
    context.close()


def bus() -> Path:
    from spikedet.offline import import_ultralytics

    return Path(import_ultralytics().ASSETS) / "bus.jpg"


def wait_until(page, expression: str, timeout: float = TIMEOUT_MS / 1000) -> None:
    """Poll a JS expression from here (page.wait_for_function evaluates strings, which the page's CSP forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(f"(() => {expression})()"):
        if time.monotonic() > deadline:
            raise TimeoutError(expression)
        time.sleep(0.05)


def canvas_pixel(page, x: int, y: int) -> list[int]:
    return page.evaluate(f"Array.from(document.getElementById('canvas').getContext('2d')"
                         f".getImageData({x}, {y}, 1, 1).data)")


def test_page_detects_a_chosen_image_with_the_real_model(page, tmp_path_factory, tmp_path):
    weights = tiny_weights(tmp_path_factory.getbasetemp() / "spikedet-tiny.safetensors")
    with BackgroundServer(create_app(Settings(weights=str(weights), imgsz=160))) as url:
        page.goto(url + "/")
        page.wait_for_selector("#status[data-state=ready]", timeout=TIMEOUT_MS)
        assert "spikeyolo-t" in page.inner_text("#model")
        page.set_input_files("#file", str(bus()))
        page.wait_for_selector("#status[data-state=done]", timeout=TIMEOUT_MS)
        size = page.evaluate("(() => { const c = document.getElementById('canvas'); return [c.width, c.height]; })()")
        assert size == [810, 1080]
        assert page.is_visible("#energy") and page.is_visible("#results")
        assert page.inner_text("#snn").endswith("mJ") and page.inner_text("#ann").endswith("mJ")
        assert page.inner_text("#efficiency").endswith(("× less", "× more"))
        assert "compute-only" in page.inner_text("#caveat")
        # all three energy models, each with the baseline it is measured against, and the plain explanation
        rows = page.inner_text("#model-rows")
        assert "compute-only" in rows and "int8 network" in rows and "memory traffic" in rows
        assert "spikes on average" in page.inner_text("#explain")
        assert float(page.inner_text("#spe")) > 0
        assert "810 × 1080" in page.inner_text("#timing")
        shot = tmp_path / "page.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        if os.environ.get("SPIKEDET_SCREENSHOT"):
            shutil.copy(shot, os.environ["SPIKEDET_SCREENSHOT"])
        # not an image: the server's JSON error is shown
        notes = tmp_path / "notes.jpg"
        notes.write_text("not an image at all\n" * 20)
        page.set_input_files("#file", str(notes))
        page.wait_for_selector("#status[data-state=error]", timeout=TIMEOUT_MS)
        assert "415" in page.inner_text("#status") and "unsupported image format" in page.inner_text("#status")
        assert page.is_hidden("#energy")
    assert page.problems == []


def test_page_draws_boxes_of_a_dropped_image(page):
    with BackgroundServer(create_app(Settings(imgsz=160), lambda s: FakeDetector(s))) as url:
        page.goto(url + "/")
        page.wait_for_selector("#status[data-state=ready]", timeout=TIMEOUT_MS)
        buf = io.BytesIO()
        Image.new("RGB", (400, 300), (250, 250, 250)).save(buf, "PNG")
        data = base64.b64encode(buf.getvalue()).decode()
        page.evaluate(
            """(data) => {
                const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
                const file = new File([bytes], "dropped.png", {type: "image/png"});
                const dt = new DataTransfer();
                dt.items.add(file);
                document.getElementById("drop").dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true}));
            }""",
            data,
        )
        page.wait_for_selector("#status[data-state=done]", timeout=TIMEOUT_MS)
        assert "dropped.png" in page.inner_text("#caption")
        assert page.inner_text("#count") == "(1)" and "person" in page.inner_text("#rows")
        # the fake box is x 80..240, y 75..240: its left edge is drawn in class 0's colour (red), inside is not
        r, g, b, _ = canvas_pixel(page, 80, 160)
        assert r > 150 and g < 90 and b < 90, (r, g, b)
        assert canvas_pixel(page, 160, 160)[:3] == [250, 250, 250]
        # raising the threshold above the fake's 0.9 re-runs the detection: no box any more
        page.evaluate("(() => { const c = document.getElementById('conf'); c.value = 0.95;"
                      " c.dispatchEvent(new Event('input')); })()")
        wait_until(page, "document.getElementById('count').textContent === '(0)'")
        page.wait_for_selector("#status[data-state=done]", timeout=TIMEOUT_MS)
        assert canvas_pixel(page, 80, 160)[:3] == [250, 250, 250]
    assert page.problems == []


def test_page_tries_the_sample_image_and_offers_the_annotated_image_and_json(page, tmp_path_factory, tmp_path):
    weights = tiny_weights(tmp_path_factory.getbasetemp() / "spikedet-tiny.safetensors")
    with BackgroundServer(create_app(Settings(weights=str(weights), imgsz=160))) as url:
        page.goto(url + "/")
        page.wait_for_selector("#status[data-state=ready]", timeout=TIMEOUT_MS)
        page.click("#sample")
        page.wait_for_selector("#status[data-state=done]", timeout=TIMEOUT_MS)
        size = page.evaluate("(() => { const c = document.getElementById('canvas'); return [c.width, c.height]; })()")
        assert size == [810, 1080]  # bus.jpg, served by the service from Ultralytics' assets
        wait_until(page, "!!document.getElementById('download-image').href")
        with page.expect_download() as json_download:
            page.click("#download-json")
        saved = tmp_path / "answer.json"
        json_download.value.save_as(str(saved))
        import json

        answer = json.loads(saved.read_text())
        assert json_download.value.suggested_filename == "bus-detections.json"
        assert answer["image"] == {"width": 810, "height": 1080} and "energy" in answer and "detections" in answer
        with page.expect_download() as png_download:
            page.click("#download-image")
        png = tmp_path / "annotated.png"
        png_download.value.save_as(str(png))
        assert png_download.value.suggested_filename == "bus-detections.png"
        assert Image.open(png).size == (810, 1080)
        shot = tmp_path / "sample.png"
        page.screenshot(path=str(shot), full_page=True)
        if os.environ.get("SPIKEDET_SCREENSHOT"):
            shutil.copy(shot, Path(os.environ["SPIKEDET_SCREENSHOT"]).with_name("page-sample.png"))
    assert page.problems == []
