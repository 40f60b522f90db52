"""The one loader: every model format, safetensors round trips, pickles only when allowed."""

from __future__ import annotations

import pytest
import torch

from spikedet.assets import asset_dir
from spikedet.convert import bitplane
from spikedet.errors import SpikedetError
from spikedet.io.weights import check_weights, load_model, load_safetensors, read_config, resolve, save_model
from spikedet.model.detection import SpikeDetectionModel
from spikedet.nn.mode import has_neurons, is_converted, spike_path


def test_converted_weights_round_trip(tmp_path):
    model = SpikeDetectionModel("spikeyolo-t.yaml", verbose=False).eval()
    x = torch.rand(1, 3, 64, 64)
    converted = bitplane.convert(model, x)
    path = save_model(converted, tmp_path / "m.safetensors")
    loaded = load_safetensors(path)
    assert torch.equal(loaded(x)[0], converted(x)[0])
    assert is_converted(loaded) and spike_path(loaded) == "integer" and read_config(path)["state"] == "converted"


def test_a_model_yaml_is_a_fresh_model_and_a_name_finds_the_shipped_weights():
    fresh = load_model("spikeyolo-t.yaml")
    assert isinstance(fresh, SpikeDetectionModel) and fresh.yaml["scale"] == "t" and not is_converted(fresh)
    shipped = load_model("yolov5n-a2s.safetensors")  # a bare name: the file in weights/
    assert shipped.names[0] == "person" and has_neurons(shipped) and shipped.is_fused() and not is_converted(shipped)
    assert resolve(None, allow_pickle=False).name == "yolov5n-a2s-int8.safetensors"  # the default weights


def test_pickles_load_only_when_allowed(tmp_path):
    trained = tmp_path / "trained.pt"
    torch.save({"model": SpikeDetectionModel("spikeyolo-t.yaml", verbose=False).half(), "train_args": {}}, trained)
    for name in (trained, "yolov5n.pt"):  # an Ultralytics checkpoint, and YOLOv5's (restricted unpickler)
        with pytest.raises(SpikedetError, match="is a pickle"):
            load_model(name)
        with pytest.raises(SpikedetError, match="is a pickle"):
            check_weights(name, allow_pickle=False)
    assert isinstance(load_model(trained, allow_pickle=True), SpikeDetectionModel)
    assert load_model("yolov5n.pt", allow_pickle=True).names[0] == "person"


@pytest.mark.parametrize(
    "content, suffix, message",
    [
        (b"not a zip", ".pt", "not a PyTorch checkpoint"),
        (b"garbage", ".safetensors", "not a readable safetensors file"),
        (b"", ".onnx", "unsupported weights format"),
    ],
)
def test_bad_files_fail_fast_in_one_line(tmp_path, content, suffix, message):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(content)
    with pytest.raises(SpikedetError, match=message):
        check_weights(path, allow_pickle=True)
    with pytest.raises(SpikedetError):
        load_model(path, allow_pickle=True)


def test_a_foreign_safetensors_file_is_named_as_such(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(SpikedetError, match="no spikedet config"):
        check_weights(tmp_path / "foreign.safetensors", allow_pickle=False)


def test_missing_weights_name_the_file():
    with pytest.raises(SpikedetError, match="weights file 'nothere.safetensors' not found"):
        load_model("nothere.safetensors")


def test_saved_weights_have_normal_permissions(tmp_path):
    """safetensors' own save_file makes 0600 files; ours follow the umask like any file a tool writes."""
    import os

    from spikedet.io.weights import load_model, save_model

    previous = os.umask(0o022)
    try:
        path = save_model(load_model("spikeyolo-t.yaml", allow_pickle=False), tmp_path / "sub" / "t.safetensors")
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o644
    assert load_model(path, allow_pickle=False).names == load_model("spikeyolo-t.yaml", allow_pickle=False).names


def test_an_integer_file_without_its_graph_is_refused_in_one_line(tmp_path):
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    shipped = asset_dir("weights") / "yolov5n-a2s-int8.safetensors"
    with safe_open(str(shipped), "pt") as f:
        config = json.loads(f.metadata()["spikedet"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    del config["graph"]
    damaged = tmp_path / "damaged.safetensors"
    save_file(tensors, str(damaged), metadata={"spikedet": json.dumps(config)})
    with pytest.raises(SpikedetError, match="an integer model without its integer graph"):
        load_model(damaged)
