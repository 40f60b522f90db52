"""SpikeYOLO checkpoints (their .pt, read without their code): the same spikes and outputs as their code, the
network read from the file, every foreign global refused, kinds spikedet cannot represent refused by name."""

from __future__ import annotations

import copy
import pickle
import sys
import types
from pathlib import Path

import pytest
import torch

from spikedet.errors import SpikedetError
from spikedet.io.restricted_pickle import ModuleStub
from spikedet.io.spikeyolo import (
    SpikeYoloImportError,
    SpikeYoloUnpickler,
    import_spikeyolo,
    spikeyolo_kind,
)
from spikedet.io.spikeyolo_check import compare_with_reference
from spikedet.io.weights import PICKLE_REFUSED, check_weights, load_model, resolve, weights_format
from spikedet.nn.layers import BNPad
from spikedet.snn.neurons import ILIF

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "spikeyolo-fixture"


@pytest.fixture(scope="module")
def tiny(spikeyolo_tiny):
    return import_spikeyolo(spikeyolo_tiny)


def test_tiny_checkpoint_computes_their_spikes_and_outputs_on_both_inputs(tiny, spikeyolo_tiny_reference):
    report = compare_with_reference(tiny.model, spikeyolo_tiny_reference)
    assert set(report["inputs"]) == {"bus", "rand"}
    for x, r in report["inputs"].items():
        assert r["layers"] == r["layers_compared_exactly"] == 88, x
        assert r["spike_mismatches"] == 0 and r["mismatching_layers"] == {}, (x, r["mismatching_layers"])
        # allclose(rtol=1e-5, atol=1e-4) as SOURCE.md suggests: box coordinates (pixels, up to 320) move by ~1.2e-4
        # with the float32 summation order (thread count); class scores must be within 1e-4 outright
        assert r["output_close"] and r["scores_max_abs_diff"] < 1e-4 and r["boxes_max_abs_diff"] < 1e-3, (x, r)
    assert report["inputs"]["bus"]["imgsz"] == [320, 320] and report["inputs"]["rand"]["imgsz"] == [256, 256]
    assert report["equal"]


def test_the_comparison_catches_a_mapping_mistake(tiny, spikeyolo_tiny_reference):
    """Padding their BNAndPad with zeros instead of BN(0) (a typical mistake) shows up as thousands of spikes."""
    model = copy.deepcopy(tiny.model)
    for m in model.modules():
        if isinstance(m, BNPad):
            m.forward = lambda x, m=m: torch.nn.functional.pad(torch.nn.BatchNorm2d.forward(m, x), [m.pad] * 4)
    report = compare_with_reference(model, spikeyolo_tiny_reference)
    assert not report["equal"]
    assert all(r["spike_mismatches"] > 1000 for r in report["inputs"].values())


