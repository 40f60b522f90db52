"""The detection model: a Ultralytics ``DetectionModel`` whose layers come from spikedet's builder.

:class:`SpikeDetectionModel` is the one ``nn.Module`` every spikedet network is (SpikeYOLO scales, the
YOLOv5n ANN, the A2S SNN): training, the converter, energy accounting, the loader and the service all take it.
Subclassing only: Ultralytics' loss, decoding and checkpoints work on it unchanged.

    >>> model = SpikeDetectionModel("spikeyolo-t.yaml", verbose=False)
    >>> model.stride.tolist(), model.converted
    ([8.0, 16.0, 32.0], False)
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from spikedet.offline import import_ultralytics

import_ultralytics()

from ultralytics.nn.modules.head import Detect  # noqa: E402
from ultralytics.nn.tasks import DetectionModel  # noqa: E402
from ultralytics.utils import LOGGER, RANK  # noqa: E402
from ultralytics.utils.torch_utils import initialize_weights  # noqa: E402

from spikedet.errors import SpikedetError  # noqa: E402
from spikedet.model.builder import build_layers, load_model_cfg  # noqa: E402
from spikedet.nn.mode import is_converted, is_integer, spike_path  # noqa: E402
from spikedet.snn.neurons import SpikingNeuron  # noqa: E402


class SpikeDetectionModel(DetectionModel):
    """A detection model whose layers come from spikedet's builder (see :mod:`spikedet.model.builder`).

    Args:
        cfg: a model name (``spikeyolo-s.yaml``), a YAML path, or a config dict.
        ch: image channels.
        nc: number of classes (overrides the YAML's ``nc``).
    """

    def __init__(self, cfg: str | Path | dict = "spikeyolo-n.yaml", ch: int = 3, nc: int | None = None, verbose: bool = True):
        nn.Module.__init__(self)  # DetectionModel.__init__ would call Ultralytics' parse_model
        self.yaml = load_model_cfg(cfg)
        self.yaml["channels"] = ch
        if nc and nc != self.yaml["nc"]:
            LOGGER.info(f"Overriding model.yaml nc={self.yaml['nc']} with nc={nc}")
            self.yaml["nc"] = nc
        self.model, self.save = build_layers(self.yaml, ch=ch, verbose=verbose and RANK in {-1, 0})
        self.names = {i: f"{i}" for i in range(self.yaml["nc"])}
        self.inplace = self.yaml.get("inplace", True)

        head = self.model[-1]
        if not isinstance(head, Detect):
            raise ValueError(f"the last layer of a detection model must be a Detect head, got {type(head).__name__}")
        s = 256  # twice the largest stride
        head.inplace = self.inplace
        self.model.eval()
        head.training = True  # the head returns its raw dict, whose feature maps give the strides
        with torch.no_grad():
            feats = self.forward(torch.zeros(1, ch, s, s))["feats"]
        head.stride = torch.tensor([s / x.shape[-2] for x in feats])
        self.stride = head.stride
        self.model.train()
        head.bias_init()
        initialize_weights(self)
        self._set_batchnorm(self.yaml.get("batchnorm"))
        if verbose and RANK in {-1, 0}:
            self.info()
            LOGGER.info("")

    def _set_batchnorm(self, settings: dict | None) -> None:
        """The YAML's ``batchnorm: {eps, momentum}`` (an imported model keeps its own), else Ultralytics' defaults."""
        if not settings:
            return
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eps = float(settings.get("eps", m.eps))
                m.momentum = settings.get("momentum", m.momentum)

    # -- re-parameterization ---------------------------------------------------------------------
    @torch.no_grad()
    def reparameterize(self) -> "SpikeDetectionModel":
        """Merge RepConv and SepConv tails into single 3x3 convs and fold every BN into its conv (in place).

        Each spiking unit becomes ``neuron -> conv (with bias)``: the network that runs on spikes, that the
        converter turns into bit planes and that the operation counts use. Call it on an eval-mode model.
        """
        for unit in self.modules():
            if _mergeable(unit):
                unit.reparameterize()
        return self

    def fuse(self, verbose: bool = True, imgsz: int = 640) -> "SpikeDetectionModel":
        """Ultralytics' inference hook: here it re-parameterizes (the spiking equivalent of Conv+BN fusion).

        Unlike Conv+BN fusion this changes the parameter count: a RepConv/SepConv chain (1x1 -> depthwise 3x3 ->
        1x1, or parallel branches) becomes one dense 3x3 conv computing the same function, which holds more
        weights (spikeyolo-t: 2.01M trained, 4.34M merged). The summary says so next to Ultralytics' line."""
        if not self.is_fused():
            trained = sum(p.numel() for p in self.parameters())
            self.reparameterize()
            if verbose:
                self.info(verbose=verbose, imgsz=imgsz)
                LOGGER.info(fused_note(trained, sum(p.numel() for p in self.parameters())))
        return self

    def is_fused(self) -> bool:
        return all(unit.reparameterized for unit in self.modules() if _mergeable(unit))

    def load(self, weights, verbose: bool = True) -> None:
        """Transfer matching tensors from a checkpoint dict or model (Ultralytics' hook for pretrained weights).

        Ultralytics' own version reads the internals of its Detect head; this one matches by name and shape.
        """
        source = (weights.get("ema") or weights["model"]) if isinstance(weights, dict) else weights
        theirs = source.float().state_dict()
        ours = self.state_dict()
        matched = {k: v for k, v in theirs.items() if k in ours and v.shape == ours[k].shape}
        self.load_state_dict(matched, strict=False)
        names = getattr(source, "names", None)
        if len(matched) == len(ours) and names and self.names == {i: str(i) for i in range(len(self.names))}:
            self.names = dict(names)
        if verbose:
            LOGGER.info(f"Transferred {len(matched)}/{len(ours)} items from pretrained weights")

    def with_neuron(self, neuron: dict) -> "SpikeDetectionModel":
        """The same network and weights with every neuron replaced by ``neuron`` (a YAML ``neuron:`` spec, e.g.
        ``{"type": "IBRALIF", "D": 5.11, "N": 100}``); T and alpha stay the model's unless the spec sets them.

        This is how an I-LIF model (SpikeYOLO's) starts IBRA-LIF training: the weights carry over, the function
        changes wherever a membrane falls between the old and the new codes (see README, "Coming from SpikeYOLO").
        """
        if self.is_fused() or self.converted:
            raise SpikedetError("switch neurons on trained weights, before re-parameterizing or converting")
        old = dict(self.yaml.get("neuron") or {})
        spec = {"T": old.get("T", 1), "alpha": old.get("alpha", 0.25), **neuron}
        model = SpikeDetectionModel({**self.yaml, "neuron": spec}, verbose=False)
        model.load_state_dict(self.state_dict())
        model.names = dict(self.names)
        return model.train(self.training)

    def neurons(self) -> list[tuple[str, SpikingNeuron]]:
        """All spiking neurons with their module names, in forward order of definition."""
        return [(name, m) for name, m in self.named_modules() if isinstance(m, SpikingNeuron)]

    @property
    def converted(self) -> bool:
        """Whether the converter folded the weights (the convs consume integer codes)."""
        return is_converted(self)

    @property
    def spike_path(self) -> str | None:
        """The path the model runs in spike mode (``integer`` or ``bitplane``), None in float mode."""
        return spike_path(self)

    def init_criterion(self):
        from ultralytics.utils.loss import v8DetectionLoss

        head = self.model[-1]
        if not getattr(head, "trainable", True):
            raise SpikedetError(f"{type(head).__name__} heads have no training loss in spikedet (inference only)")
        return v8DetectionLoss(self)


def fused_note(trained: int, merged: int) -> str:
    """Why the fused summary's parameter count differs from the trained model's."""
    return (f"(fused = re-parameterized: each RepConv/SepConv chain is merged into one dense 3x3 conv computing the "
            f"same function, so {merged:,} parameters run where {trained:,} were trained)")


def _mergeable(module: nn.Module) -> bool:
    """Blocks that merge their convs and BNs: spiking units and any block with the same protocol."""
    return callable(getattr(module, "reparameterize", None)) and hasattr(module, "reparameterized") and not isinstance(module, DetectionModel)


def describe_model(module: nn.Module, weights: str | Path | None = None) -> dict:
    """Architecture, scale, neurons, parameters and class names of a spikedet model."""
    neurons = [m for m in module.modules() if isinstance(m, SpikingNeuron)]
    yaml = getattr(module, "yaml", {}) or {}
    levels = sorted({n.L for n in neurons})
    ns = sorted({n.N for n in neurons})
    return {
        "weights": None if weights is None else Path(weights).name,
        "architecture": Path(str(yaml.get("yaml_file", "model"))).stem.split("-")[0] or "model",
        "scale": yaml.get("scale"),
        "state": "integer" if is_integer(module) else "converted" if is_converted(module) else "trained",
        "neuron": {
            "types": sorted({type(n).__name__ for n in neurons}),
            "layers": len(neurons),
            "T": max((n.T for n in neurons), default=1),
            "L": levels[0] if len(levels) == 1 else [levels[0], levels[-1]] if levels else None,
            "N": ns[0] if len(ns) == 1 else [ns[0], ns[-1]] if ns else None,
            "D": neurons[0].D if len(levels) == 1 and len(ns) == 1 and neurons else None,
            "B": max((n.code.planes for n in neurons), default=None),  # spike planes per timestep
            "zero_offset": any(n.code.zero for n in neurons),
        },
        "parameters": int(sum(p.numel() for p in module.parameters())),
        "classes": len(module.names),
        "names": {int(k): v for k, v in dict(getattr(module, "names", {}) or {}).items()},
        "stride": [int(s) for s in module.stride.tolist()],
    }
