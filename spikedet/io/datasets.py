"""Datasets for Ultralytics' loops that spikedet builds on the fly: an image folder with YOLO labels."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import yaml
from ultralytics.data.utils import img2label_paths

from spikedet.errors import SpikedetError
from spikedet.io.images import is_image_file


@contextlib.contextmanager
def folder_dataset(images: str | Path, names: dict[int, str] | list[str]):
    """A temporary data YAML for an image folder whose YOLO labels sit in the matching ``labels`` folder.

    The images and labels are linked (per file) into a temporary folder, so Ultralytics writes its label
    cache there and never next to the original (possibly shared or read-only) dataset. Yields the YAML path.
    """
    images = Path(images).expanduser().resolve()
    if not images.is_dir():
        raise SpikedetError(f"image folder {str(images)!r} not found")
    files = sorted(f for f in images.iterdir() if is_image_file(f))
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
