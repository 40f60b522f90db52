"""An integer model on ONNX Runtime: its graph of integer ops, the float decode, and the energy report.

The exported graph (:mod:`spikedet.convert.integer_onnx`, ``codes="trains"``) returns the head accumulators and
every spike train a conv reads, as it holds them: each neuron's codes and each max-pooled copy of them. The
accumulators become ``output0`` through the model's own head decode (the same float32 values the PyTorch path
decodes: ``acc * scale``); the trains become the energy report through the template
:class:`~spikedet.measure.graph_energy.GraphEnergy` fills for float graphs. Which trains each conv reads is read
off the graph (``concat`` places trains at channel offsets, ``add`` sums trains into the same channels, nearest
upsampling copies each element ``scale**2`` times); each train is counted once per image.
"""

from __future__ import annotations

import collections
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from spikedet.convert.integer_onnx import METADATA_KEY, export_integer_onnx
from spikedet.convert.integer_onnx_decode import decode_heads
from spikedet.convert.onnx import code_histogram, histogram_counts
from spikedet.errors import SpikedetError
from spikedet.io.integer_format import graph_document
from spikedet.measure.costs import EnergyConstants
from spikedet.measure.graph_energy import GraphEnergy
from spikedet.measure.report import EnergyReport
from spikedet.snn.code import SpikeCode

#: float64 elements converted at a time in the decode (about 256 KB: cache-resident)
_DECODE_BLOCK = 2**15
#: report templates kept per session, one per input size, the least recently used dropped first
TEMPLATES = 64


def graph_trains(graph: dict) -> tuple[list[dict], list[tuple[str, int]]]:
    """The energy points of the graph's convs (per conv, in call order, each train it reads) and the distinct
    trains they name: ``(source node id, repeat)``. A source is a neuron or a max-pool of codes (the graph
    computes both); ``repeat`` is how many times nearest upsampling copies each of its elements on the way
    (``scale**2`` per upsample), so the train's counts are the source's times ``repeat``."""
    nodes = {n["id"]: n for n in graph["nodes"]}
    channels: dict[str, int] = {}
    for n in graph["nodes"]:  # channel counts of every node
        if n["op"] == "conv":
            channels[n["id"]] = int(n["channels"])
        elif n["op"] == "concat":
            channels[n["id"]] = sum(channels[i] for i in n["inputs"])
        elif n["op"] != "input":
            channels[n["id"]] = channels[n["inputs"][0]]

    def trains(node_id: str, offset: int, repeat: int) -> list[tuple[tuple[str, int], int]]:
        node = nodes[node_id]
        if node["op"] in ("neuron", "maxpool"):
            source_neuron(nodes, node_id)  # a max-pool of anything but codes is not a train
            return [((node_id, repeat), offset)]
        if node["op"] == "concat":
            out = []
            for i in node["inputs"]:
                out += trains(i, offset, repeat)
                offset += channels[i]
            return out
        if node["op"] == "add":
            return [t for i in node["inputs"] for t in trains(i, offset, repeat)]
        if node["op"] == "upsample":
            return trains(node["inputs"][0], offset, repeat * int(node["scale"]) ** 2)
        raise SpikedetError(f"{node_id}: a conv reads {node['op']} output, not spike codes")

    keys: list[tuple[str, int]] = []
    points: list[dict] = []
    record = 0
    for n in graph["nodes"]:
        if n["op"] != "conv":
            continue
        if n["inputs"] != ["input"]:
            terms = trains(n["inputs"][0], 0, 1)
            shared = {off for i, (_, off) in enumerate(terms) if any(o == off for _, o in terms[:i])}
            for key, off in terms:
                if key not in keys:
                    keys.append(key)
                points.append({"kind": "conv", "record": record, "output": keys.index(key), "alone": off not in shared})
        record += 1
    for i, n in enumerate(x for x in graph["nodes"] if x["op"] == "neuron"):
        key = (n["id"], 1)
        if key not in keys:
            keys.append(key)
        points.append({"kind": "neuron", "record": i, "output": keys.index(key)})
    return points, keys


def source_neuron(nodes: dict[str, dict], node_id: str) -> dict:
    """The neuron whose codes a train source (a neuron, or max-pools and upsamples of its codes) holds."""
    node = nodes[node_id]
    while node["op"] in ("maxpool", "upsample"):
        node = nodes[node["inputs"][0]]
    if node["op"] != "neuron":
        raise SpikedetError(f"{node_id}: a conv reads a max-pool of {node['op']} output, not spike codes")
    return node


class _Source(NamedTuple):
    """How one train source is counted: its graph output, the stored range, each bin's code and spikes."""

    output: str
    lo: int
    hi: int
    codes: np.ndarray
    spikes: np.ndarray
    valid: np.ndarray  # bins holding a code of 0..L (no element may fall outside)


def _code(node: dict) -> SpikeCode:
    return SpikeCode(int(node["levels"]), float(node["n"]), int(node["zero"]), node["encoding"], node["rest"])


