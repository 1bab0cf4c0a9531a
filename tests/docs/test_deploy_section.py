"""The README's Deploy section is true of the template and samconfig.toml: every prerequisite is
listed, every secret is named as each `--config-env`'s stack names it, the outputs, logs and removal
commands are there with what removal keeps, and the idle stack's fixed cost is counted from the
template's own resources beside the measured cost per event, for 1k, 10k and 100k leads a month."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()
DEPLOY = README.split("## Deploy", 1)[1]
SECRET_PRICE, ALARM_PRICE, DASHBOARD_PRICE, METRIC_PRICE = 0.40, 0.10, 3.00, 0.30
EVENTS_PER_LEAD = 8


class _Tags(yaml.SafeLoader):
    pass


_Tags.add_multi_constructor(
    "!", lambda loader, suffix, node: loader.construct_scalar(node) if suffix == "Sub" else None
)
TEMPLATE = yaml.load((ROOT / "template.yaml").read_text(), Loader=_Tags)  # noqa: S506 - SafeLoader's subclass
RESOURCES = TEMPLATE["Resources"]
SAMCONFIG = tomllib.loads((ROOT / "samconfig.toml").read_text())


def of_type(kind: str) -> dict:
    return {name: r for name, r in RESOURCES.items() if r["Type"] == kind}


def secret_names() -> list[str]:
    return [
        r["Properties"]["Name"].removeprefix("${AWS::StackName}/")
        for r in of_type("AWS::SecretsManager::Secret").values()
    ]


def test_the_prerequisites_name_sam_the_aws_cli_python_and_credentials():
    prerequisites = DEPLOY.split("```", 1)[0]
    for needed in ("AWS SAM CLI", "AWS CLI", "`aws`", "python3.13", "`make`", "AWS credentials"):
        assert needed in prerequisites, needed


@pytest.mark.parametrize("environment", sorted(name for name, env in SAMCONFIG.items() if isinstance(env, dict)))
def test_every_secret_is_named_as_the_stack_of_each_config_env_names_it(environment):
    stack = SAMCONFIG[environment]["global"]["parameters"]["stack_name"]
    assert f"--secret-id {stack}/directus-tokens" in DEPLOY
    assert f"`{stack}/`" in DEPLOY
    table = DEPLOY.split("| secret (after", 1)[1].split("\n\n", 1)[0]
    for name in secret_names():
        assert f"| `{name}` |" in table, name


def test_it_says_how_to_read_the_outputs_again_watch_the_logs_and_remove_the_stack_and_what_stays():
    for command in ("sam list stack-outputs --stack-name clay-relay", "sam logs --stack-name clay-relay --tail"):
        assert command in DEPLOY
    assert "sam delete --stack-name clay-relay" in DEPLOY
    for name, resource in RESOURCES.items():
        if resource.get("DeletionPolicy") == "Retain":
            kind = {"AWS::DynamoDB::Table": "DynamoDB table"}[resource["Type"]]
            assert kind in DEPLOY and "DeletionPolicy: Retain" in DEPLOY, name


def money(text: str) -> float:
    return float(text.replace("$", "").replace(",", ""))


def test_the_idle_stacks_fixed_cost_is_counted_from_the_templates_resources():
    costs = DEPLOY.split("### What it costs", 1)[1]
    secrets, alarms = len(of_type("AWS::SecretsManager::Secret")), len(of_type("AWS::CloudWatch::Alarm"))
    dashboards = len(of_type("AWS::CloudWatch::Dashboard"))
    expected = {
        "Secrets Manager secrets": (secrets, secrets * SECRET_PRICE),
        "CloudWatch alarms": (alarms, alarms * ALARM_PRICE),
        "CloudWatch dashboard": (dashboards, dashboards * DASHBOARD_PRICE),
        "custom metrics of the overdue check": (2, 2 * METRIC_PRICE),
        "custom metrics of the Directus sweep": (6, 6 * METRIC_PRICE),
    }
    total = 0.0
    for what, (count, cost) in expected.items():
        row = re.search(rf"\| {what} \| (\d+) \(.*?\| \$([\d.]+) \|", costs)
        assert row, what
        assert (int(row[1]), money(row[2])) == (count, pytest.approx(cost)), what
        total += cost
    fixed = re.search(r"\*\*fixed\*\* \| \| \*\*about \$([\d.]+)\*\*", costs)
    assert fixed and money(fixed[1]) == pytest.approx(total)


def test_the_cost_per_lead_follows_the_measured_cost_per_event():
    measured = re.search(
        r"cost per million relayed events, 256 MB \(worst flow\) \| \$([\d.]+)",
        (ROOT / "docs" / "performance.md").read_text(),
    )
    per_million = money(measured[1])
    costs = DEPLOY.split("### What it costs", 1)[1]
    assert f"${per_million:.2f} per million" in costs
    fixed = money(re.search(r"\*\*about \$([\d.]+)\*\*", costs)[1])
    for leads in (1_000, 10_000, 100_000):
        row = re.search(rf"\| {leads:,} \| ([\d,]+) \| \$([\d.]+) \| about \$([\d.]+) \|", costs)
        assert row, leads
        events = leads * EVENTS_PER_LEAD
        assert int(row[1].replace(",", "")) == events
        assert money(row[2]) == pytest.approx(events * per_million / 1e6, abs=0.006)
        assert money(row[3]) == pytest.approx(fixed + events * per_million / 1e6, abs=0.011)
