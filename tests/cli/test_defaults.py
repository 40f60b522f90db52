"""Each command that is a library function takes that function's defaults, setting for setting."""

from __future__ import annotations

import inspect

import pytest

from spikedet.cli.main import load_commands
from spikedet.convert.pipelines import a2s_weights, convert_weights, export_weights, integer_weights, verify_weights
from spikedet.measure.costs import CONSTANTS, EnergyConstants
from spikedet.measure.pipelines import analyze_weights, measure_energy, model_info

ENERGY_KEYS = {name.removesuffix("_pj"): name for name in CONSTANTS}  # setting -> EnergyConstants field

# a command that chooses between functions by a switch (convert --integer) takes both functions' defaults
FUNCTIONS = {"convert": (convert_weights, integer_weights), "a2s": (a2s_weights,), "export": (export_weights,),
             "energy": (measure_energy,), "analyze": (analyze_weights,), "info": (model_info,),
             "verify": (verify_weights,)}
SWITCHES = {"integer"}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_command_defaults_are_the_functions_defaults(name):
    command = load_commands()[name]
    parameters = {}
    for function in FUNCTIONS[name]:
        for key, parameter in inspect.signature(function).parameters.items():
            if key in parameters and parameter.default is not inspect.Parameter.empty:
                assert parameters[key].default == parameter.default, (name, key)  # one default per setting
            parameters.setdefault(key, parameter)
    shared = [key for key in command.settings if key in parameters]
    assert len(shared) >= 3, shared
    for key in shared:
        default = parameters[key].default
        if default is inspect.Parameter.empty:
            continue
        assert command.settings[key].default == default, (name, key)
    # the energy constants travel as one EnergyConstants (the function's ``constants``): same defaults
    constants = {key for key in command.settings if key in ENERGY_KEYS}
    if "constants" in parameters:
        assert constants == set(ENERGY_KEYS)
        for key in constants:
            assert command.settings[key].default == getattr(EnergyConstants(), ENERGY_KEYS[key]), (name, key)
    # every setting but the weights (MAIN) and display-only switches is an argument of the function
    extra = set(command.settings) - set(parameters) - {"model", "layers", "energy_model"} - constants - SWITCHES
    assert not extra, extra
