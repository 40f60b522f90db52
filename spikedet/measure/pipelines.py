"""The measuring commands as Python functions: ``spikedet info``, ``spikedet energy`` and ``spikedet analyze``.

Each takes weights (a path or a file in ``weights/``; default: the shipped weights or ``$SPIKEDET_WEIGHTS``)
and returns what the command prints (``as_dict()``/``to_dict()`` is its ``--json`` output). The defaults are
the commands' defaults (the CLI reads them from these signatures).

    >>> from spikedet.measure import analyze_weights, measure_energy, model_info
    >>> model_info("spikeyolo-s.yaml")["params"]                                   # doctest: +SKIP
    23151776
    >>> [e.report.efficiency for e in measure_energy(source="bus.jpg")]            # doctest: +SKIP
    [2.6]
    >>> analyze_weights(source="data/coco8/images/val", output="analysis")         # doctest: +SKIP
    {'code_histograms': PosixPath('analysis/code_histograms.png'), ...}
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from spikedet.convert.bitplane import deployed, spiking
from spikedet.engine.device import select_device
from spikedet.engine.results import Detection, detections, image_record
from spikedet.engine.yolo import SpikeYOLO
from spikedet.io.images import check_imgsz, default_image, image_files, model_stride
from spikedet.io.outputs import output_folder
from spikedet.io.weights import load_model, resolve
from spikedet.measure import analysis, energy
from spikedet.measure.costs import EnergyConstants
from spikedet.measure.opcount import layer_table
from spikedet.model.detection import describe_model
from spikedet.nn.conv import SpikeConv
from spikedet.nn.mode import is_reparameterized
from spikedet.progress import progress


def model_info(model: str | Path = "spikeyolo-n.yaml", imgsz: int | list[int] = 640, device: str | None = None) -> dict:
    """Parameters, MACs (re-parameterized and as trained) and the layer table of a model YAML or weights."""
    module = load_model(model, allow_pickle=True, device=select_device(device))
    check_imgsz(imgsz, model_stride(module))
    size = tuple(imgsz) if isinstance(imgsz, (list, tuple)) else (imgsz, imgsz)
    rows = layer_table(module, size)
    merged_already = is_reparameterized(module) and any(
        m.trained_macs_per_pixel for m in module.modules() if isinstance(m, SpikeConv))
    return {
        "model": str(model),
        "scale": module.yaml.get("scale"),
        "nc": module.yaml["nc"],
        "imgsz": list(size),
        "params": sum(p.numel() for p in module.parameters()),
        "macs": sum(r.macs for r in rows),
        "macs_unmerged": sum(r.macs_unmerged for r in rows),
        "neuron": describe_model(module)["neuron"],
        "reparameterized_weights": merged_already,
        "layers": [r.as_dict() for r in rows],
    }


def spiking_yolo(weights: str | Path | None, path: str = "integer", imgsz: int | None = None) -> SpikeYOLO:
    """A :class:`SpikeYOLO` of ``weights`` whose model runs in spike mode on ``path`` (converted if needed)."""
    yolo = SpikeYOLO(resolve(weights, allow_pickle=True))
    if imgsz is not None:
        check_imgsz(imgsz, model_stride(yolo.model))
    yolo.model = spiking(yolo.model, path)
    return yolo


def _sources(source: str | Path | None) -> list[str]:
    return [str(p) for p in image_files(source or default_image())]


@dataclass
class ImageEnergy:
    """One image: its energy report, its size and what was detected on it."""

    report: energy.EnergyReport
    detections: list[Detection]
    width: int = 0
    height: int = 0

    def to_dict(self) -> dict:
        """The one image record (:func:`~spikedet.engine.results.image_record`), the full report under ``energy``."""
        return image_record(self.width, self.height, self.detections, path=self.report.image,
                            energy=self.report.to_dict(layers=True))


def predict_records(yolo: SpikeYOLO, energy_per_image: bool = False, constants: EnergyConstants | None = None,
                    **predict_args) -> Iterator[tuple[object, list[Detection], energy.EnergyReport | None]]:
    """``(Results, detections, energy report or None)`` per image of Ultralytics' own ``predict`` loop
    (``predict_args`` are its settings: source, save, imgsz ...); with ``energy_per_image`` the model runs in
    spike mode and each image comes with its energy report. A spiking model always runs as deployed
    (:func:`~spikedet.convert.bitplane.deployed`), energy or not."""
    yolo.model = deployed(yolo.model)
    if not energy_per_image:
        for r in yolo.predict(**predict_args, stream=True):
            yield r, detections(r), None
        return
    constants = constants or EnergyConstants()
    with energy.measure(yolo.model, "auto") as recorder:
        for r in yolo.predict(**predict_args, stream=True):
            yield r, detections(r), recorder.next_report(constants, r.path)


def measure_energy(weights: str | Path | None = None, source: str | Path | None = None, *, imgsz: int = 640,
                   device: str | None = None, conf: float = 0.25, counting: energy.Counting = "auto",
                   path: str = "integer", constants: EnergyConstants | None = None) -> list[ImageEnergy]:
    """Per-image, per-layer energy (ACs/MACs from the actual spikes), each image letterboxed on its own.

    Args:
        weights: spiking weights (converted on the fly when they are not).
        source: an image, folder or glob (default: Ultralytics' bus.jpg).
        imgsz, conf, device: inference size, detection confidence threshold, torch device.
        counting: spikes counted by the neuron's own encoding (``auto``), as bit planes or as unary steps.
        path: execution path (``integer`` or ``bitplane``; the same spikes either way).
        constants: the energy models' constants (default: :class:`~spikedet.measure.costs.EnergyConstants`).
    """
    files = _sources(source)
    constants = constants or EnergyConstants()
    yolo = spiking_yolo(weights, path, imgsz)
    results = []
    with energy.measure(yolo.model, counting) as recorder:
        for file, r in progress(yolo.predict_files(files, imgsz=imgsz, conf=conf, device=device), "energy",
                                len(files)):
            h, w = r.orig_shape[:2]
            results.append(ImageEnergy(recorder.next_report(constants, file), detections(r), w, h))
    return results


def analyze_weights(weights: str | Path | None = None, source: str | Path | None = None,
                    output: str | Path = "analysis", *, imgsz: int = 640, device: str | None = None,
                    conf: float = 0.25, counting: energy.Counting = "auto", path: str = "integer",
                    constants: EnergyConstants | None = None) -> dict[str, Path]:
    """Activation analysis (code histograms, energy per layer, firing rates) written into the folder ``output``;
    the arguments are :func:`measure_energy`'s. Returns the files written by kind."""
    files = _sources(source)
    output = output_folder(output)  # before the model loads
    yolo = spiking_yolo(weights, path, imgsz)
    return analysis.analyze(yolo, files, output, imgsz=imgsz, conf=conf, device=device, counting=counting,
                            constants=constants)
