"""Images in: the image-size rule, image files of a path, folder or glob, and output files."""

from __future__ import annotations

import pytest

from spikedet.errors import SpikedetError
from spikedet.io.images import IMGSZ_MAX, check_imgsz, image_files, load_batch, read_image
from spikedet.io.outputs import output_file


@pytest.mark.parametrize("size", [32, 640, [320, 640], IMGSZ_MAX])
def test_sizes_within_bounds_and_on_the_stride_pass(size):
    assert check_imgsz(size, 32) == size


@pytest.mark.parametrize(
    "size, stride, message",
    [
        (100, 32, "multiple of the model stride"),
        (96, 64, "a multiple of 64"),
        (16, None, "between 32 and"),
        (IMGSZ_MAX + 32, 32, "between 32 and"),
        ("640", 32, "an integer or"),
        ([320, 320, 3], 32, "an integer or"),
        (True, 32, "an integer or"),
    ],
)
def test_sizes_off_the_rule_are_refused(size, stride, message):
    with pytest.raises(SpikedetError, match=message):
        check_imgsz(size, stride)


def test_image_files_of_a_file_a_folder_and_a_glob(coco8_val_images, tmp_path, monkeypatch):
    folder = image_files(coco8_val_images)
    assert len(folder) == 4 and folder == sorted(folder)
    assert image_files(folder[0]) == [folder[0]]
    monkeypatch.chdir(coco8_val_images.parent)
    assert [p.name for p in image_files("val/*36.jpg")] == ["000000000036.jpg"]
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(SpikedetError, match="no images found"):
        image_files(tmp_path)
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(SpikedetError, match="cannot read image"):
        read_image(tmp_path / "broken.jpg")


def test_a_batch_is_letterboxed_to_the_size(coco8_val_images):
    batch, files = load_batch(coco8_val_images, 96, limit=3)
    assert batch.shape == (3, 3, 96, 96) and len(files) == 3
    assert 0.0 <= float(batch.min()) and float(batch.max()) <= 1.0


def test_output_files_follow_one_rule(tmp_path):
    assert output_file(None, (".onnx",), default="m.onnx").name == "m.onnx"
    assert output_file(tmp_path / "x.MP4", (".mp4", ".avi"), existing_folder=True).suffix == ".MP4"
    with pytest.raises(SpikedetError, match="output must be a .mp4 or .avi file"):
        output_file("x.gif", (".mp4", ".avi"))
    with pytest.raises(SpikedetError, match="does not exist"):
        output_file(tmp_path / "missing" / "x.mp4", (".mp4",), existing_folder=True)
    (tmp_path / "dir.onnx").mkdir()
    with pytest.raises(SpikedetError, match="is a folder"):
        output_file(tmp_path / "dir.onnx", (".onnx",))
