"""Per-image, per-layer energy estimates from the spikes a model actually fires.

Method (the convention of SpikeYOLO, Luo et al. ECCV 2024, and of the IBRA-LIF paper):

- every conv's operation count is ``MACs = C_in * C_out * k^2 * H_out * W_out / groups`` on the
  re-parameterized network (the one that runs on spikes); detect-head convs count, DFL does not;
- a conv whose input is real-valued (the first conv, on the image) costs ``E_MAC * MACs``;
- a conv whose input is spikes costs ``E_AC * ACs`` with ``ACs = MACs * fr``, where the firing rate ``fr``
  is the mean number of spikes per input element: the mean popcount of the codes for binary (bit-plane,
  IBRA-LIF) counting, the mean code for unary (thermometer, I-LIF) counting, the mean number of nonzero
  digits for signed and NAF codes; summed over the trains of a residual sum; with ``T > 1`` the SNN's MACs
  and input elements count every timestep, the ANN's MACs once;
- ``ann_mJ``: the trained network run as an ANN in its cheapest form (a merged conv is charged at the MACs of
  the chain it replaced when that is cheaper), every op a MAC; ``ann_merged_mJ``: SpikeYOLO's convention, the
  merged network with every op a MAC; ``efficiency = ann_mJ / snn_mJ``.

Constants default to 45 nm figures (Horowitz, ISSCC 2014): ``E_MAC = 4.6 pJ``, ``E_AC = 0.9 pJ``. This is a
compute-only estimate: memory access, data movement and neuron updates are not counted.

Use :func:`measure` around any forward pass of a model in spike mode (Ultralytics' predictor included):
it installs forward hooks on the model's convs for the duration of the block, and
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
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

import torch
from torch import Tensor, nn

from spikedet.measure.spikeyolo_energy import LayerCounts, spikeyolo_energy
from spikedet.nn.conv import SpikeConv

Counting = Literal["auto", "binary", "unary"]

CAVEAT = (
    "Compute energy only (45 nm constants, Horowitz 2014): memory access, data movement and neuron updates "
    "are not counted; ACs = MACs x mean spikes per input element."
)


@dataclass(frozen=True)
class EnergyConstants:
    e_mac_pj: float = 4.6
    e_ac_pj: float = 0.9
    process: str = "45 nm"
    source: str = "Horowitz, ISSCC 2014"

    def __post_init__(self):
        for name in ("e_mac_pj", "e_ac_pj"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value >= 0 and value == value):
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class _ConvPass:
    """What one conv saw in one forward pass (totals per image of the batch)."""

    name: str
    kind: str
    macs: list[float]
    ann_macs: list[float]
    merged_macs: list[float]
    spikes: list[float]
    elements: list[float]
    encoding: str
    sources: list[str]
    code_sums: list[float] = field(default_factory=list)  # sum of the integer codes fed (SpikeYOLO's convention)


class EnergyRecorder:
    """Collects per-conv counts during forward passes (installed by :func:`measure`)."""

    def __init__(self, counting: Counting = "auto"):
        if counting not in ("auto", "binary", "unary"):
            raise ValueError(f"counting must be 'auto', 'binary' or 'unary', got {counting!r}")
        self.counting = counting
        self.passes: list[list[_ConvPass]] = []
        self.batch = 1
        self._cursor = 0  # the next image of the last pass that next_report() reports
        self._hist_cache: dict = {}

    def start_pass(self, batch: int) -> None:
        self.batch = max(int(batch), 1)
        self.passes.append([])
        self._cursor = 0
        self._hist_cache = {}

    def histogram(self, codes: Tensor, levels: int) -> Tensor:
        """Per-image code histogram of a spike tensor, reused when the same train feeds several convs.

        The cache holds the last few tensors themselves (so an id is never reused by a new tensor while
        cached) and stays small: a train consumed again much later is simply counted again.
        """
        key = (id(codes), levels)
        entry = self._hist_cache.get(key)
        if entry is not None and entry[0] is codes:
            return entry[1]
        hist = code_histograms(codes, self.batch, levels)
        self._hist_cache[key] = (codes, hist)
        while len(self._hist_cache) > 8:
            self._hist_cache.pop(next(iter(self._hist_cache)))
        return hist

    def next_report(self, constants: EnergyConstants | None = None, image: str | None = None) -> "EnergyReport":
        """The report of the next image of the last pass (for consumers that get results one image at a time)."""
        records = self.passes[-1] if self.passes else []
        if not records:
            raise RuntimeError("no forward pass was recorded")
        index = self._cursor
        if index >= len(records[0].macs):
            raise RuntimeError("more results than images in the last forward pass")
        self._cursor = index + 1
        return _report(records, index, constants or EnergyConstants(), self.counting, image)

    @property
    def current(self) -> list[_ConvPass]:
        if not self.passes:
            self.passes.append([])
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

    def record_real_conv(self, name: str, conv: SpikeConv, x: Tensor, y: Tensor) -> None:
        b = self.batch
        macs, cheapest, merged = _macs(conv, y, b)
        elements = x[0].numel() * _per_image(x.shape[0], b)
        self.current.append(_ConvPass(name, "real", [macs] * b, [cheapest] * b, [merged] * b, [0.0] * b,
                                      [float(elements)] * b, "real", [], [0.0] * b))

    def record_spike_conv(self, name: str, conv: SpikeConv, x, y: Tensor) -> None:
        b = self.batch
        macs, cheapest, merged = _macs(conv, y, b)
        terms = x.terms()
        spikes = torch.zeros(b, dtype=torch.float64)
        code_sums = torch.zeros(b, dtype=torch.float64)
        encodings = set()
        for train, _ in terms:
            # counting as another encoding reads the raw codes q (zero offset included, no rest code)
            code = train.code if self.counting == "auto" else replace(train.code, encoding=self.counting, rest=None)
            encodings.add(code.encoding)
            hist = self.histogram(train.codes, code.levels)
            spikes += (hist.double() * _spike_table(code)).sum(1)
            code_sums += (hist.double() * torch.arange(hist.shape[1], dtype=torch.float64)).sum(1)
        first = terms[0][0].codes
        rows = first.shape[0] if first.dim() == 4 else 1
        elements = conv.in_channels * first.shape[-2] * first.shape[-1] * _per_image(rows, b)
        self.current.append(_ConvPass(name, x.describe(), [macs] * b, [cheapest] * b, [merged] * b, spikes.tolist(),
                                      [float(elements)] * b, "/".join(sorted(encodings)), [t.source for t, _ in terms],
                                      code_sums.tolist()))

    def reports(self, constants: EnergyConstants | None = None, images: list[str] | None = None) -> list["EnergyReport"]:
        """One report per image of the last forward pass."""
        constants = constants or EnergyConstants()
        records = self.passes[-1] if self.passes else []
        n = len(records[0].macs) if records else 0
        names = images or [None] * n
        return [_report(records, i, constants, self.counting, names[i] if i < len(names) else None) for i in range(n)]


@contextlib.contextmanager
def measure(model: nn.Module, counting: Counting = "auto"):
    """Record energy counts of every forward pass of ``model`` inside the block.

    Installs a pre-hook on ``model`` (each top-level forward starts a new pass) and a forward hook on each of
    its :class:`~spikedet.nn.conv.SpikeConv` layers, removed when the block ends. The model must be in spike
    mode (:func:`spikedet.nn.mode.set_spike_mode`) for spikes to be seen. Yields the :class:`EnergyRecorder`.
    """
    recorder = EnergyRecorder(counting)

    def start(module, args):
        x = args[0] if args else None
        recorder.start_pass(x.shape[0] if isinstance(x, Tensor) else 1)

    handles = [model.register_forward_pre_hook(start)]
    handles += [m.register_forward_hook(recorder.conv_hook(name)) for name, m in model.named_modules()
                if isinstance(m, SpikeConv)]
    try:
        yield recorder
    finally:
        for handle in handles:
            handle.remove()


def _per_image(total_rows: int, batch: int) -> int:
    return max(total_rows // batch, 1)


def _macs(conv: SpikeConv, y: Tensor, batch: int) -> tuple[float, float, float]:
    """``(SNN MACs, cheapest ANN MACs, merged ANN MACs)`` of one image.

    The SNN runs every conv once per timestep (``rows = T x batch``); the ANN it is compared with runs once.
    """
    rows = y.shape[0] if y.dim() == 4 else 1
    reps = rows / batch
    once = conv.macs(tuple(y.shape[-2:]))
    cheapest = once
    if conv.trained_macs_per_pixel is not None:
        cheapest = min(once, conv.trained_macs_per_pixel * y.shape[-2] * y.shape[-1])
    return once * reps, cheapest, once


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


def _spike_table(code) -> Tensor:
    """Spikes sent for each code 0..L under the code's encoding (cached)."""
    if code not in _TABLES:
        _TABLES[code] = code.spike_table()
    return _TABLES[code]


