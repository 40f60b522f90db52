"""SpikeYOLO's own energy convention (their ``power_cal.xlsx``), as a named energy model next to spikedet's.

Their spreadsheet (github.com/BICLab/SpikeYOLO, ``power_cal.xlsx``) lists every conv of the **merged** network
(RepConv and the SepConv tail each one 3x3 conv) with ``FLOPs = C_in * C_out * k^2 * H_in * W_in / (s^2 * groups)``
(a MAC count) and charges

- a conv on spikes: ``FLOPs * fr * 0.9 pJ``, with ``fr`` the mean integer activation of the neuron layer feeding
  it (what their ``test.py`` prints per layer; here measured on the image itself);
- the first conv (on the image): ``FLOPs * 0.9 pJ * 4.6``: the sheet puts ``E_MAC = 4.6`` in the firing-rate
  column of that row, so the first layer costs ``4.14 pJ`` per MAC, not 4.6;
- the ANN: every FLOP at 4.6 pJ on the same merged network.

Spikedet's own convention differs in the ANN it compares with (the cheapest, unmerged form), in charging the first
layer at ``E_MAC`` and, for binary codes, in counting spikes as set bits rather than integer values. Both are
compute-only estimates (45 nm constants; memory and data movement not counted).

    >>> layers = [LayerCounts("real", 1000, 1000, 0, 10), LayerCounts("spikes", 2000, 2000, 30, 10)]
    >>> r = spikeyolo_energy(layers, e_mac_pj=4.6, e_ac_pj=0.9)
    >>> round(r["snn_mJ"] * 1e9, 1), round(r["ann_mJ"] * 1e9, 1)     # pJ: 1000*0.9*4.6 + 2000*3*0.9; 3000*4.6
    (9540.0, 13800.0)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

__all__ = ["SOURCE", "LayerCounts", "spikeyolo_energy"]

SOURCE = "SpikeYOLO power_cal.xlsx (github.com/BICLab/SpikeYOLO)"


class LayerCounts(NamedTuple):
    """One conv of one image: its input kind (``"real"`` or spikes), SNN and merged-ANN MACs, the sum of the
    integer codes it was fed and its number of input elements."""

    kind: str
    macs: float
    merged_macs: float
    code_sum: float
    elements: float


def spikeyolo_energy(layers: Iterable[LayerCounts], e_mac_pj: float = 4.6, e_ac_pj: float = 0.9) -> dict:
    """The SNN and ANN energy (mJ) of one image under SpikeYOLO's spreadsheet convention (see the module doc)."""
    e_mac, e_ac = e_mac_pj * 1e-9, e_ac_pj * 1e-9  # pJ -> mJ
    snn = ann = 0.0
    for layer in layers:
        if layer.kind == "real":
            snn += layer.macs * e_ac * e_mac_pj  # their first row: E_MAC sits where a firing rate would
        elif layer.elements:
            snn += layer.macs * (layer.code_sum / layer.elements) * e_ac
        ann += layer.merged_macs * e_mac
    return {
        "snn_mJ": snn,
        "ann_mJ": ann,
        "efficiency": ann / snn if snn > 0 else None,
        "first_layer_pj_per_mac": e_ac_pj * e_mac_pj,
        "rule": "merged network; spikes: MACs x mean integer activation x E_AC; first layer: MACs x E_AC x 4.6; "
                "ANN: merged MACs x E_MAC",
        "source": SOURCE,
    }
