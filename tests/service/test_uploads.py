"""Reading the upload (service/uploads.py): a slow or stalled body gets 408."""

from __future__ import annotations

import httpx

from tests.service.common import raw_http


def test_slow_or_stalled_upload_gets_408(fake_app):
    with fake_app(upload_timeout_s=0.5) as url:
        head = b"POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 5000\r\n\r\n"
        answer = raw_http(url, head, b"\xff\xd8\xff" + bytes(100), timeout=10)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"connection: close" in answer.lower()
        assert b'{"error":"upload not received within 0.5 s"}' in answer
        assert httpx.get(url + "/healthz").status_code == 200
