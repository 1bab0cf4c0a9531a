"""template.yaml's `Tracing` parameter: the modes the functions know, passed to every function, and
Lambda's own tracing following it (an unknown mode fails the deploy: AllowedValues)."""

from __future__ import annotations

import pytest

from clay_relay.settings import TRACING_MODES, Settings
from local_stack.template import load_template

TEMPLATE = load_template()
PARAMETER = TEMPLATE["Parameters"]["Tracing"]
GLOBALS = TEMPLATE["Globals"]["Function"]


def test_the_parameter_allows_exactly_the_modes_the_functions_know():
    assert sorted(PARAMETER["AllowedValues"]) == sorted(TRACING_MODES)


def test_the_parameter_s_default_is_the_functions_default():
    assert PARAMETER["Default"] == Settings.model_fields["tracing"].default


def test_every_function_gets_the_mode_as_relay_tracing():
    assert GLOBALS["Environment"]["Variables"]["RELAY_TRACING"] == {"Ref": "Tracing"}
    functions = [r for r in TEMPLATE["Resources"].values() if r["Type"] == "AWS::Serverless::Function"]
    for function in functions:
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        assert "RELAY_TRACING" not in variables, "no function overrides the stack's mode"
        assert "Tracing" not in function["Properties"], "no function overrides Lambda's tracing"


def lambda_tracing(mode: str) -> str:
    """Globals' `Tracing` for a value of the parameter, as CloudFormation evaluates it."""
    condition_name, active, passthrough = GLOBALS["Tracing"]["Fn::If"]
    condition = TEMPLATE["Conditions"][condition_name]
    ((negation, [equals]),) = condition.items()
    assert negation == "Fn::Not"
    left, right = equals["Fn::Equals"]
    assert left == {"Ref": "Tracing"}
    return active if mode != right else passthrough


@pytest.mark.parametrize(("mode", "expected"), [("lambda", "Active"), ("xray", "Active"), ("off", "PassThrough")])
def test_lambda_records_its_own_segment_in_every_mode_but_off(mode, expected):
    assert lambda_tracing(mode) == expected
