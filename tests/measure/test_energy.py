"""Energy estimates with hand-checkable numbers."""

import pytest
import torch

from spikedet.convert import bitplane
from spikedet.measure import energy
from spikedet.nn.mode import set_spike_mode
from spikedet.snn.neurons import IBRALIF, ILIF
from tests.support.networks import TwoLayer

E_MAC, E_AC = 4.6e-9, 0.9e-9  # mJ per op

def hand_network(neuron, bias=(0.05, 5.2)):
    net = TwoLayer(neuron).eval()
    with torch.no_grad():
        net.model[1].body.weight.zero_()
        net.model[1].body.bias.copy_(torch.tensor(bias))
        net.model[2].body.weight.fill_(1.0)
    return bitplane.convert(net, torch.zeros(1, 3, 4, 4))


def test_known_spikes_give_known_energy():
    net = hand_network(IBRALIF(D=5.11, N=100))  # codes 5 (2 set bits) and 511 (9 set bits)
    report = energy.estimate_energy(net, torch.zeros(1, 3, 4, 4))[0]
    first, second = report.layers
    # conv1 on the image: 3 * 2 * 16 MACs, real input
    assert first.input == "real" and first.macs == 96 and first.energy_mJ == pytest.approx(96 * E_MAC)
    # conv2 on spikes: 2 * 1 * 16 MACs; 16 elements with 2 spikes + 16 with 9: fr = 5.5
    assert second.input == "spikes" and second.macs == 32 and second.spikes == 16 * (2 + 9)
    assert second.firing_rate == pytest.approx(5.5) and second.acs == pytest.approx(32 * 5.5)
    assert report.snn_mJ == pytest.approx(96 * E_MAC + 32 * 5.5 * E_AC)
    assert report.ann_mJ == pytest.approx((96 + 32) * E_MAC) == pytest.approx(report.ann_merged_mJ)
    assert report.efficiency == pytest.approx(report.ann_mJ / report.snn_mJ)
    assert set(report.to_dict()) >= {"snn_mJ", "ann_mJ", "ann_merged_mJ", "efficiency", "constants", "caveat", "layers"}


def test_unary_counting_is_spikeyolos_convention():
    net = hand_network(IBRALIF(D=5.11, N=100))
    x = torch.zeros(1, 3, 4, 4)
    unary = energy.estimate_energy(net, x, counting="unary")[0]
    assert unary.layers[1].firing_rate == pytest.approx((5 + 511) / 2)  # the integer codes themselves
    ilif = hand_network(ILIF(D=4), bias=(1.2, 3.7))  # codes 1 and 4
    report = energy.estimate_energy(ilif, x)[0]
    assert report.counting == "auto" and report.layers[1].firing_rate == pytest.approx(2.5)


def test_all_zero_image_and_constants():
    net = hand_network(IBRALIF(D=5.11, N=100), bias=(-1.0, -2.0))  # silent neurons
    consts = energy.EnergyConstants(e_mac_pj=1.0, e_ac_pj=0.5)
    report = energy.estimate_energy(net, torch.zeros(2, 3, 4, 4), constants=consts)
    assert len(report) == 2
    for r in report:
        assert r.layers[1].spikes == 0 and r.layers[1].energy_mJ == 0
        assert r.snn_mJ == pytest.approx(96 * 1e-9) and r.constants.e_mac_pj == 1.0
    with pytest.raises(ValueError, match="e_ac_pj"):
        energy.EnergyConstants(e_ac_pj=-1)


def test_both_paths_count_the_same_spikes(trained_checkpoint):
    from spikedet.engine.yolo import SpikeYOLO
    from spikedet.io.images import load_batch, sample_images

    images, _ = load_batch(sample_images("val"), 64, 2)
    # float64: the two paths fire identical codes (float32 sums may flip a code on a rounding boundary)
    model = bitplane.convert(SpikeYOLO(str(trained_checkpoint)).model.double().eval(), images[:1].double())
    integer = energy.estimate_energy(model, images.double())
    set_spike_mode(model, "bitplane")
    planes = energy.estimate_energy(model, images.double())
    for a, b in zip(integer, planes):
        assert a.spikes == b.spikes > 0 and a.snn_mJ == pytest.approx(b.snn_mJ, rel=1e-12)
        assert [l.spikes for l in a.layers] == [l.spikes for l in b.layers]
    # per-image: two different images give different counts, ANN cost is content-independent
    assert integer[0].spikes != integer[1].spikes and integer[0].ann_mJ == integer[1].ann_mJ
    # merged convs are charged at their cheaper trained form in the ANN reference
    assert integer[0].ann_mJ < integer[0].ann_merged_mJ


def test_ann_reference_runs_once_when_the_snn_runs_T_timesteps():
    from spikedet.model.builder import load_model_cfg
    from spikedet.model.detection import SpikeDetectionModel

    x = torch.rand(1, 3, 64, 64)
    reports = {}
    for T in (1, 2):
        cfg = load_model_cfg("spikeyolo-t.yaml")
        cfg["neuron"] = {"type": "IBRALIF", "D": 5.11, "N": 100, "T": T}
        torch.manual_seed(0)
        model = SpikeDetectionModel(cfg, verbose=False).eval()
        reports[T] = energy.estimate_energy(bitplane.convert(model, x), x)[0]
    assert reports[2].ann_mJ == pytest.approx(reports[1].ann_mJ)
    assert reports[2].ann_merged_mJ == pytest.approx(reports[1].ann_merged_mJ)
    assert reports[2].macs == pytest.approx(2 * reports[1].macs)  # every conv runs once per timestep


def test_counting_override_on_signed_codes_with_a_rest_code():
    from spikedet.snn.code import SpikeCode
    from tests.support.networks import Graph

    net = Graph(SpikeCode(330, 100.0, 30, "naf", rest=28), SpikeCode(400, 100.0, 30, "naf"), SpikeCode(45, 10.0, 3, "naf"))
    x = torch.rand(1, 3, 8, 8)
    converted = bitplane.convert(net, x)
    naf = energy.estimate_energy(converted, x)[0]
    binary = energy.estimate_energy(converted, x, counting="binary")[0]
    assert binary.counting == "binary" and binary.spikes > naf.spikes > 0  # raw codes carry the zero offset


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64])
@pytest.mark.parametrize("batch,T", [(1, 1), (3, 1), (2, 2)])
def test_code_histograms_match_a_plain_count(dtype, batch, T):
    """Every code 0..L lands in its own bin, per image (time-major rows), whatever the dtype."""
    levels = 511
    gen = torch.Generator().manual_seed(0)
    codes = torch.randint(0, levels + 1, (T * batch, 4, 17, 19), generator=gen)
    codes[0, 0, 0, :2] = torch.tensor([0, levels])  # both ends of the range
    got = energy.code_histograms(codes.to(dtype), batch, levels)
    per_image = codes.view(T, batch, -1).transpose(0, 1).reshape(batch, -1)
    want = torch.stack([torch.bincount(row, minlength=levels + 1) for row in per_image])
    assert got.dtype == torch.int64 and got.shape == (batch, levels + 1)
    assert torch.equal(got, want)