def test_the_network_is_read_from_the_file(tiny):
    s = tiny.summary()
    assert s["width"] == 0.0625 and s["scale"] == "custom"  # not a named scale: read from the shapes
    assert (s["parameters"], s["tensors"], s["nc"], s["stride"]) == (843_480, 755, 80, [8, 16, 32])
    assert (s["T"], s["D"], s["neuron_layers"]) == (1, 4, 88)
    assert s["batchnorm"] == {"eps": 1e-3, "momentum": 0.03} and s["entry"] == "model" and s["epoch"] == -1
    model = tiny.model
    assert all(m.eps == 1e-3 for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    neurons = [m for _, m in model.neurons()]
    assert len(neurons) == 88 and all(type(n) is ILIF and n.L == 4 and n.code.encoding == "unary" for n in neurons)
    assert model.names[0] == "person" and model.names[79] == "toothbrush"
    rows = model.yaml["backbone"] + model.yaml["head"]
    assert [r[1] for r in rows[2:9:2]] == [1, 2, 3, 1]  # repeats of layers 2, 4, 6, 8 read from the file
    assert rows[25][3] == [1, 7] and rows[1][3] == [8, 7, 4, 2, True]  # layer 25 ratio 1; stem k7 s4 p2, no neuron


def test_ema_is_preferred_over_model_as_their_loader_does(tiny, spikeyolo_tiny, spikeyolo_tiny_reference, monkeypatch):
    from spikedet.io import spikeyolo

    ckpt = spikeyolo.read_spikeyolo_checkpoint(spikeyolo_tiny)
    other = spikeyolo.read_spikeyolo_checkpoint(spikeyolo_tiny)["model"]  # a second, independent copy
    stem = other.children["model"].children["1"].children["encode_conv"].state["_parameters"]["weight"]
    stem.data.mul_(-1)
    monkeypatch.setattr(spikeyolo, "read_spikeyolo_checkpoint", lambda path: {**ckpt, "model": other, "ema": ckpt["model"]})
    both = import_spikeyolo(spikeyolo_tiny)
    assert both.entry == "ema"
    assert compare_with_reference(both.model, spikeyolo_tiny_reference)["equal"]
    monkeypatch.setattr(spikeyolo, "read_spikeyolo_checkpoint", lambda path: {**ckpt, "model": other})
    assert not compare_with_reference(import_spikeyolo(spikeyolo_tiny).model, spikeyolo_tiny_reference)["equal"]


def test_names_shared_with_todays_ultralytics_become_stubs_not_live_classes():
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils import IterableSimpleNamespace

    u = SpikeYoloUnpickler(__import__("io").BytesIO(b""))
    for module, name, live in (("ultralytics.nn.tasks", "DetectionModel", DetectionModel),
                               ("ultralytics.utils", "IterableSimpleNamespace", IterableSimpleNamespace),
                               ("torch.nn.modules.conv", "Conv2d", torch.nn.Conv2d)):
        cls = u.find_class(module, name)
        assert cls is not live and issubclass(cls, ModuleStub) and cls.source == f"{module}.{name}"


def test_the_loaded_checkpoint_holds_only_stubs_and_tensors(spikeyolo_tiny):
    from spikedet.io.spikeyolo import read_spikeyolo_checkpoint

    ckpt = read_spikeyolo_checkpoint(spikeyolo_tiny)
    src = ckpt["model"]
    assert isinstance(src, ModuleStub) and isinstance(src.get("args"), ModuleStub)
    assert all(isinstance(m, ModuleStub) for _, m in src.named_modules())
    assert not any(isinstance(v, torch.nn.Module) for v in ckpt.values())


class _Evil:
    def __reduce__(self):
        import os

        return os.system, ("echo spikedet-test-should-never-run",)


def _fake_modules(monkeypatch, classes: dict[str, str]) -> dict[str, type]:
    """Classes pickled under the given dotted names (modules made up for the test)."""
    made = {}
    for dotted, base in classes.items():
        module_name, _, name = dotted.rpartition(".")
        parts = module_name.split(".")
        for i in range(1, len(parts) + 1):  # the pickler imports the module: every parent must exist
            prefix = ".".join(parts[:i])
            if prefix not in sys.modules:
                monkeypatch.setitem(sys.modules, prefix, types.ModuleType(prefix))
        module = sys.modules[module_name]
        cls = type(name, (), {"__module__": module_name, "__qualname__": name, "kind": base})
        setattr(module, name, cls)
        made[dotted] = cls
    return made


def test_any_other_global_is_refused_before_it_runs(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": _Evil(), "note": "ultralytics.nn.modules.yolo_spikformer"}, path)
    assert spikeyolo_kind(path) == "coco"  # it names their module, so it goes to the restricted reader
    with pytest.raises(SpikedetError, match="refusing to load global 'posix.system'|refusing to load global 'nt.system'"):
        load_model(path)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        SpikeYoloUnpickler.loads(pickle.dumps(_Evil(), protocol=2))


@pytest.mark.parametrize("kind, classes, words", [
    ("gen1", {"spikingjelly.clock_driven.neuron.MultiStepLIFNode": "neuron",
              "ultralytics.nn.modules.yolo_spikformer.MS_GetT": "layer"}, "Gen1"),
    ("binary", {"ultralytics.nn.modules.yolo_spikformer_bin.MS_ConvBlock": "layer"}, "binary-inference"),
])
def test_gen1_and_binary_checkpoints_are_refused_naming_the_kind(tmp_path, monkeypatch, kind, classes, words):
    made = _fake_modules(monkeypatch, classes)
    path = tmp_path / f"{kind}.pt"
    torch.save({"model": [cls() for cls in made.values()], "epoch": -1}, path)
    assert spikeyolo_kind(path) == kind
    for call in (lambda: load_model(path), lambda: check_weights(path, allow_pickle=False), lambda: import_spikeyolo(path)):
        with pytest.raises(SpikeYoloImportError) as info:
            call()
        message = str(info.value)
        assert words in message and "\n" not in message and str(path) in message


def test_a_spikeyolo_checkpoint_needs_no_pickle_opt_in_but_the_service_can_refuse_it(spikeyolo_tiny, tmp_path):
    assert weights_format(spikeyolo_tiny) == "spikeyolo"
    assert resolve(spikeyolo_tiny, allow_pickle=False) == spikeyolo_tiny
    assert check_weights(spikeyolo_tiny, allow_pickle=False) == spikeyolo_tiny
    with pytest.raises(SpikedetError, match="is a pickle"):
        resolve(spikeyolo_tiny, allow_pickle=False, restricted=False)
    plain = tmp_path / "plain.pt"
    torch.save({"model": {"w": torch.zeros(1)}}, plain)
    with pytest.raises(SpikedetError) as info:  # any other pickle still needs the opt-in
        resolve(plain, allow_pickle=False)
    assert str(info.value) == PICKLE_REFUSED.format(path=str(plain))


def test_import_spikeyolo_refuses_a_file_that_is_not_theirs(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"model": None, "note": "ultralytics.nn.modules.yolo_spikformer"}, path)
    with pytest.raises(SpikeYoloImportError, match="not their DetectionModel"):
        import_spikeyolo(path)
    with pytest.raises(SpikeYoloImportError, match="not found"):
        import_spikeyolo(tmp_path / "missing.pt")


def _shared(name: str) -> Path:
    path = SHARED / name
    if not path.is_file():
        pytest.skip(f"{path} is not present (the project's shared SpikeYOLO fixture)")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("checkpoint, reference, entry, params", [
    ("spikeyolo-tiny.pt", "spikeyolo-tiny.ref.safetensors", "ema", 843_480),
    ("spikeyolo-n.pt", "spikeyolo-n.ref.safetensors", "ema", 13_271_632),
])
def test_shared_fixture_checkpoints_compute_their_spikes_exactly(checkpoint, reference, entry, params):
    imported = import_spikeyolo(_shared(checkpoint))
    assert imported.entry == entry and imported.summary()["parameters"] == params
    report = compare_with_reference(imported.model, _shared(reference))
    for x, r in report["inputs"].items():
        assert r["layers"] == r["layers_compared_exactly"] == 88 and r["spike_mismatches"] == 0, (x, r)
        assert r["output_close"], (x, r["output_max_abs_diff"])
    assert report["equal"]


def test_time_steps_come_from_their_get_t(spikeyolo_tiny, monkeypatch):
    """T is read from MS_GetT (the fixture has T=1; a T=2 file gets T=2 neurons and a head averaging over T)."""
    from spikedet.io import spikeyolo

    ckpt = spikeyolo.read_spikeyolo_checkpoint(spikeyolo_tiny)
    ckpt["model"].children["model"].children["0"].state["T"] = 2
    monkeypatch.setattr(spikeyolo, "read_spikeyolo_checkpoint", lambda path: ckpt)
    imported = import_spikeyolo(spikeyolo_tiny)
    assert imported.T == 2 and {n.T for _, n in imported.model.neurons()} == {2}
    with torch.no_grad():
        y = imported.model(torch.rand(1, 3, 64, 64))[0]
    assert y.shape == (1, 84, 84) and torch.isfinite(y).all()


def test_numpy_scalars_of_a_training_run_load_as_inert_records(tmp_path):
    """A last.pt mid-run holds numpy scalars (best_fitness): recorded by stubs, never rebuilt by numpy."""
    import numpy as np

    from spikedet.io.spikeyolo import read_spikeyolo_checkpoint

    path = tmp_path / "last.pt"
    torch.save({"best_fitness": np.float64(0.5), "note": "ultralytics.nn.modules.yolo_spikformer"}, path)
    ckpt = read_spikeyolo_checkpoint(path)
    assert isinstance(ckpt["best_fitness"], ModuleStub) and ckpt["best_fitness"].source.endswith("multiarray.scalar")
