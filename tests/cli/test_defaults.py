"""Each command that is a library function takes that function's defaults, setting for setting."""

from __future__ import annotations

import inspect

import pytest

from spikedet.cli.main import load_commands
from spikedet.convert.pipelines import a2s_weights, convert_weights, export_weights
from spikedet.measure.pipelines import analyze_weights, measure_energy, model_info

FUNCTIONS = {"convert": convert_weights, "a2s": a2s_weights, "export": export_weights, "energy": measure_energy,
             "analyze": analyze_weights, "info": model_info}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_command_defaults_are_the_functions_defaults(name):
    command = load_commands()[name]
    parameters = inspect.signature(FUNCTIONS[name]).parameters
    shared = [key for key in command.settings if key in parameters]
    assert len(shared) >= 3, shared
    for key in shared:
        default = parameters[key].default
        if default is inspect.Parameter.empty:
            continue
        assert command.settings[key].default == default, (name, key)
    # every setting but the weights (MAIN) and display-only switches is an argument of the function
    extra = set(command.settings) - set(parameters) - {"model", "layers"}
    assert not extra, extra
