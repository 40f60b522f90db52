"""Images in: which files are images, reading them, the network's letterbox, and the image-size rule.

    >>> check_imgsz(640, stride=32)
    640
    >>> check_imgsz(100, stride=32)
    Traceback (most recent call last):
    ...
    spikedet.errors.SpikedetError: imgsz must be a multiple of the model stride (here: a multiple of 32), got 100
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported where a tensor is made: the image-size rule serves the CLI without it
    from torch import Tensor

from spikedet.assets import asset_dir, resolve_source
from spikedet.errors import SpikedetError
from spikedet.progress import progress

#: Suffixes of the image files spikedet reads from folders and globs (and checks before predicting).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})

#: Bounds of an inference or training image size (pixels per side).
IMGSZ_MIN, IMGSZ_MAX = 32, 8192
#: The largest stride of spikedet's detectors (P3-P5 heads): what sizes are checked against until a model
#: is loaded; once it is, :func:`check_imgsz` takes the model's own stride.
DEFAULT_STRIDE = 32


def model_stride(model) -> int:
    """The largest stride of a detection model's head: image sizes must be a multiple of it."""
    stride = getattr(model, "stride", None)
    import torch

    return int(max(stride.tolist())) if isinstance(stride, torch.Tensor) and stride.numel() else DEFAULT_STRIDE


def predictor_stride(model) -> int:
    """The stride Ultralytics' predictor letterboxes a PyTorch model's images to (the smallest rectangle whose
    sides are multiples of it): the model's, at least 32, as its ``AutoBackend`` takes it."""
    return max(model_stride(model), 32)


def check_imgsz(imgsz: int | Sequence[int], stride: int | None = DEFAULT_STRIDE, name: str = "imgsz"):
    """``imgsz`` (an integer or ``[height, width]``) if each side is an integer in ``IMGSZ_MIN..IMGSZ_MAX`` and,
    with a ``stride``, a multiple of it; else :class:`SpikedetError` naming the rule."""
    sides = list(imgsz) if isinstance(imgsz, (list, tuple)) else [imgsz]
    if not 1 <= len(sides) <= 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in sides):
        raise SpikedetError(f"{name} must be an integer or [height, width], got {imgsz!r}")
    for v in sides:
        if not IMGSZ_MIN <= v <= IMGSZ_MAX:
            raise SpikedetError(f"{name} must be between {IMGSZ_MIN} and {IMGSZ_MAX}, got {v}")
        if stride and v % stride:
            raise SpikedetError(f"{name} must be a multiple of the model stride (here: a multiple of {stride}), got {v}")
    return imgsz


def is_image_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def image_files(source: str | Path) -> list[Path]:
    """Image files of a file, a folder or a glob pattern (sorted); shipped paths resolve from any folder
    (:func:`spikedet.assets.resolve_source`)."""
    text = resolve_source(source)
    path = Path(text).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if is_image_file(p))
    elif any(c in text for c in "*?["):
        files = sorted(p for p in Path().glob(text) if is_image_file(p))
    else:
        files = []
    if not files:
        raise SpikedetError(f"no images found at {text!r}")
    return files


def read_image(path: str | Path) -> np.ndarray:
    """A BGR ``uint8`` image ``[H, W, 3]`` as OpenCV reads it, or :class:`SpikedetError`."""
    import cv2

    if not Path(path).is_file():  # before OpenCV, which warns on stderr about a missing file
        raise SpikedetError(f"image {str(path)!r} not found")
    image = cv2.imread(str(path))
    if image is None:
        raise SpikedetError(f"cannot read image {str(path)!r}")
    return image


def letterbox_tensor(image_bgr: np.ndarray, imgsz: int, stride: int | None = None) -> Tensor:
    """An image as the network sees it: letterboxed to ``imgsz x imgsz``, RGB, ``[3, H, W]`` in [0, 1].
    With ``stride``: into the smallest rectangle within that square whose sides are multiples of ``stride``, as
    Ultralytics' predictor letterboxes for a model that takes any size (the PyTorch path)."""
    from ultralytics.data.augment import LetterBox

    boxed = LetterBox(new_shape=(imgsz, imgsz), auto=stride is not None, stride=stride or 32)(image=image_bgr)
    import torch

    return torch.from_numpy(np.ascontiguousarray(boxed[..., ::-1].transpose(2, 0, 1))).float() / 255


def load_batch(source: str | Path, imgsz: int, limit: int | None = None) -> tuple[Tensor, list[Path]]:
    """Up to ``limit`` images of ``source``, letterboxed into one batch ``[B, 3, imgsz, imgsz]``."""
    files = image_files(source)[:limit]
    import torch

    return torch.stack([letterbox_tensor(read_image(f), imgsz) for f in progress(files, "reading images")]), files


def sample_images(split: str = "val") -> Path:
    """The shipped coco8 images of ``split`` (``train`` or ``val``): the default check and calibration images."""
    return asset_dir("data") / "coco8" / "images" / split


def default_image() -> Path:
    """Ultralytics' bus.jpg (shipped in its package assets)."""
    from spikedet.offline import import_ultralytics

    return Path(import_ultralytics().ASSETS) / "bus.jpg"
