"""Energy reports from the spike counts an exported graph returns, so an ONNX Runtime deployment gets the same
report as the PyTorch path without PyTorch hooks.

A graph exported with ``export_onnx(..., with_counts=True)`` returns, after ``output0``, the exact spike
counts of every spike train (spikes, silent elements, sum of codes) and describes in its metadata which conv
or neuron each belongs to (:func:`spikedet.convert.onnx.count_points`). Everything else a report needs (MACs,
elements, weights, names, the ANN reference) depends only on the network and the input size: it is recorded
once, by :func:`~spikedet.measure.energy.measure` on one PyTorch pass over a blank image of that size. Each
image's report is then that template with the graph's counts filled in, built by the same
:func:`~spikedet.measure.report.build_report` as the PyTorch path, so the two are identical in structure.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from spikedet.convert.onnx import count_points, export_onnx, spike_counts
from spikedet.measure.costs import EnergyConstants
from spikedet.measure.energy import measure
from spikedet.measure.report import EnergyReport, build_report


class GraphEnergy:
    """Turns one image's count outputs into an :class:`EnergyReport` (``counting`` is ``auto``: the codes'
    own encodings, as the graph counts them)."""

    def __init__(self, model: nn.Module, imgsz: int | tuple[int, int], description: dict):
        param = next(model.parameters())
        height, width = (imgsz, imgsz) if isinstance(imgsz, numbers.Integral) else imgsz
        blank = torch.zeros(1, 3, height, width, dtype=param.dtype, device=param.device)
        with measure(model, "auto") as recorder, torch.no_grad():
            model(blank)
        self.convs = recorder.passes[-1]
        self.neurons = recorder.neuron_passes[-1]
        self.description = description
        points = self.points = description["points"]
        counted_convs = {p["record"] for p in points if p["kind"] == "conv"}
        spiking_convs = {i for i, r in enumerate(self.convs) if r.kind != "real"}
        if counted_convs != spiking_convs or len({p["record"] for p in points if p["kind"] == "neuron"}) != len(
                self.neurons):
            raise ValueError("the graph's spike counts do not match this model's convs and neurons")

    def report(self, counts: Sequence[np.ndarray], constants: EnergyConstants | None = None) -> EnergyReport:
        """The report of one image from the graph's count outputs (everything after ``output0``, in either
        form, see :func:`~spikedet.convert.onnx.count_points`)."""
        convs = [dataclasses.replace(r, spikes=[0.0], silent=[0.0], code_sums=[0.0]) if r.kind != "real" else r
                 for r in self.convs]
        neurons = list(self.neurons)
        counts = spike_counts(list(counts), self.description)
        for point in self.points:
            spikes, silent, code_sum = (float(v) for v in np.asarray(counts[point["output"]]).reshape(3))
            if point["kind"] == "conv":
                record = convs[point["record"]]
                record.spikes[0] += spikes
                record.code_sums[0] += code_sum
                if point["alone"]:
                    record.silent[0] += silent
            else:
                neurons[point["record"]] = dataclasses.replace(neurons[point["record"]], spikes=[spikes])
        return build_report(convs, neurons, 0, constants or EnergyConstants(), "auto", None)


class GraphSession:
    """The spike-mode ``model`` exported at ``imgsz`` with its spike counts (into ``folder``) and run by ONNX
    Runtime on the CPU: :meth:`run` gives ``output0`` and the image's energy report from the same run.
    ``form``: ``codes`` (the graph returns every train's codes, counted here: the fast form on ONNX Runtime)
    or ``counts`` (the graph counts them itself)."""

    def __init__(self, model: nn.Module, imgsz: int, folder, threads: int = 1, form: str = "codes"):
        import onnxruntime as ort

        path = export_onnx(model, f"{folder}/model-{imgsz}.onnx", imgsz=imgsz,
                           with_counts="codes" if form == "codes" else True)
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.energy = GraphEnergy(model, imgsz, count_points(path))
        self.imgsz = imgsz
        self.path = path

    def run(self, images: np.ndarray, constants: EnergyConstants | None = None) -> tuple[np.ndarray, EnergyReport]:
        """``images``: float32 ``[1, 3, imgsz, imgsz]`` in 0..1 (RGB)."""
        outputs = self.session.run(None, {"images": images})
        return outputs[0], self.energy.report(outputs[1:], constants)
