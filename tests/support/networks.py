"""Small spiking networks with hand-checkable structure, shared by the converter and energy tests."""

import torch
from torch import nn

from spikedet.nn import ops
from spikedet.nn.conv import SpikeConv
from spikedet.nn.layers import SpikingConv, TimeRepeat
from spikedet.snn.code import SpikeCode
from spikedet.snn.neurons import A2SNeuron


class TwoLayer(nn.Module):
    """image -> conv (real input) -> neuron -> conv: the smallest spiking network."""

    def __init__(self, neuron, c=2, k=1):
        super().__init__()
        self.model = nn.Sequential(
            TimeRepeat(1),
            SpikingConv(None, SpikeConv(3, c, k, padding=k // 2, bias=True)),
            SpikingConv(neuron, SpikeConv(c, 1, k, padding=k // 2, bias=True)),
        )

    def forward(self, x):
        return self.model(x)[0]


class Graph(nn.Module):
    """Spike trains summed (residual) and concatenated with different codes, feeding padded 3x3 convs."""

    def __init__(self, code_a: SpikeCode, code_b: SpikeCode, code_c: SpikeCode):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.stem = SpikeConv(3, 4, 3, padding=1, bias=True)
        self.a = A2SNeuron(code_a)
        self.mid = SpikeConv(4, 4, 3, padding=1, bias=True)
        self.b = A2SNeuron(code_b)
        self.side = SpikeConv(4, 3, 1, bias=True)
        self.c = A2SNeuron(code_c)
        self.head = SpikeConv(7, 2, 3, padding=1, bias=True)
        for m in (self.stem, self.mid, self.side, self.head):
            m.weight.data = torch.randn(m.weight.shape, generator=g) * 0.5
            m.bias.data = torch.randn(m.bias.shape, generator=g) * 0.2

    def forward(self, x):
        a = self.a(self.stem(x))
        summed = ops.add(a, self.b(self.mid(a)))  # a sum of two trains
        joined = ops.cat([summed, self.c(self.side(a))], 1)  # a concat of trains with different codes
        return self.head(joined)


def with_real_batchnorm(net: nn.Module, bias: tuple[float, float] = (-0.3, 0.3)) -> nn.Module:
    """``net`` with every BN's statistics and affine drawn at random (torch's global generator), so each layer
    has its own range, as trained networks do (fresh BNs are the identity)."""
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(*bias)
    return net