# -- reports -------------------------------------------------------------------------------------

@dataclass
class LayerEnergy:
    name: str
    input: str
    macs: float
    spikes: float
    input_elements: float
    firing_rate: float
    acs: float
    energy_mJ: float
    ann_macs: float
    encoding: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class EnergyReport:
    """The energy estimate of one image. :meth:`to_dict` is what the service and ``--json`` return."""

    image: str | None
    snn_mJ: float
    ann_mJ: float
    ann_merged_mJ: float
    efficiency: float
    macs: float
    acs: float
    spikes: float
    counting: str
    constants: EnergyConstants
    layers: list[LayerEnergy]
    caveat: str = CAVEAT
    #: other energy models' figures for the same counts (by name; ``convention`` is this report's own)
    models: dict = field(default_factory=dict)

    def to_dict(self, layers: bool = True) -> dict:
        out = {
            "image": self.image,
            "snn_mJ": self.snn_mJ,
            "ann_mJ": self.ann_mJ,
            "ann_merged_mJ": self.ann_merged_mJ,
            "efficiency": self.efficiency if math.isfinite(self.efficiency) else None,  # JSON has no infinity
            "macs": self.macs,
            "acs": self.acs,
            "spikes": self.spikes,
            "counting": self.counting,
            "constants": self.constants.as_dict(),
            "caveat": self.caveat,
            "energy_models": {
                "convention": {"snn_mJ": self.snn_mJ, "ann_mJ": self.ann_mJ, "ann_merged_mJ": self.ann_merged_mJ,
                               "efficiency": self.efficiency if math.isfinite(self.efficiency) else None},
                **self.models,
            },
        }
        if layers:
            out["layers"] = [layer.as_dict() for layer in self.layers]
        return out

    def summary(self) -> str:
        return (
            f"SNN {self.snn_mJ:.4f} mJ vs ANN {self.ann_mJ:.4f} mJ (merged ANN {self.ann_merged_mJ:.4f} mJ): "
            f"{self.efficiency:.2f}x; {self.macs / 1e9:.2f} GMACs, {self.acs / 1e9:.2f} GACs"
        )

    def table(self) -> str:
        wn = max([40] + [len(l.name) for l in self.layers])
        wi = max([18] + [len(l.input) for l in self.layers])
        lines = [f"{'layer':<{wn}} {'input':<{wi}} {'MACs':>14} {'fr':>7} {'ACs':>14} {'mJ':>10}"]
        for l in self.layers:
            lines.append(
                f"{l.name:<{wn}} {l.input:<{wi}} {l.macs:>14,.0f} {l.firing_rate:>7.3f} {l.acs:>14,.0f} {l.energy_mJ:>10.5f}"
            )
        return "\n".join(lines)


