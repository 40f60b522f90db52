"""Image checks and decoding for the service: sniff the format, read the size from the header, then decode.

Order matters: the magic bytes decide the format (415 for anything but JPEG, PNG, WebP, BMP, whatever the
Content-Type says); the header gives the pixel count, checked against the limit before a single pixel is
decoded (413, which also covers Pillow's own decompression-bomb check); only then is the image decoded,
and a corrupt or truncated file is a 400. Headers are read by Pillow; JPEG pixels are decoded by OpenCV
(faster, after a structural check for truncation), the other formats by Pillow.
"""

from __future__ import annotations

import io
import warnings

import cv2
import numpy as np
from PIL import BmpImagePlugin, Image, ImageOps, JpegImagePlugin, PngImagePlugin, WebPImagePlugin

from spikedet.errors import first_line
from spikedet.service.errors import ApiError

# Our own pixel limit runs first; Pillow's warning for very large images would only repeat it.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

ORIENTATION = 0x0112  # EXIF tag
#: Pillow's modes of 16- and 32-bit grey (16-bit PNG): scaled to 8 bits, never clipped
DEEP_GREY = ("I", "I;16", "I;16B", "I;16L", "I;16N")
OPENERS = {
    "JPEG": JpegImagePlugin.JpegImageFile,
    "PNG": PngImagePlugin.PngImageFile,
    "WEBP": WebPImagePlugin.WebPImageFile,
    "BMP": BmpImagePlugin.BmpImageFile,
}


class ImageRejected(ApiError):
    """An upload that is not an acceptable image; ``status`` is the HTTP status to answer with."""


def _open(data: bytes, kind: str) -> Image.Image:
    """Open with the plugin of the sniffed format only. Not through ``Image.open``: it tries every other
    format too, and Ultralytics replaces it with a version that installs packages on unknown files."""
    return OPENERS[kind](io.BytesIO(data))


def sniff(data: bytes) -> str | None:
    """The format named by the file's magic bytes (``"JPEG"``, ``"PNG"``, ``"WEBP"``, ``"BMP"``) or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:2] == b"BM" and len(data) >= 26:
        return "BMP"
    return None


def open_checked(data: bytes, max_pixels: int) -> tuple[str, Image.Image]:
    """Sniff and open lazily (the header only), then check the pixel count: ``(format, unloaded image)``.
    Raises :class:`ImageRejected`: 400 (empty, corrupt header), 413 (too many pixels), 415 (format)."""
    if not data:
        raise ImageRejected(400, "empty image: the upload has no bytes")
    kind = sniff(data)
    if kind is None:
        raise ImageRejected(415, "unsupported image format: send JPEG, PNG, WebP or BMP")
    try:
        img = _open(data, kind)  # lazy: reads the header only
        width, height = img.size
    except Exception as e:  # noqa: BLE001 -- whatever a damaged header makes the parser raise
        raise ImageRejected(400, f"corrupt {kind} image: {_reason(e)}") from None
    if width <= 0 or height <= 0:
        raise ImageRejected(400, f"corrupt {kind} image: size {width}x{height}")
    if width * height > max_pixels:
        raise ImageRejected(413, f"image is {width}x{height} = {width * height:,} pixels (limit {max_pixels:,})")
    try:
        Image._decompression_bomb_check((width, height))  # Pillow's own limit (Image.MAX_IMAGE_PIXELS), if lower
    except Image.DecompressionBombError:
        raise _too_many_pixels(max_pixels) from None
    return kind, img


def decode(data: bytes, max_pixels: int) -> np.ndarray:
    """Check and decode an upload into a BGR ``uint8`` array ``[H, W, 3]`` (EXIF orientation applied)."""
    kind, img = open_checked(data, max_pixels)
    if kind == "JPEG":
        img.close()
        return _decode_jpeg(data)
    try:
        with img:
            img.load()  # a truncated or corrupt file fails here (truncated images are never padded)
            if img.getexif().get(ORIENTATION, 1) != 1:
                img = ImageOps.exif_transpose(img)
            if img.mode in DEEP_GREY:
                return cv2.cvtColor(_to_8bit(np.asarray(img)), cv2.COLOR_GRAY2BGR)
            if img.mode != "RGB":
                img = img.convert("RGB")  # grey, palette, CMYK, alpha (dropped); 48-bit RGB arrives as RGB
            array = np.asarray(img, dtype=np.uint8)
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001 -- a damaged file can make a decoder raise almost anything
        raise ImageRejected(400, f"corrupt or truncated {kind} image: {_reason(e)}") from None
    if array.ndim != 3 or array.shape[2] != 3:
        raise ImageRejected(400, f"cannot read {kind} image with shape {array.shape}")
    return cv2.cvtColor(array, cv2.COLOR_RGB2BGR)  # the order the detector takes (10x faster than [..., ::-1])


def _to_8bit(array: np.ndarray) -> np.ndarray:
    """16-bit grey (0..65535) to 8-bit by scaling, rounded: Pillow's ``convert("RGB")`` clips such values at
    255, so a 16-bit picture arrived almost all white."""
    if array.dtype.kind not in "iu":
        raise ImageRejected(400, f"cannot read an image of {array.dtype} pixels")
    wide = np.clip(array.astype(np.int64), 0, 65535)
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)


def _decode_jpeg(data: bytes) -> np.ndarray:
    """JPEG through OpenCV (libjpeg-turbo, straight to BGR, EXIF orientation applied): about 2.5x faster than
    Pillow plus the colour conversion. OpenCV fills a truncated JPEG with grey instead of failing, so the
    file's structure is checked first (:func:`jpeg_complete`)."""
    if not jpeg_complete(data):
        raise ImageRejected(400, "corrupt or truncated JPEG image: its scan is empty or it ends before its end-of-image "
                                 "marker")
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if array is None or array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ImageRejected(400, "corrupt JPEG image: it cannot be decoded")
    return array


def jpeg_complete(data: bytes) -> bool:
    """Whether a JPEG runs to its end-of-image marker: walk the marker segments from SOI to the first scan
    (each segment carries its length, so EXIF thumbnails inside APP1 are stepped over), then look for EOI
    (FF D9) after it; entropy-coded data never contains FF D9, as every FF in it is followed by 00 or a
    restart marker."""
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return False
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        if marker == 0xD9:  # end of image before any scan
            return False
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if length < 2:
            return False
        if marker == 0xDA:  # start of scan: the rest is image data, scans and tables, then EOI
            scan = i + 2 + length  # an empty first scan (EOI right after its header) decodes to grey garbage
            return data.find(b"\xff\xd9", scan) > scan
        i += 2 + length
    return False


def _too_many_pixels(max_pixels: int) -> ImageRejected:
    # Pillow refuses images past twice its MAX_IMAGE_PIXELS before we get to see the size.
    pillow = 2 * Image.MAX_IMAGE_PIXELS if Image.MAX_IMAGE_PIXELS else max_pixels
    return ImageRejected(413, f"image has too many pixels (limit {min(max_pixels, pillow):,})")


def _reason(error: Exception) -> str:
    return first_line(error)[:200]