class IntegerGraphSession:
    """The integer ``model`` on ONNX Runtime's CPU provider: :meth:`run` gives ``output0`` (decoded by the
    model's head) and the image's energy report, from one run of the graph (exported into ``folder``). The graph
    takes any input size; the report's template (each layer's shapes and MACs) is made once per input size."""

    def __init__(self, model: nn.Module, folder, threads: int = 1):
        import onnxruntime as ort

        graph, tensors = graph_document(model)
        arrays = {k: v.cpu().numpy() for k, v in tensors.items()}
        self.path = export_integer_onnx(graph, arrays, f"{folder}/integer.onnx", codes="trains")
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.names = [o.name for o in self.session.get_outputs()]
        self.model, self.graph, self.head = model, graph, model.model[-1]
        self.scales = {o["name"]: (arrays[o["scale"]].reshape(1, -1, 1, 1), int(o["divisor"])) for o in graph["outputs"]}
        points, self.keys = graph_trains(graph)
        meta = json.loads(self.session.get_modelmeta().custom_metadata_map[METADATA_KEY])
        stored = {o["codes"]: o for o in meta["outputs"] if "codes" in o}
        nodes = {n["id"]: n for n in graph["nodes"]}
        self.sources: dict[str, _Source] = {}
        for source, _ in self.keys:
            spec, code = stored[source], _code(source_neuron(nodes, source))
            bins = np.arange(spec["lo"], spec["hi"] + 1, dtype=np.int64) + spec["offset"]
            valid = (bins >= 0) & (bins <= code.levels)
            spikes = np.zeros(len(bins), dtype=np.int64)
            spikes[valid] = code.spike_table().long().numpy()[bins[valid]]
            self.sources[source] = _Source(f"codes:{source}", spec["lo"], spec["hi"], bins, spikes, valid)
        self.points = points
        # (height, width) -> the report's template, most recently used last; a lock, as making one runs the model
        self._energy: collections.OrderedDict[tuple[int, int], GraphEnergy] = collections.OrderedDict()
        self._energy_lock = threading.Lock()
        self._counter = ThreadPoolExecutor(1, thread_name_prefix="spikedet-counts")

    def decode(self, heads: dict[str, np.ndarray]) -> torch.Tensor:
        """``output0`` from the head accumulators: ``acc * scale / divisor`` in float64, rounded to float32, then
        the head's own decode (the values the PyTorch path decodes)."""
        values = {}
        for name, acc in heads.items():
            scale, divisor = self.scales[name]
            single = np.empty(acc.shape, np.float32)
            plane = acc.shape[-2] * acc.shape[-1]  # one row per (image, channel)
            flat_acc, flat = acc.reshape(-1, plane), single.reshape(-1, plane)
            flat_scale = np.broadcast_to(scale.reshape(1, -1), acc.shape[:2]).reshape(-1, 1)
            rows = max(1, _DECODE_BLOCK // flat.shape[1])  # blocks of channels that stay in the cache
            for r in range(0, len(flat), rows):
                real = flat_acc[r:r + rows].astype(np.float64)  # exact: accumulators are below 2**53
                np.multiply(real, flat_scale[r:r + rows], out=real)  # the two roundings of acc * scale / divisor
                np.divide(real, divisor, out=real)
                flat[r:r + rows] = real
            values[name] = torch.from_numpy(single)
        with torch.no_grad():
            return decode_heads(self.head, self.graph["head"], values)

    def counts(self, values: dict[str, np.ndarray]) -> list[np.ndarray]:
        """``[spikes, silent, sum of codes]`` of each distinct train, in the order of ``keys``: one histogram
        per source (a neuron's codes or a max-pool of them), times the copies upsampling makes of each."""
        per_source: dict[str, np.ndarray] = {}
        out = []
        for source, repeat in self.keys:
            if source not in per_source:
                src = self.sources[source]
                histogram = code_histogram(values[src.output], src.lo, src.hi)
                if histogram[~src.valid].any():
                    raise SpikedetError(f"{source}: the graph returned codes outside 0..L")
                per_source[source] = histogram_counts(histogram, src.codes, src.spikes)
            out.append(per_source[source] * repeat)
        return out

    def energy(self, height: int, width: int) -> GraphEnergy:
        """The report's template for inputs of ``height x width``: made by one PyTorch pass of a blank image
        (0.3 s at 640x480 here) the first time that size is seen, and kept for the :data:`TEMPLATES` sizes
        used last (a letterbox gives a few dozen sizes per ``imgsz``; about 100 KB each)."""
        key = (height, width)
        with self._energy_lock:
            if key not in self._energy:
                self._energy[key] = GraphEnergy(self.model, key, {"form": "counts", "points": self.points})
                while len(self._energy) > TEMPLATES:
                    self._energy.popitem(last=False)
            self._energy.move_to_end(key)
            return self._energy[key]

    def run(self, images: np.ndarray, constants: EnergyConstants | None = None) -> tuple[np.ndarray, EnergyReport]:
        """``images``: float32 ``[1, 3, H, W]`` in 0..1 (RGB), any ``H`` and ``W`` the model's stride divides."""
        energy = self.energy(*images.shape[-2:])
        values = dict(zip(self.names, self.session.run(None, {"images": images})))
        heads = {o["name"]: values[o["name"]] for o in self.graph["outputs"]}
        # count on a second thread while this one decodes (both release the GIL: OpenCV, numpy casts, torch)
        counting = self._counter.submit(self.counts, values)
        output0 = self.decode(heads).numpy()
        return output0, energy.report(counting.result(), constants)
