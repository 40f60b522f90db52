"""The API key (service/auth.py): /v1/model and /v1/detect need it once it is set; the rest stays public."""

from __future__ import annotations

import httpx

from tests.service.common import assert_error, encode, small_image, wait_status


def test_api_key(fake_app):
    with fake_app(api_key="s3cret") as url:
        wait_status(url, "ready")
        png = encode(small_image(), "PNG")
        for headers in ({}, {"X-API-Key": "wrong"}, {"X-Api-Key": "S3CRET"}):
            assert "API key" in assert_error(httpx.get(url + "/v1/model", headers=headers), 401)
            r = httpx.post(url + "/v1/detect", content=png, headers={"content-type": "image/png", **headers})
            assert_error(r, 401)
        ok = {"X-API-Key": "s3cret"}
        assert httpx.get(url + "/v1/model", headers=ok).status_code == 200
        r = httpx.post(url + "/v1/detect", content=png, headers={"content-type": "image/png", **ok})
        assert r.status_code == 200 and r.json()["detections"][0]["name"] == "person"
        # public: health, limits (which say a key is needed), the page
        assert httpx.get(url + "/healthz").status_code == 200
        assert httpx.get(url + "/v1/limits").json()["api_key_required"] is True
        assert httpx.get(url + "/").status_code == 200
