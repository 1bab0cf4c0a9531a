"""Reads template.yaml (CloudFormation tags included) and resolves what the local stack needs:
functions with their handlers, HTTP routes, SQS sources and schedules; tables, queues and secrets;
and the functions' environment with references replaced by the local resources' names."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"


class _CfnLoader(yaml.SafeLoader):
    pass


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict:
    if isinstance(node, yaml.ScalarNode):
        value: object = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path = TEMPLATE) -> dict:
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass  # nosec B506


@dataclass(frozen=True)
class HttpRoute:
    method: str  # "ANY" or an HTTP method
    path: str  # "/directus/{source}"
    function: str

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """Path parameters when this route serves the request's path (any method), else None."""
        pattern = "^" + re.sub(r"\\\{(\w+)(?:\\\+)?\\\}", r"(?P<\1>[^/]+)", re.escape(self.path)) + "$"
        found = re.match(pattern, path)
        return found.groupdict() if found else None

    def allows(self, method: str) -> bool:
        return self.method in ("ANY", "X-AMAZON-APIGATEWAY-ANY-METHOD") or self.method == method


@dataclass(frozen=True)
class ScheduleEvent:
    """A `Schedule` (EventBridge rule) or `ScheduleV2` (EventBridge Scheduler) event of a function."""

    name: str  # the event's key under Events
    kind: str  # "Schedule" or "ScheduleV2"
    expression: object  # ScheduleExpression (V2) or Schedule (rule): "rate(5 minutes)", maybe an intrinsic
    enabled: bool = True
    input: object = None  # the event's Input (a JSON string), if any
    deployed_name: object = None  # the event's Name: the schedule's (or rule's) name in AWS, maybe an intrinsic


@dataclass
class FunctionSpec:
    name: str
    code_dir: Path
    handler: str
    timeout: int
    routes: list[HttpRoute] = field(default_factory=list)
    sqs_sources: list[dict] = field(default_factory=list)
    schedules: list[ScheduleEvent] = field(default_factory=list)


@dataclass
class Template:
    document: dict
    stack_name: str

    @property
    def resources(self) -> dict:
        return self.document["Resources"]

    def of_type(self, kind: str) -> dict[str, dict]:
        return {name: r for name, r in self.resources.items() if r["Type"] == kind}

    def functions(self) -> dict[str, FunctionSpec]:
        defaults = self.document.get("Globals", {}).get("Function", {})
        specs = {}
        for name, resource in self.of_type("AWS::Serverless::Function").items():
            props = resource["Properties"]
            spec = FunctionSpec(
                name=name,
                code_dir=ROOT / props["CodeUri"],
                handler=props.get("Handler", defaults.get("Handler")),
                timeout=int(props.get("Timeout", defaults.get("Timeout", 3))),
            )
            for event_name, event in props.get("Events", {}).items():
                if event["Type"] == "HttpApi":
                    p = event["Properties"]
                    spec.routes.append(HttpRoute(p.get("Method", "ANY").upper(), p["Path"], name))
                elif event["Type"] == "SQS":
                    spec.sqs_sources.append(event["Properties"])
                elif event["Type"] in ("Schedule", "ScheduleV2"):
                    spec.schedules.append(_schedule_event(event_name, event))
            specs[name] = spec
        return specs

    def parameter_defaults(self) -> dict[str, str]:
        return {name: str(p.get("Default", "")) for name, p in self.document.get("Parameters", {}).items()}

    def function_environment(self, resolver: Resolver) -> dict[str, str]:
        """Globals.Function.Environment, resolved. Every function shares it (the template keeps
        function-specific variables out, so one process can host all handlers)."""
        variables = self.document.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
        return {key: str(resolver.resolve(value)) for key, value in variables.items()}


def _schedule_event(name: str, event: dict) -> ScheduleEvent:
    p = event.get("Properties", {})
    if event["Type"] == "ScheduleV2":
        expression, enabled = p.get("ScheduleExpression"), p.get("State", "ENABLED") != "DISABLED"
    else:
        expression = p.get("Schedule")
        enabled = p.get("Enabled", True) is not False and p.get("State", "ENABLED") != "DISABLED"
    return ScheduleEvent(name, event["Type"], expression, enabled, p.get("Input"), p.get("Name"))


@dataclass
class Resolver:
    """Resolves Ref, Fn::Sub and Fn::GetAtt against local resource names."""

    stack_name: str
    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)  # "Logical.Attr" → value
    parameters: dict[str, str] = field(default_factory=dict)

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::StackName": self.stack_name,
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
        }
        for table in (pseudo, self.refs, self.parameters):
            if name in table:
                return table[name]
        raise KeyError(f"template reference {name!r} has no local value")

    def resolve(self, value: object) -> object:
        if isinstance(value, dict) and len(value) == 1:
            ((kind, arg),) = value.items()
            if kind == "Ref":
                return self._ref(arg)
            if kind == "Fn::GetAtt":
                return self.attributes[".".join(arg)]
            if kind == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                return re.sub(
                    r"\$\{([^}]+)\}",
                    lambda m: self.attributes[m.group(1)] if "." in m.group(1) else self._ref(m.group(1)),
                    text,
                )
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value
