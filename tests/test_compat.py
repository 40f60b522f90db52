"""Checkpoints pickled under earlier module names (``spikedet.neurons``, ``spikedet.model``) still load."""

from __future__ import annotations

import contextlib
import pickle

import torch

import spikedet  # noqa: F401  (installs the old names)
from spikedet.model.detection import SpikeDetectionModel
from spikedet.snn.code import SpikeCode
from spikedet.snn.neurons import IBRALIF, A2SNeuron


@contextlib.contextmanager
def pickled_as(module: str, *classes: type):
    """Pickle ``classes`` under an earlier module name, as a checkpoint written by that version names them."""
    saved = [(cls, cls.__module__) for cls in classes]
    for cls in classes:
        cls.__module__ = module
    try:
        yield
    finally:
        for cls, name in saved:
            cls.__module__ = name


def test_a_neuron_pickled_as_spikedet_neurons_loads():
    neuron = IBRALIF(D=5.11, N=100, T=2)
    with pickled_as("spikedet.neurons", IBRALIF, SpikeCode):
        data = pickle.dumps(neuron)
    assert b"spikedet.neurons" in data and b"spikedet.snn" not in data
    loaded = pickle.loads(data)
    assert type(loaded) is IBRALIF and loaded.code == neuron.code and loaded.T == 2
    x = torch.linspace(-1, 6, 50).view(2, 25)
    assert torch.equal(loaded(x), neuron(x))


def test_the_a2s_neuron_pickled_as_spikedet_a2s_loads():
    neuron = A2SNeuron(SpikeCode(30, 10.0, 3, "naf", 5))
    with pickled_as("spikedet.a2s", A2SNeuron), pickled_as("spikedet.neurons", SpikeCode):
        data = pickle.dumps(neuron)
    loaded = pickle.loads(data)
    assert type(loaded) is A2SNeuron and loaded.code == neuron.code


def test_a_model_pickled_as_spikedet_model_loads():
    model = SpikeDetectionModel("spikeyolo-t.yaml", verbose=False).eval()
    with pickled_as("spikedet.model", SpikeDetectionModel), pickled_as("spikedet.neurons", IBRALIF, SpikeCode):
        data = pickle.dumps(model)
    assert b"spikedet.model\n" in data or b"spikedet.model\x94" in data
    loaded = pickle.loads(data)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x)[0], model(x)[0])
