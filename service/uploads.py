"""Reading an image upload from the request stream with every byte counted as it arrives.

The body is read here, never by FastAPI or python-multipart on their own: a raw body (``Content-Type:
image/*``) or a ``multipart/form-data`` form whose ``image`` field is kept (other fields are counted and
dropped). The count stops the upload at the limit (413) whatever ``Content-Length`` claims; a declared
``Content-Length`` over the limit is refused before reading anything. The whole body must arrive within
``upload_timeout_s`` (408), so a slow client cannot hold a slot for ever.
"""

from __future__ import annotations

import anyio
from python_multipart.exceptions import FormParserError, MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from spikedet.service.errors import ApiError
from spikedet.service.settings import Settings

FIELD = "image"
MAX_PARTS = 16
MAX_PART_HEADER_BYTES = 16 * 1024
RAW_TYPES = ("application/octet-stream", "")


# The rest of an unread body is still on the wire: close the connection after answering.
CLOSE = {"Connection": "close"}


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"upload too large: the limit is {limit:,} bytes", CLOSE)


async def read_image(request: Request, settings: Settings) -> bytes:
    """The image bytes of a ``POST /v1/detect`` request (raw body or multipart field ``image``)."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    multipart = media == "multipart/form-data"
    if not multipart and not (media.startswith("image/") or media in RAW_TYPES):
        raise ApiError(415, f"unsupported Content-Type {media!r}: send multipart/form-data with an '{FIELD}' "
                            "field, or the image itself with Content-Type image/*")
    limit = settings.max_body_bytes if multipart else settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise ApiError(400, f"bad Content-Length {declared!r}")
        if int(declared) > limit:
            raise _too_large(limit)
    sink = _FormImage(content_type, settings.max_upload_bytes) if multipart else _RawImage()
    received = 0
    try:
        with anyio.fail_after(settings.upload_timeout_s):
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit:
                    raise _too_large(limit)
                sink.write(chunk)
    except TimeoutError:
        raise ApiError(408, f"upload not received within {settings.upload_timeout_s:g} s", CLOSE) from None
    except ClientDisconnect:
        raise ApiError(400, "client disconnected during the upload") from None
    return sink.finish()


class _RawImage:
    """A raw image body (the byte limit is counted by the caller while the body streams in)."""

    def __init__(self):
        self.data = bytearray()

    def write(self, chunk: bytes) -> None:
        self.data += chunk

    def finish(self) -> bytes:
        return bytes(self.data)


class _FormImage:
    """Streams a multipart body through python-multipart's parser, keeping only the first ``image`` part."""

    def __init__(self, content_type: str, limit: int):
        _, params = parse_options_header(content_type)
        boundary = params.get(b"boundary")
        if not boundary:
            raise ApiError(400, "multipart/form-data without a boundary")
        self.limit = limit
        self.parts = 0
        self.image: bytearray | None = None
        self.capturing = False
        self.header_bytes = 0
        self.field = bytearray()
        self.value = bytearray()
        self.headers: dict[bytes, bytes] = {}
        try:
            self.parser = MultipartParser(boundary, self._callbacks())
        except (FormParserError, ValueError) as e:  # e.g. a boundary over the parser's 256 characters
            raise ApiError(400, f"malformed multipart Content-Type: {str(e)[:200]}") from None

    def _callbacks(self) -> dict:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def write(self, chunk: bytes) -> None:
        try:
            self.parser.write(chunk)
        except MultipartParseError as e:
            raise ApiError(400, f"malformed multipart body: {str(e)[:200]}") from None

    def finish(self) -> bytes:
        try:
            self.parser.finalize()
        except MultipartParseError as e:
            raise ApiError(400, f"malformed multipart body: {str(e)[:200]}") from None
        if self.image is None:
            raise ApiError(422, f"multipart field '{FIELD}' is missing (send the image as a file in a field "
                                f"named '{FIELD}')")
        return bytes(self.image)

    # -- parser callbacks (they run inside parser.write) -------------------------------------------
    def _part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise ApiError(400, f"too many form fields (at most {MAX_PARTS})")
        self.headers, self.header_bytes = {}, 0
        self.field.clear()
        self.value.clear()

    def _count_header(self, n: int) -> None:
        self.header_bytes += n
        if self.header_bytes > MAX_PART_HEADER_BYTES:
            raise ApiError(400, f"form part headers over {MAX_PART_HEADER_BYTES} bytes")

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self.field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self.value += data[start:end]

    def _header_end(self) -> None:
        self.headers[bytes(self.field).lower()] = bytes(self.value)
        self.field.clear()
        self.value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("latin-1")
        self.capturing = name == FIELD and self.image is None
        if self.capturing:
            self.image = bytearray()

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self.capturing:
            self.image += data[start:end]
            if len(self.image) > self.limit:
                raise _too_large(self.limit)

    def _part_end(self) -> None:
        self.capturing = False
