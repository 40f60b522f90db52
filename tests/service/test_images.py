"""Image checks and decoding (service/images.py)."""

from __future__ import annotations

import pytest
from PIL import Image

from tests.service.common import MAX_PIXELS, SAMPLE, encode, small_image


def test_decoding_rejects_every_truncation_and_applies_exif_orientation():
    from spikedet.service.images import ImageRejected, decode

    for data in (SAMPLE.read_bytes(), encode(small_image(), "JPEG", progressive=True), encode(small_image(), "PNG")):
        assert decode(data + bytes(50), MAX_PIXELS).shape[2] == 3  # trailing bytes after the image are fine
        for cut in range(8, len(data) - 1, max(1, len(data) // 60)):
            with pytest.raises(ImageRejected) as e:
                decode(data[:cut], MAX_PIXELS)
            assert e.value.status == 400, (cut, e.value.message)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees
    for fmt in ("JPEG", "PNG"):
        assert decode(encode(small_image(64, 48), fmt, exif=exif), MAX_PIXELS).shape == (64, 48, 3)
