"""Image checks and decoding (service/images.py)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.service.common import MAX_PIXELS, SAMPLE, encode, grey16_png, jpeg_empty_scan, small_image


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


def test_16_bit_grey_png_is_scaled_to_8_bits_not_clipped():
    from spikedet.service.images import decode

    data, values = grey16_png()
    image = decode(data, MAX_PIXELS)
    assert image.shape == (*values.shape, 3) and image.dtype.name == "uint8"
    expected = np.round(values.astype(np.float64) * 255 / 65535)
    assert np.abs(image[..., 0].astype(np.float64) - expected).max() <= 0.5
    assert (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()
    assert image.min() == 0 and image.max() == 255 and 120 < image.mean() < 135  # a ramp, not 99.9 % white


def test_jpeg_with_an_empty_scan_is_refused():
    from spikedet.service.images import ImageRejected, decode

    with pytest.raises(ImageRejected) as e:
        decode(jpeg_empty_scan(SAMPLE.read_bytes()), MAX_PIXELS)
    assert e.value.status == 400 and "scan is empty" in e.value.message
