"""User-level workflows shared by the CLI and the service: images in, converted models, checked results."""

from __future__ import annotations

import contextlib
import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from spikedet import bitplane
from spikedet.errors import SpikedetError, first_line

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def image_files(source: str | Path) -> list[Path]:
    """Image files of a file, a folder or a glob pattern (sorted)."""
    text = str(source)
    path = Path(text).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    else:
        files = sorted(p for p in Path().glob(text) if p.suffix.lower() in IMAGE_SUFFIXES) if any(c in text for c in "*?[") else []
    if not files:
        raise SpikedetError(f"no images found at {text!r}")
    return files


def letterbox_tensor(image_bgr: np.ndarray, imgsz: int) -> Tensor:
    """An image as the network sees it: letterboxed to ``imgsz x imgsz``, RGB, ``[3, H, W]`` in [0, 1]."""
    from ultralytics.data.augment import LetterBox

    boxed = LetterBox(new_shape=(imgsz, imgsz), auto=False)(image=image_bgr)
    return torch.from_numpy(np.ascontiguousarray(boxed[..., ::-1].transpose(2, 0, 1))).float() / 255


def load_batch(source: str | Path, imgsz: int, limit: int | None = None) -> tuple[Tensor, list[Path]]:
    import cv2

    files = image_files(source)[:limit]
    tensors = []
    for f in files:
        image = cv2.imread(str(f))
        if image is None:
            raise SpikedetError(f"cannot read image {str(f)!r}")
        tensors.append(letterbox_tensor(image, imgsz))
    return torch.stack(tensors), files


def default_sample_dir() -> Path:
    from spikedet.assets import asset_dir

    return asset_dir("data") / "coco8" / "images" / "val"


def ensure_spiking(model: nn.Module, path: str = "integer") -> nn.Module:
    """A spike-mode model ready for energy accounting: converted (on a copy) unless it already is."""
    if not getattr(model, "converted", False):
        model = bitplane.convert(copy.deepcopy(model).float().eval(), torch.zeros(1, 3, 64, 64))
    bitplane.set_spike_mode(model, path)
    return model


# -- conversion with its equivalence check --------------------------------------------------------

@dataclass
class ConversionReport:
    float64: dict = field(default_factory=dict)
    float32: dict = field(default_factory=dict)
    images: list[str] = field(default_factory=list)
    imgsz: int = 0
    passed: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def detection_agreement(out_a, out_b, conf: float = 0.25, iou: float = 0.5) -> tuple[int, int]:
    """``(matched, compared)``: detections after NMS that match (same class, IoU >= iou) between two outputs."""
    from ultralytics.utils.metrics import box_iou
    from ultralytics.utils.nms import non_max_suppression

    a = non_max_suppression(out_a[0] if isinstance(out_a, (tuple, list)) else out_a, conf, 0.7)
    b = non_max_suppression(out_b[0] if isinstance(out_b, (tuple, list)) else out_b, conf, 0.7)
    matched = compared = 0
    for da, db in zip(a, b):
        compared += max(len(da), len(db))
        if len(da) and len(db):
            ious = box_iou(da[:, :4].float(), db[:, :4].float())
            same = da[:, 5:6] == db[:, 5].view(1, -1)
            ious = ious * same
            used = set()
            for i in range(len(da)):
                j = int(ious[i].argmax())
                if ious[i, j] >= iou and j not in used:
                    used.add(j)
                    matched += 1
    return matched, compared


@torch.no_grad()
def convert_and_verify(model: nn.Module, images: Tensor, names: list[str] | None = None, imgsz: int = 0) -> tuple[nn.Module, ConversionReport]:
    """Convert ``model`` and check the conversion.

    float64: zero code mismatches and head outputs equal to 1e-9 relative on both paths, else the check
    fails. float32 (the shipped precision): mismatch rate and detection agreement are reported.
    Returns the float32 converted model and the report.
    """
    trained = copy.deepcopy(model).float().eval()
    reference = copy.deepcopy(trained).reparameterize() if hasattr(trained, "reparameterize") else trained
    report = ConversionReport(images=[str(n) for n in (names or [])], imgsz=imgsz)

    ref64 = copy.deepcopy(reference).double()
    conv64 = bitplane.convert(ref64, images[:1].double())
    ok = True
    for path in ("integer", "bitplane"):
        v = bitplane.verify(ref64, conv64, images.double(), path)
        report.float64[path] = v.as_dict()
        ok &= v.code_mismatches == 0 and v.max_relative_error <= 1e-9
    del ref64, conv64

    conv32 = bitplane.convert(reference, images[:1])
    for path in ("integer", "bitplane"):
        report.float32[path] = bitplane.verify(reference, conv32, images, path, boxes=True).as_dict()
    bitplane.set_spike_mode(conv32, "integer")
    report.passed = bool(ok)
    return conv32, report


@contextlib.contextmanager
def folder_dataset(images: str | Path, names: dict[int, str] | list[str]):
    """A temporary data YAML for an image folder whose YOLO labels sit in the matching ``labels`` folder.

    The images and labels are linked (per file) into a temporary folder, so Ultralytics writes its label
    cache there and never next to the original (possibly shared or read-only) dataset. Yields the YAML path.
    """
    import tempfile

    import yaml
    from ultralytics.data.utils import IMG_FORMATS, img2label_paths

    images = Path(images).expanduser().resolve()
    if not images.is_dir():
        raise SpikedetError(f"image folder {str(images)!r} not found")
    files = sorted(f for f in images.iterdir() if f.suffix[1:].lower() in IMG_FORMATS)
    if not files:
        raise SpikedetError(f"no images in {str(images)!r}")
    with tempfile.TemporaryDirectory(prefix="spikedet-data-") as tmp:
        out_images, out_labels = Path(tmp) / "images" / images.name, Path(tmp) / "labels" / images.name
        out_images.mkdir(parents=True)
        out_labels.mkdir(parents=True)
        found = 0
        for image, label in zip(files, img2label_paths([str(f) for f in files])):
            (out_images / image.name).symlink_to(image)
            if Path(label).is_file():
                (out_labels / Path(label).name).symlink_to(label)
                found += 1
        if not found:
            raise SpikedetError(f"no YOLO labels found for {str(images)!r} (expected them under .../labels/...)")
        names = dict(enumerate(names)) if isinstance(names, list) else {int(k): v for k, v in names.items()}
        data = Path(tmp) / "data.yaml"
        data.write_text(yaml.safe_dump({"train": str(out_images), "val": str(out_images), "names": names}), encoding="utf-8")
        yield data


def select_device(device: str | None) -> torch.device:
    """A torch device from a spikedet/Ultralytics device string (``None``/``""``: first GPU, else CPU)."""
    from ultralytics.utils.torch_utils import select_device as ultralytics_select

    try:
        return ultralytics_select("" if device is None else str(device), verbose=False)
    except (ValueError, RuntimeError) as e:
        raise SpikedetError(first_line(e)) from None


def predict_each(detector, files: list[str], **kwargs):
    """``(file, result)`` for each image, one forward pass per image.

    Each image is letterboxed on its own (the minimal rectangle, as ``predict``, the demo and the service
    do), so per-image figures such as energy do not depend on which other images were passed along.
    """
    import cv2

    for file in files:
        image = cv2.imread(str(file))
        if image is None:
            raise SpikedetError(f"cannot read image {str(file)!r}")
        yield file, detector.predict(image, verbose=False, **kwargs)[0]
