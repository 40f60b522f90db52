"""What the service holds (service/state.py): the pixel budget bounds the decoded images held at once
across concurrent requests."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import anyio
import httpx
from PIL import Image

from spikedet.service.state import PixelBudget
from tests.service.common import encode, wait_status
from tests.support.service import FakeDetector


class CountingDetector(FakeDetector):
    """Records the most pixels it held at once (images inside detect)."""

    lock = threading.Lock()
    held = 0
    most = 0

    def detect(self, image, **kw):
        pixels = image.shape[0] * image.shape[1]
        with self.lock:
            CountingDetector.held += pixels
            CountingDetector.most = max(CountingDetector.most, CountingDetector.held)
        try:
            return super().detect(image, **kw)
        finally:
            with self.lock:
                CountingDetector.held -= pixels


def test_parallel_big_images_never_exceed_the_pixel_budget(fake_app):
    side = 1000  # 1 Mpx each; the budget holds one and a half
    png = encode(Image.new("RGB", (side, side), (10, 200, 30)), "PNG")
    with fake_app(lambda s: CountingDetector(s, delay=0.3), workers=4, max_concurrency=4,
                  max_pixels=side * side, max_pixels_in_flight=side * side * 3 // 2) as url:
        wait_status(url, "ready")
        CountingDetector.most = 0

        def post(_):
            return httpx.post(url + "/v1/detect", content=png, headers={"content-type": "image/png"}, timeout=30)

        with ThreadPoolExecutor(4) as pool:
            statuses = [r.status_code for r in pool.map(post, range(4))]
        assert statuses == [200] * 4
        assert CountingDetector.most == side * side  # one at a time, though 4 replicas were free


def test_pixel_budget_is_first_come_first_served_and_gives_back_on_cancel():
    async def scenario():
        budget = PixelBudget(10)
        order = []
        await budget.acquire(8)

        async def take(name, pixels):
            await budget.acquire(pixels)
            order.append(name)

        async with anyio.create_task_group() as tg:
            tg.start_soon(take, "big", 6)
            await anyio.sleep(0.01)
            tg.start_soon(take, "small", 1)  # fits now, but waits behind "big"
            await anyio.sleep(0.01)
            assert order == []
            budget.release(8)
        assert order == ["big", "small"] and budget.used == 7
        with anyio.move_on_after(0.01):
            await budget.acquire(5)  # cancelled while waiting: leaves no trace
        assert budget.used == 7 and not budget._waiting

    anyio.run(scenario)
