"""Name lookup: shipped files resolve by name or by their checkout path, from any folder."""

from pathlib import Path

import pytest


def test_shipped_files_resolve_by_name_or_by_their_folder_path_from_any_folder(tmp_path, monkeypatch):
    from spikedet import assets
    from spikedet.errors import SpikedetError

    monkeypatch.chdir(tmp_path)  # nothing of the checkout is reachable relative to here
    weights = assets.asset_dir("weights") / "yolov5n.pt"
    assert assets.resolve_weights("yolov5n.pt") == weights
    assert assets.resolve_weights("weights/yolov5n.pt") == weights
    models = assets.asset_dir("models") / "spikeyolo.yaml"
    assert assets.resolve_model_yaml("models/spikeyolo.yaml") == (models, None)
    assert assets.resolve_model_yaml("models/spikeyolo-s.yaml") == (models, "s")
    data = assets.user_cache_dir() / "data" / "coco8.yaml"  # the shipped data, handed over from the user cache
    assert assets.resolve_data("data/coco8.yaml") == str(data) == assets.resolve_data("coco8")
    # a file of the user's own, even under a folder named like ours, wins; other folders never fall back
    (tmp_path / "weights").mkdir()
    own = tmp_path / "weights" / "yolov5n.pt"
    own.write_bytes(b"x")
    assert assets.resolve_weights("weights/yolov5n.pt") == own.relative_to(tmp_path)
    for bad in ("elsewhere/yolov5n.pt", "weights/missing.pt"):
        with pytest.raises(SpikedetError, match="not found"):
            assets.resolve_weights(bad)
    with pytest.raises(SpikedetError, match="not found"):
        assets.resolve_model_yaml("elsewhere/spikeyolo-s.yaml")


def test_shipped_folders_and_ultralytics_samples_resolve_as_image_sources_from_any_folder(tmp_path, monkeypatch):
    from spikedet import assets
    from spikedet.io.images import image_files
    from spikedet.offline import import_ultralytics

    monkeypatch.chdir(tmp_path)
    val = assets.asset_dir("data") / "coco8" / "images" / "val"
    assert assets.resolve_source("data/coco8/images/val") == str(val)
    assert image_files("data/coco8/images/val") == sorted(val.glob("*.jpg")) and len(image_files("data/coco8/images/val")) == 4
    assert assets.resolve_source("bus.jpg") == str(Path(import_ultralytics().ASSETS) / "bus.jpg")
    # what exists here wins; what is not a path stays as given
    (tmp_path / "data" / "coco8" / "images" / "val").mkdir(parents=True)
    assert assets.resolve_source("data/coco8/images/val") == "data/coco8/images/val"
    for given in ("0", "rtsp://camera/stream", "elsewhere/images", "*.jpg"):
        assert assets.resolve_source(given) == given


def test_label_caches_of_the_shipped_data_go_to_the_user_cache_never_into_the_package(tmp_path, monkeypatch):
    from ultralytics.cfg import get_cfg
    from ultralytics.data.build import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    from spikedet import assets
    from spikedet.engine.val import SpikeDetectionValidator  # noqa: F401  (Ultralytics, offline)

    monkeypatch.setenv("SPIKEDET_CACHE_DIR", str(tmp_path / "cache"))
    shipped = assets.asset_dir("data")
    before = {p for p in shipped.rglob("*")}
    for name in ("coco8.yaml", str(shipped / "coco8.yaml")):  # by name, and by the package's own path
        data_yaml = assets.resolve_data(name)
        assert data_yaml == str(tmp_path / "cache" / "data" / "coco8.yaml")
        data = check_det_dataset(data_yaml)
        build_yolo_dataset(get_cfg(overrides={"imgsz": 64}), data["val"], 2, data, mode="val")
    assert (tmp_path / "cache" / "data" / "coco8" / "labels" / "val.cache").is_file()
    assert {p for p in shipped.rglob("*")} == before  # nothing new inside the package