def _report(records: list[_ConvPass], i: int, constants: EnergyConstants, counting: str, image: str | None) -> EnergyReport:
    layers = []
    e_mac, e_ac = constants.e_mac_pj * 1e-9, constants.e_ac_pj * 1e-9  # pJ -> mJ
    for r in records:
        macs, elements, spikes = r.macs[i], r.elements[i], r.spikes[i]
        if r.kind == "real":
            fr, acs, energy = 0.0, 0.0, e_mac * macs
        else:
            fr = spikes / elements if elements else 0.0
            acs = macs * fr
            energy = e_ac * acs
        layers.append(LayerEnergy(r.name, r.kind, macs, spikes, elements, fr, acs, energy, r.ann_macs[i], r.encoding))
    snn = sum(l.energy_mJ for l in layers)
    ann = e_mac * sum(l.ann_macs for l in layers)
    merged = e_mac * sum(r.merged_macs[i] for r in records)
    return EnergyReport(
        image=image,
        snn_mJ=snn,
        ann_mJ=ann,
        ann_merged_mJ=merged,
        efficiency=ann / snn if snn > 0 else float("inf"),
        macs=sum(l.macs for l in layers),
        acs=sum(l.acs for l in layers),
        spikes=sum(l.spikes for l in layers),
        counting=counting,
        constants=constants,
        layers=layers,
        models={"spikeyolo": spikeyolo_energy(
            [LayerCounts(r.kind, r.macs[i], r.merged_macs[i], r.code_sums[i] if r.code_sums else 0.0, r.elements[i])
             for r in records], constants.e_mac_pj, constants.e_ac_pj)},
    )


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
