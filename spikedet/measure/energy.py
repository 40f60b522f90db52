"""Per-image, per-layer counts of what a model computes on the spikes it actually fires, and their energy.

Counting (the convention of SpikeYOLO, Luo et al. ECCV 2024, and of the IBRA-LIF paper):

- every conv's operation count is ``MACs = C_in * C_out * k^2 * H_out * W_out / groups`` on the
  re-parameterized network (the one that runs on spikes); detect-head convs count, DFL does not;
- a conv whose input is real-valued (the first conv, on the image) performs its MACs;
- a conv whose input is spikes performs ``ACs = MACs * fr``, where the firing rate ``fr`` is the mean
  number of spikes per input element: the mean popcount of the codes for binary (bit-plane, IBRA-LIF)
  counting, the mean code for unary (thermometer, I-LIF) counting, the mean number of nonzero digits for
  signed and NAF codes; summed over the trains of a residual sum; with ``T > 1`` the SNN's MACs and input
  elements count every timestep, the ANN's MACs once;
- every neuron population's updates (neurons x timesteps) and the spikes it fires;
- the ANN reference is the trained network in its cheapest form (a merged conv is charged at the MACs of the
  chain it replaced when that is cheaper); ``ann_merged_mJ`` is SpikeYOLO's convention, the merged network.

Spike counts come from per-code histograms and a table of spikes per code, computed once per code.
:mod:`spikedet.measure.costs` turns the counts into energy under three named models (the field's
compute-only convention, an int8 baseline, a memory-aware model); :mod:`spikedet.measure.report` holds the
per-image :class:`EnergyReport`.

Use :func:`measure` around any forward pass of a model in spike mode (Ultralytics' predictor included):
it installs forward hooks on the model's convs and neurons for the duration of the block, and
:meth:`EnergyRecorder.reports` then gives one :class:`EnergyReport` per image.

    >>> import torch
    >>> from spikedet.convert.bitplane import spiking
    >>> from spikedet.model.detection import SpikeDetectionModel
    >>> model = spiking(SpikeDetectionModel("spikeyolo-t.yaml", verbose=False).eval())
    >>> with measure(model) as recorder, torch.no_grad():
    ...     _ = model(torch.rand(1, 3, 64, 64))
    >>> report = recorder.reports()[0]
    >>> report.snn_mJ > 0 and report.ann_mJ > 0 and len(report.layers) > 50
    True
    >>> sorted(report.energy_models)
    ['convention', 'integer', 'memory', 'spikeyolo']
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from spikedet.measure.costs import EnergyConstants
from spikedet.measure.report import CAVEAT, EnergyReport, LayerEnergy, build_report
from spikedet.nn.conv import SpikeConv
from spikedet.snn.neurons import SpikingNeuron
from spikedet.snn.spikes import SpikeTrain

__all__ = ["CAVEAT", "EnergyConstants", "EnergyRecorder", "EnergyReport", "LayerEnergy", "code_histograms",
           "estimate_energy", "measure"]

Counting = Literal["auto", "binary", "unary"]


@dataclass
class _ConvPass:
    """What one conv saw in one forward pass (per image of the batch)."""

    name: str
    kind: str
    macs: list[float]
    ann_macs: list[float]
    merged_macs: list[float]
    spikes: list[float]
    elements: list[float]
    encoding: str
    sources: list[str]
    silent: list[float]  # input elements that send no spike (among ``observed``)
    outputs: list[float]  # output elements (potentials), every timestep
    weights: float
    ann_inputs: float  # input elements of one timestep (the ANN's activations)
    ann_outputs: float  # output elements of one timestep
    observed: float = 0.0  # input elements whose silence is observable (not summed with another train)
    code_sums: list[float] | None = None  # sum of the integer codes fed (SpikeYOLO's spreadsheet convention)


@dataclass
class _NeuronPass:
    """What one neuron population did in one forward pass (per image of the batch)."""

    name: str
    T: int
    updates: list[float]
    spikes: list[float]


class EnergyRecorder:
    """Collects per-conv and per-neuron counts during forward passes (installed by :func:`measure`)."""

    def __init__(self, counting: Counting = "auto"):
        if counting not in ("auto", "binary", "unary"):
            raise ValueError(f"counting must be 'auto', 'binary' or 'unary', got {counting!r}")
        self.counting = counting
        self.passes: list[list[_ConvPass]] = []
        self.neuron_passes: list[list[_NeuronPass]] = []
        self.batch = 1
        self._cursor = 0  # the next image of the last pass that next_report() reports
        self._hist_cache: dict = {}
        self._count_cache: dict = {}

    def start_pass(self, batch: int) -> None:
        self.batch = max(int(batch), 1)
        self.passes.append([])
        self.neuron_passes.append([])
        self._cursor = 0
        self._hist_cache = {}
        self._count_cache = {}

    def counts(self, train: SpikeTrain) -> np.ndarray:
        """Per image ``[spikes, silent elements, sum of codes]`` of a train (``[batch, 3]`` float64), from its
        code histogram and a per-code table (computed once per code): a train read by several convs is counted
        once and the bookkeeping per conv stays a few Python operations."""
        code = self._code(train.code)
        return _memo(self._count_cache, train.codes, code,
                     lambda: self.histogram(train.codes, code.levels).numpy() @ _count_table(code))

    def histogram(self, codes: Tensor, levels: int) -> Tensor:
        """Per-image code histogram ``[batch, levels + 1]`` of a spike tensor, reused when the same train is
        seen again (a neuron's output read by one or more convs)."""
        return _memo(self._hist_cache, codes, levels, lambda: code_histograms(codes, self.batch, levels))

    def next_report(self, constants: EnergyConstants | None = None, image: str | None = None) -> EnergyReport:
        """The report of the next image of the last pass (for consumers that get results one image at a time)."""
        records = self.passes[-1] if self.passes else []
        if not records:
            raise RuntimeError("no forward pass was recorded")
        index = self._cursor
        if index >= len(records[0].macs):
            raise RuntimeError("more results than images in the last forward pass")
        self._cursor = index + 1
        return build_report(records, self.neuron_passes[-1], index, constants or EnergyConstants(), self.counting,
                            image)

    @property
    def current(self) -> list[_ConvPass]:
        if not self.passes:
            self.start_pass(self.batch)
        return self.passes[-1]

    def conv_hook(self, name: str):
        """A forward hook recording what the conv ``name`` computed (see :func:`measure`)."""

        def hook(conv: SpikeConv, args, y: Tensor) -> None:
            x = args[0]
            if isinstance(x, Tensor):
                self.record_real_conv(name, conv, x, y)
            else:
                self.record_spike_conv(name, conv, x, y)

        return hook

    def neuron_hook(self, name: str):
        """A forward hook recording a neuron population's updates and spikes (spike mode only)."""

        def hook(neuron: SpikingNeuron, args, out) -> None:
            if isinstance(out, SpikeTrain):
                self.record_neuron(name, neuron, out)

        return hook

    def _code(self, code):
        # counting as another encoding reads the raw codes q (zero offset included, no rest code)
        return code if self.counting == "auto" else replace(code, encoding=self.counting, rest=None)

    def record_neuron(self, name: str, neuron: SpikingNeuron, train: SpikeTrain) -> None:
        b = self.batch
        spikes = self.counts(train)[:, 0].tolist()
        if not self.neuron_passes:
            self.start_pass(b)
        self.neuron_passes[-1].append(_NeuronPass(name, int(getattr(neuron, "T", 1)), [train.codes.numel() / b] * b,
                                                  spikes))

    def record_real_conv(self, name: str, conv: SpikeConv, x: Tensor, y: Tensor) -> None:
        b = self.batch
        macs, cheapest, merged, steps = _macs(conv, y, b)
        elements = x[0].numel() * _per_image(x.shape[0], b)
        outputs = y[0].numel() * _per_image(y.shape[0], b) if y.dim() == 4 else y.numel() / b
        self.current.append(_ConvPass(name, "real", [macs] * b, [cheapest] * b, [merged] * b, [0.0] * b,
                                      [float(elements)] * b, "real", [], [0.0] * b, [float(outputs)] * b,
                                      float(_weights(conv)), elements / steps, outputs / steps))

    def record_spike_conv(self, name: str, conv: SpikeConv, x, y: Tensor) -> None:
        b = self.batch
        macs, cheapest, merged, steps = _macs(conv, y, b)
        terms = x.terms()
        shared = {off for i, (_, off) in enumerate(terms) if any(o == off for _, o in terms[:i])}
        total = np.zeros((b, 3))  # spikes, silent elements, sum of codes
        silent = np.zeros(b)
        encodings = set()
        observed = 0.0
        for train, off in terms:
            encodings.add(self._code(train.code).encoding)
            counts = self.counts(train)
            total += counts
            # Trains summed into the same channels are silent only where all are: their silence is not
            # observable from histograms, so those channels stay out of the sparsity figure.
            if off not in shared:
                silent += counts[:, 1]
                observed += train.codes.numel() / b
        spikes, code_sums = total[:, 0], total[:, 2]
        first = terms[0][0].codes
        rows = first.shape[0] if first.dim() == 4 else 1
        elements = conv.in_channels * first.shape[-2] * first.shape[-1] * _per_image(rows, b)
        outputs = y[0].numel() * _per_image(y.shape[0], b) if y.dim() == 4 else y.numel() / b
        self.current.append(_ConvPass(name, x.describe(), [macs] * b, [cheapest] * b, [merged] * b, spikes.tolist(),
                                      [float(elements)] * b, "/".join(sorted(encodings)), [t.source for t, _ in terms],
                                      silent.tolist(), [float(outputs)] * b, float(_weights(conv)), elements / steps,
                                      outputs / steps, observed, code_sums.tolist()))

    def reports(self, constants: EnergyConstants | None = None, images: list[str] | None = None) -> list[EnergyReport]:
        """One report per image of the last forward pass."""
        constants = constants or EnergyConstants()
        records = self.passes[-1] if self.passes else []
        neurons = self.neuron_passes[-1] if self.neuron_passes else []
        n = len(records[0].macs) if records else 0
        names = images or [None] * n
        return [build_report(records, neurons, i, constants, self.counting, names[i] if i < len(names) else None)
                for i in range(n)]


@contextlib.contextmanager
def measure(model: nn.Module, counting: Counting = "auto"):
    """Record energy counts of every forward pass of ``model`` inside the block.

    Installs a pre-hook on ``model`` (each top-level forward starts a new pass) and a forward hook on each of
    its :class:`~spikedet.nn.conv.SpikeConv` layers and spiking neurons, removed when the block ends. The
    model must be in spike mode (:func:`spikedet.nn.mode.set_spike_mode`) for spikes to be seen. Yields the
    :class:`EnergyRecorder`.
    """
    recorder = EnergyRecorder(counting)

    def start(module, args):
        x = args[0] if args else None
        recorder.start_pass(x.shape[0] if isinstance(x, Tensor) else 1)

    handles = [model.register_forward_pre_hook(start)]
    for name, m in model.named_modules():
        if isinstance(m, SpikeConv):
            handles.append(m.register_forward_hook(recorder.conv_hook(name)))
        elif isinstance(m, SpikingNeuron):
            handles.append(m.register_forward_hook(recorder.neuron_hook(name)))
    try:
        yield recorder
    finally:
        for handle in handles:
            handle.remove()


def _memo(cache: dict, codes: Tensor, key, compute):
    """``compute()`` for the tensor ``codes`` (and ``key``), kept in ``cache``. The cache holds the last few
    tensors themselves (so an id is never reused by a new tensor while cached) and stays small: a train
    consumed again much later is simply counted again."""
    entry = cache.get((id(codes), key))
    if entry is not None and entry[0] is codes:
        return entry[1]
    value = compute()
    cache[(id(codes), key)] = (codes, value)
    while len(cache) > 8:
        cache.pop(next(iter(cache)))
    return value


def _per_image(total_rows: int, batch: int) -> int:
    return max(total_rows // batch, 1)


def _weights(conv: SpikeConv) -> int:
    return conv.weight.numel()


def _macs(conv: SpikeConv, y: Tensor, batch: int) -> tuple[float, float, float, float]:
    """``(SNN MACs, cheapest ANN MACs, merged ANN MACs, timesteps)`` of one image.

    The SNN runs every conv once per timestep (``rows = T x batch``); the ANN it is compared with runs once.
    """
    rows = y.shape[0] if y.dim() == 4 else 1
    reps = rows / batch
    once = conv.macs(tuple(y.shape[-2:]))
    cheapest = once
    if conv.trained_macs_per_pixel is not None:
        cheapest = min(once, conv.trained_macs_per_pixel * y.shape[-2] * y.shape[-1])
    return once * reps, cheapest, once, max(reps, 1.0)


def code_histograms(codes: Tensor, batch: int, levels: int) -> Tensor:
    """Per-image histogram of integer codes: ``[batch, levels + 1]`` (int64).

    ``codes`` is ``[rows, C, H, W]`` with ``rows = T * batch`` (time major) or ``[..., C, H, W]``.
    """
    if batch == 1:  # the narrowest integer type that holds the codes counts fastest on CPU
        narrow = torch.uint8 if levels < 256 else torch.int16 if levels < 32768 else torch.int32
        return torch.bincount(codes.reshape(-1).to(narrow), minlength=levels + 1)[: levels + 1].view(1, -1).cpu()
    q = codes.reshape(-1, *codes.shape[-3:]) if codes.dim() != 4 else codes
    per = _per_image(q.shape[0], batch)
    q = q.reshape(per, batch, -1).transpose(0, 1).reshape(batch, -1).to(torch.int64)
    offsets = torch.arange(batch, device=q.device).view(-1, 1) * (levels + 1)
    hist = torch.bincount((q + offsets).flatten(), minlength=batch * (levels + 1))
    return hist[: batch * (levels + 1)].view(batch, levels + 1).cpu()


_TABLES: dict = {}


def _count_table(code) -> np.ndarray:
    """``[L + 1, 3]``: per code 0..L, the spikes it sends under the code's encoding, whether it sends none, and
    the code itself (a histogram times this table gives spikes, silent elements and the sum of codes)."""
    if code not in _TABLES:
        spikes = code.spike_table().numpy()
        _TABLES[code] = np.stack([spikes, (spikes == 0).astype(np.float64), np.arange(len(spikes), dtype=np.float64)], 1)
    return _TABLES[code]


@torch.no_grad()
def estimate_energy(
    model: nn.Module,
    images: Tensor,
    constants: EnergyConstants | None = None,
    counting: Counting = "auto",
    names: list[str] | None = None,
) -> list[EnergyReport]:
    """Energy reports for a batch of preprocessed images ``[B, 3, H, W]`` (model in spike mode)."""
    param = next(model.parameters())
    with measure(model, counting) as recorder:
        model(images.to(device=param.device, dtype=param.dtype))
    return recorder.reports(constants, names)
