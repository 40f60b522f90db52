"""ANN-to-SNN conversion (A2S) of YOLO-style detectors whose activation is SiLU.

A trained ANN's ``conv -> BN -> SiLU`` layers become ``conv (BN folded) ->``
:class:`~spikedet.snn.neurons.A2SNeuron`. The neuron keeps the ANN's activation shape and quantizes it on a
``1/N`` grid::

    q = clip(round(SiLU(U) * N / s + zero), 0, L)        value = s * (q - zero) / N

``U`` is the membrane potential the conv accumulates, ``s`` an optional per-channel scale, ``zero`` the code
standing for 0 (SiLU goes down to -0.278, so the code range must reach below zero).

What it computes, honestly: this is a *graded* neuron with a lookup-shaped transfer (SiLU), not a plain
LIF: a chip needs, per neuron, the nonlinearity (a small table or a piecewise-linear unit evaluated on the
accumulated potential), synchronous bit-plane timesteps (``T x B``, as for IBRA-LIF) and, for the signed
encodings, spikes that carry a sign (accumulators that add or subtract a weight: still accumulate-only).

How codes travel (``SpikeCode.encoding``) decides the spike count, hence the energy:

- ``binary``: bit planes of ``q`` including the zero offset (a value of 0 costs ``popcount(zero)`` spikes);
- ``signed``: bit planes of ``|q - zero|`` on a positive or a negative train: 0 costs nothing;
- ``naf``: ``q - zero`` in non-adjacent form (digits -1/0/+1): the fewest nonzero digits of any
  signed-binary form; 0 costs nothing and runs of ones cost two spikes.

Calibration sets each layer's range ``D`` from a high percentile of its SiLU outputs on sample images.
Neurons whose spike trains are summed by a residual add share ``N`` (and scale), so the sum stays an
integer the next conv can accumulate.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from spikedet.convert.bitplane import trace_inputs
from spikedet.errors import SpikedetError
from spikedet.progress import progress
from spikedet.nn.mode import set_spike_mode
from spikedet.snn.code import SpikeCode
from spikedet.snn.neurons import A2SNeuron

SILU_MIN = -0.2784645427610738  # min over x of x * sigmoid(x), at x = -1.2785


# -- calibration ---------------------------------------------------------------------------------

def activation_sites(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, block)`` of every block with a replaceable SiLU ``act`` (YOLOv5's V5Conv)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(getattr(m, "act", None), nn.SiLU)]


@torch.no_grad()
def calibrate(model: nn.Module, images: Tensor, percentile: float = 99.99, batch: int = 4, max_samples: int = 4_000_000) -> dict[str, dict]:
    """Per activation site: the ``percentile`` of its SiLU outputs on ``images`` and a sample of them.

    Run on a model with BN folded (``reparameterize``) so the potentials are what the neurons will see.
    From every batch, each channel keeps a random subset (fixed seed) of
    ``max_samples // len(images) // channels`` values (at least one); the percentile is taken over what is
    kept (a few hundred thousand values per layer for 32 images). The shipped weights were calibrated with
    exactly this procedure, so changing it changes them.
    """
    sites = activation_sites(model)
    if not sites:
        raise SpikedetError("the model has no SiLU activations to convert")
    samples: dict[str, list[Tensor]] = {n: [] for n, _ in sites}
    gen = torch.Generator().manual_seed(0)

    def hook(name):
        def fn(mod, args, out):
            y = out.detach().float()
            flat = y.transpose(0, 1).reshape(y.shape[1], -1)  # [C, n]
            keep = max(1, min(flat.shape[1], max_samples // max(len(images), 1) // flat.shape[0]))
            idx = torch.randperm(flat.shape[1], generator=gen)[:keep]
            samples[name].append(flat[:, idx])
        return fn

    handles = [m.act.register_forward_hook(hook(n)) for n, m in sites]
    try:
        for i in progress(range(0, len(images), batch), "calibration", unit="batch"):
            model(images[i : i + batch])
    finally:
        for h in handles:
            h.remove()
    stats = {}
    q = percentile / 100
    for name, parts in samples.items():
        data = torch.cat(parts, 1)  # [C, n]
        flat = data.flatten()
        pick = torch.randperm(flat.numel(), generator=gen)[:500_000]
        stats[name] = {
            "max": float(data.max()),
            "p": float(torch.quantile(flat[:16_000_000], q)),
            "mean": float(data.mean()),
            "sample": flat[pick].clone(),  # for the most frequent code at the chosen N
        }
    return stats


# -- conversion ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class A2SConfig:
    """How the neurons are built.

    Attributes:
        encoding: spike encoding (``binary``, ``signed``, ``naf``).
        n: codes per unit (``N``) when ``bits`` is None (the same grid in every layer).
        bits: when set, each neuron's ``N`` is chosen so its codes span about ``2**bits`` levels.
        zero: ``"min"`` (just enough codes below zero for SiLU's minimum), ``"pow2"`` (the smallest power of
            two that is enough: one set bit for binary codes), or an explicit shift ``beta`` as a float
            (zero code ``round(beta * N)``).
        percentile: calibration percentile for ``D``.
        rest: ``"zero"`` (a value of 0 sends no spikes) or ``"mode"`` (the layer's most frequent code on the
            calibration images sends no spikes; signed encodings only).
    """

    encoding: str = "naf"
    n: float = 20.0
    bits: int | None = None
    zero: str | float = "min"
    percentile: float = 99.99
    rest: str = "mode"

    def __post_init__(self):
        if self.encoding not in ("binary", "signed", "naf"):
            raise SpikedetError(f"encoding must be 'binary', 'signed' or 'naf', got {self.encoding!r}")
        if self.rest not in ("zero", "mode"):
            raise SpikedetError(f"rest must be 'zero' or 'mode', got {self.rest!r}")
        if self.rest == "mode" and self.encoding == "binary":
            raise SpikedetError("rest=mode needs a signed encoding (naf or signed); use rest=zero with encoding=binary")
        if not (isinstance(self.zero, (int, float)) and not isinstance(self.zero, bool)) and self.zero not in ("min", "pow2"):
            raise SpikedetError(f"zero must be 'min', 'pow2' or a number, got {self.zero!r}")

    def as_dict(self) -> dict:
        return asdict(self)


def _zero_code(cfg: A2SConfig, n: float) -> int:
    need = math.ceil(-SILU_MIN * n)
    if isinstance(cfg.zero, (int, float)) and not isinstance(cfg.zero, bool):
        return max(int(round(cfg.zero * n)), 0)
    if cfg.zero == "pow2":
        return 1 << max(need - 1, 0).bit_length() if need > 1 else need
    return need  # "min"


def _code_for(cfg: A2SConfig, d: float, n: float, sample: Tensor | None = None) -> SpikeCode:
    zero = _zero_code(cfg, n)
    levels = zero + max(int(math.ceil(d * n)), 1)
    rest = None
    if cfg.rest == "mode":  # the most frequent code on the calibration images sends nothing
        codes = torch.round(sample * n + zero).clamp(0, levels).long()
        rest = int(torch.bincount(codes, minlength=levels + 1).argmax())
    return SpikeCode(levels, float(n), zero, cfg.encoding, rest)


def _n_for(cfg: A2SConfig, d: float) -> float:
    if cfg.bits is None:
        return float(cfg.n)
    # codes 0..2**bits - 1 cover [SILU_MIN, d]
    return float((2**cfg.bits - 1) / (d - SILU_MIN))


def summed_groups(model: nn.Module, sample: Tensor) -> list[set[str]]:
    """Groups of neuron names whose spike trains are summed into the same conv input (residual adds)."""
    probe = copy.deepcopy(model).eval()
    set_spike_mode(probe, "integer")
    parent: dict[str, str] = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for terms in trace_inputs(probe, sample).values():
        by_offset: dict[int, list[str]] = {}
        for train, off in terms:
            by_offset.setdefault(off, []).append(train.source)
        for names in by_offset.values():
            for other in names[1:]:
                parent[find(other)] = find(names[0])
    groups: dict[str, set[str]] = {}
    for name in list(parent):
        groups.setdefault(find(name), set()).add(name)
    return [g for g in groups.values() if len(g) > 1]


@torch.no_grad()
def convert_ann(model: nn.Module, calibration: dict[str, dict], cfg: A2SConfig, sample: Tensor) -> nn.Module:
    """A spiking copy of ``model``: every SiLU ``act`` replaced by an :class:`A2SNeuron` built from ``cfg``.

    ``calibration`` comes from :func:`calibrate` on the same (re-parameterized) model; ``sample`` is one image
    batch used to find the residual sums whose neurons must share ``N``.
    """
    snn = copy.deepcopy(model).eval()
    if hasattr(snn, "reparameterize"):
        snn.reparameterize()
    sites = dict(activation_sites(snn))
    if set(sites) != set(calibration):
        raise SpikedetError("calibration does not match the model's activation sites")
    neuron_name = {site: f"{site}.act" for site in sites}
    ranges = {site: calibration[site]["p"] for site in sites}
    # One neuron per site with its own N; then neurons whose trains are summed share the group's N.
    def neuron(site: str, n: float) -> A2SNeuron:
        return A2SNeuron(_code_for(cfg, ranges[site], n, calibration[site].get("sample")), "silu")

    for site, block in sites.items():
        block.act = neuron(site, _n_for(cfg, ranges[site]))
    for group in summed_groups(snn, sample):
        members = [s for s, name in neuron_name.items() if name in group]
        n = min(_n_for(cfg, ranges[s]) for s in members)
        for s in members:
            sites[s].act = neuron(s, n)
    return snn
