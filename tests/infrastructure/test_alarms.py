"""The alarms and the dashboard of template.yaml watch what the code really publishes.

An alarm whose namespace, metric name or dimension set differs by one dimension from what the
code emits never fires, and nothing says so. So the custom metrics are captured here as the
functions print them (EMF, metrics enabled): a receiver accepts an event, the worker delivers,
skips a duplicate, parks the rows of a Clay that is down and releases them, defers, dead-letters and
holds rows, and the Clay pool fills up. Every
alarm and every dashboard line on a custom metric must name exactly one of those (namespace,
metric, dimension names and values). Alarms on AWS metrics are checked against the resources and
the dimensions AWS documents, and after SAM's translation when the tools virtualenv is there."""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from clay_relay import jobs
from clay_relay.delivery_queue import DeliveryQueue
from clay_relay.jobs import ClayRowJob, parse_job
from clay_relay.observability import metrics
from clay_relay.runtime import get_runtime
from local_stack.template import load_template
from tests.destinations import Answer
from tests.invocations import LambdaContext, call_handler, directus_flow_event, load_handler
from tests.queues import receive, received_records, run_worker, sqs_record

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template()
RESOURCES = TEMPLATE["Resources"]
ENVIRONMENT = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
STACK = "relay-stack"  # resolves ${AWS::StackName}
# The namespace the functions get (ClayRelay/<stack>), and the one the code was given here.
NAMESPACE = ENVIRONMENT["POWERTOOLS_METRICS_NAMESPACE"]["Fn::Sub"].replace("${AWS::StackName}", STACK)
SERVICE = ENVIRONMENT["POWERTOOLS_SERVICE_NAME"]
TOPIC = {"Ref": "AlarmTopic"}
CLAY_PATH = "/clay/webhooks/leads-1"
CREATE = {
    "event": "leads.items.create",
    "payload": {"email": "ada@example.com", "first_name": "Ada", "company": "Acme"},
    "key": 1,
    "collection": "leads",
}
# Where the worker delivers: every job kind's destination.
DESTINATIONS = {job.destination for job in vars(jobs).values() if isinstance(job, type) and "destination" in vars(job)}

Metric = tuple[str, str, frozenset]  # namespace, name, {(dimension, value), ...}


def of_type(kind: str) -> dict[str, dict]:
    return {name: r for name, r in RESOURCES.items() if r["Type"] == kind}


ALARMS = of_type("AWS::CloudWatch::Alarm")


def alarm_metric(alarm: dict) -> Metric:
    p = alarm["Properties"]
    dimensions = frozenset((d["Name"], _plain(d["Value"])) for d in p["Dimensions"])
    return _plain(p["Namespace"]), p["MetricName"], dimensions


def _plain(value: object) -> str:
    """A string, a !Sub of the stack's name resolved, or another intrinsic as a hashable string."""
    if isinstance(value, dict) and isinstance(value.get("Fn::Sub"), str):
        return value["Fn::Sub"].replace("${AWS::StackName}", STACK)
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


# --- what the code publishes -----------------------------------------------------------------------
def published(printed: str) -> set[Metric]:
    """Every (namespace, metric, dimensions) of the EMF blobs in `printed`: one per dimension set."""
    found: set[Metric] = set()
    for line in printed.splitlines():
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        if not isinstance(blob, dict) or "_aws" not in blob:
            continue
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dimensions = frozenset((name, blob[name]) for name in dimension_set)
                for metric in directive["Metrics"]:
                    # The code's namespace here is tests/conftest.py's; deployed, it is the template's.
                    namespace = NAMESPACE if directive["Namespace"] == metrics.namespace else directive["Namespace"]
                    found.add((namespace, metric["Name"], dimensions))
    return found


def row(n: int) -> ClayRowJob:
    return ClayRowJob(
        event_id=f"alarm-test-{n}-{uuid.uuid4().hex[:8]}",
        origin="directus/leads",
        target="leads",
        row={"email": f"lead{n}@example.com", "directus_id": n},
    )


def work(queue_url: str, *jobs_: ClayRowJob) -> None:
    """One worker batch over these jobs, with the worker's pacing and circuit breaker at rest."""
    get_runtime().pacer.reset()
    get_runtime().breaker.reset()
    DeliveryQueue().enqueue(list(jobs_))
    ids = {job.job_id for job in jobs_}
    run_worker(records_where(queue_url, lambda job: job.job_id in ids, len(jobs_)))


def records_where(queue_url: str, wanted, expected: int) -> list[dict]:
    """The records of the `expected` messages whose job is `wanted`, as one worker batch. A message
    that comes back meanwhile (the deferred row's short retry) is left aside, hidden."""
    records: list[dict] = []
    deadline = time.monotonic() + 30
    while len(records) < expected and time.monotonic() < deadline:
        records += [
            sqs_record(message, queue_url) for message in receive(queue_url) if wanted(parse_job(message["Body"]))
        ]
    assert len(records) == expected
    return records


@pytest.fixture
def emitted(aws, http_stub, put_secret, use_config, capsys) -> set[Metric]:
    """The metrics a receiver and the worker publish over a day's events, and a Clay pool of one
    URL of 4 submissions filling up."""

    def small_pool(config: dict) -> None:
        config["clay_targets"]["leads"]["submission_limit"] = 4
        config["clay_targets"]["leads"]["budget"] = {"rows_per_day": 5}
        config["clay_targets"]["trial"] = {"webhooks_secret": "clay-webhooks-trial", "mode": "shadow"}

    use_config(small_pool)
    put_secret("clay-webhooks-leads", [{"url": http_stub.url(CLAY_PATH), "token": "clay-token"}])
    queue = aws.ref("DeliveryQueue")
    receiver = load_handler("directus_trigger")
    directus = directus_flow_event(CREATE)

    assert call_handler(receiver, directus)[0] == 202  # EventsAccepted
    [record] = received_records(queue, 1)
    run_worker([record])  # Delivered (1 of 4 submissions), ClayPoolUsedPercent
    assert call_handler(receiver, directus)[0] == 202  # EventsDuplicate: the worker has it
    accepted = parse_job(record["body"])
    work(queue, accepted.model_copy(update={"job_id": uuid.uuid4().hex}))  # DuplicatesSkipped
    # A 503 with Retry-After is retried (DeliveryRetried, 2 of 4), and Clay is left alone meanwhile: the
    # other row is parked without a request (DeliveryParked, DestinationDown 1).
    http_stub.answer(CLAY_PATH, Answer(503, headers={"Retry-After": "1"}))
    work(queue, row(1), row(9))
    http_stub.answer(CLAY_PATH, Answer(400))
    work(queue, row(2))  # DeadLettered (3 of 4)
    http_stub.answer(CLAY_PATH, Answer(429))
    work(queue, row(3))  # DeliveryDeferred (its submission given back)
    http_stub.answer(CLAY_PATH, Answer(200))
    # 4 of 4: ClayQuotaPassed80/95Percent, pool 100 %; HeldForQuota; Clay is back: ParkedJobsReleased,
    # DestinationDown 0
    work(queue, row(4), row(5))
    # Budget 5 a day: the rows above passed 80 % and 95 % (ClayBudgetPassed80/95Percent), the row
    # held for its pool gave its row back; of these two one is held for the budget (HeldForBudget).
    work(queue, row(6), row(7))  # ClayBudgetUsedPercent 100
    same_person = {**CREATE, "key": 2, "payload": {**CREATE["payload"], "email": " ADA@example.com"}}
    again = directus_flow_event(same_person)
    assert call_handler(receiver, again)[0] == 202
    run_worker(
        records_where(queue, lambda job: job.row.get("email") == " ADA@example.com", 1)
    )  # ClayRowsSkippedSamePerson
    work(queue, row(8).model_copy(update={"target": "trial"}))  # ClayRowsShadowed
    assert len(receive(aws.ref("DeadLetterQueue"))) == 1
    load_handler("enrichment_overdue")({}, LambdaContext())  # EnrichmentOverdue (0: none overdue yet)
    load_handler("directus_reconcile")({}, LambdaContext())  # ReconcileFailing, ReconciledEvents, ReconcileLagSeconds
    return published(capsys.readouterr().out)


def test_the_scenario_publishes_every_metric_of_the_flows(emitted):
    names = {name for namespace, name, _ in emitted if namespace == NAMESPACE}
    assert names >= {
        "EventsAccepted",
        "EventsDuplicate",
        "Delivered",
        "DuplicatesSkipped",
        "DeliveryRetried",
        "DeliveryDeferred",
        "DeadLettered",
        "HeldForQuota",
        "ClayQuotaPassed80Percent",
        "ClayQuotaPassed95Percent",
        "ClayPoolUsedPercent",
        "HeldForBudget",
        "ClayBudgetPassed80Percent",
        "ClayBudgetPassed95Percent",
        "ClayBudgetUsedPercent",
        "ClayRowsSkippedSamePerson",
        "ClayRowsShadowed",
        "DeliveryParked",
        "DestinationDown",
        "ParkedJobsReleased",
    }


def test_clay_pool_gauge_is_published_for_alarms_and_per_target(emitted):
    gauges = {dimensions for _, name, dimensions in emitted if name == "ClayPoolUsedPercent"}
    assert gauges == {
        frozenset({("service", SERVICE), ("destination", "clay")}),
        frozenset({("service", SERVICE), ("destination", "clay"), ("target", "leads")}),
    }


def test_destination_down_gauge_is_published_for_alarms_and_per_lane(emitted):
    gauges = {dimensions for _, name, dimensions in emitted if name == "DestinationDown"}
    assert gauges == {
        frozenset({("service", SERVICE), ("destination", "clay")}),
        frozenset({("service", SERVICE), ("destination", "clay"), ("lane", "clay:default")}),
    }


# --- alarms ----------------------------------------------------------------------------------------
ISSUE_ALARMS = {
    "DeadLettersAlarm": ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
    "OldestMessageAlarm": ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
    "ClayPool80PercentAlarm": (NAMESPACE, "ClayPoolUsedPercent"),
    "ClayPool95PercentAlarm": (NAMESPACE, "ClayPoolUsedPercent"),
    "Receiver5xxAlarm": ("AWS/ApiGateway", "5xx"),
    "EnrichmentOverdueAlarm": (NAMESPACE, "EnrichmentOverdue"),
    "ClayBudget100PercentAlarm": (NAMESPACE, "ClayBudgetUsedPercent"),
    "DirectusSweepFailingAlarm": (NAMESPACE, "ReconcileFailing"),
    **{
        f"DestinationDown{destination.capitalize()}Alarm": (NAMESPACE, "DestinationDown")
        for destination in DESTINATIONS
    },
}


@pytest.mark.parametrize("logical_id", sorted(ISSUE_ALARMS))
def test_each_alarm_of_the_issue_exists_on_its_metric(logical_id):
    namespace, name, _ = alarm_metric(ALARMS[logical_id])
    assert (namespace, name) == ISSUE_ALARMS[logical_id]


@pytest.mark.parametrize("logical_id", sorted(ALARMS))
def test_every_alarm_notifies_the_topic_when_it_fires_and_clears_and_says_what_to_do(logical_id):
    p = ALARMS[logical_id]["Properties"]
    assert p["AlarmActions"] == [TOPIC] and p["OKActions"] == [TOPIC]
    assert p["TreatMissingData"] in ("ignore", "notBreaching")
    description = p["AlarmDescription"] if isinstance(p["AlarmDescription"], str) else p["AlarmDescription"]["Fn::Sub"]
    assert 100 < len(description) <= 1024
    # The topic policy lets CloudWatch publish for this stack's alarms only: their names start so.
    assert p["AlarmName"]["Fn::Sub"].startswith("${AWS::StackName}-")
    assert p["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


@pytest.mark.parametrize("logical_id", sorted(n for n, a in ALARMS.items() if alarm_metric(a)[0] == NAMESPACE))
def test_custom_metric_alarm_watches_exactly_what_the_code_emits(logical_id, emitted):
    namespace, name, dimensions = alarm_metric(ALARMS[logical_id])
    values = dict(dimensions)
    assert values.get("destination") in DESTINATIONS
    # The scenario's destination is Clay; the dimension set is the same for every destination.
    if name == "DestinationDown":
        values["destination"] = "clay"
    assert (namespace, name, frozenset(values.items())) in emitted


@pytest.mark.parametrize("destination", sorted(DESTINATIONS))
def test_each_destination_has_a_destination_down_alarm_that_names_it_and_says_what_to_do(destination):
    p = ALARMS[f"DestinationDown{destination.capitalize()}Alarm"]["Properties"]
    assert p["AlarmName"] == {"Fn::Sub": f"${{AWS::StackName}}-destination-down-{destination}"}
    assert (
        dict(alarm_metric(ALARMS[f"DestinationDown{destination.capitalize()}Alarm"])[2])["destination"] == destination
    )
    description = p["AlarmDescription"]
    assert description.lower().startswith(("clay ", "loops ", "slack ", "zapier ", "directus ", "a forward endpoint"))
    assert destination in description.lower()
    for says in ("parks", "`relay status`", "console", "released oldest first", "dead-lettered", "After an outage"):
        assert says in description, says


def test_destination_down_alarms_fire_on_a_parked_lane_and_clear_only_once_no_probe_fails():
    """The worker publishes 1 at every failed probe (about every `probe_seconds`) and nothing while a
    destination is up: missing data is good news, and the window must outlast the longest wait
    between two probes (plus the probe's own receive and request), or a long outage would flap."""
    from clay_relay.config import DeliveryPolicy

    longest_probe = next(m.le for m in DeliveryPolicy.model_fields["probe_seconds"].metadata if hasattr(m, "le"))
    for destination in DESTINATIONS:
        p = ALARMS[f"DestinationDown{destination.capitalize()}Alarm"]["Properties"]
        assert (p["Statistic"], p["Threshold"], p["DatapointsToAlarm"]) == ("Maximum", 1, 1)
        assert p["TreatMissingData"] == "notBreaching"
        assert p["Period"] * p["EvaluationPeriods"] >= longest_probe + 300
        assert p["Period"] * p["EvaluationPeriods"] <= 1800, "and it clears within half an hour of the last one"


@pytest.mark.parametrize(("logical_id", "threshold"), [("ClayPool80PercentAlarm", 80), ("ClayPool95PercentAlarm", 95)])
def test_clay_pool_alarms_fire_on_the_pool_level_reaching_their_percent(logical_id, threshold):
    p = ALARMS[logical_id]["Properties"]
    assert (p["Statistic"], p["Threshold"]) == ("Maximum", threshold)
    assert p["TreatMissingData"] == "ignore"  # published only when rows go to Clay


def test_clay_budget_alarm_fires_when_a_budget_is_used_up_and_keeps_its_state_between_rows():
    p = ALARMS["ClayBudget100PercentAlarm"]["Properties"]
    assert (p["Statistic"], p["Threshold"], p["TreatMissingData"]) == ("Maximum", 100, "ignore")


def test_clay_budget_gauge_is_published_for_alarms_and_per_target(emitted):
    gauges = {dimensions for _, name, dimensions in emitted if name == "ClayBudgetUsedPercent"}
    assert gauges == {
        frozenset({("service", SERVICE), ("destination", "clay")}),
        frozenset({("service", SERVICE), ("destination", "clay"), ("target", "leads")}),
    }


def test_queue_alarms_watch_the_stacks_queues():
    dead, oldest = ALARMS["DeadLettersAlarm"]["Properties"], ALARMS["OldestMessageAlarm"]["Properties"]
    assert dead["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}]
    assert (dead["Statistic"], dead["Threshold"]) == ("Maximum", 1)
    assert oldest["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeliveryQueue", "QueueName"]}}]
    assert oldest["Threshold"] == {"Ref": "OldestMessageAgeAlarmSeconds"}


def test_oldest_message_default_is_above_every_wait_the_worker_sets_before_a_third_receive():
    """SQS leaves messages received 3 times or more out of ApproximateAgeOfOldestMessage; before
    that a job waits at most its first backoffs, a rate limit's pause, or a Clay hold (new message,
    delayed `hold_seconds`)."""
    from clay_relay.config import DeliveryPolicy

    policy = DeliveryPolicy()
    default = TEMPLATE["Parameters"]["OldestMessageAgeAlarmSeconds"]["Default"]
    first_backoffs = policy.min_backoff_seconds * (1 + 2)
    assert default >= 2 * max(policy.hold_seconds, first_backoffs)
    assert default < policy.retry_horizon_seconds


def test_receiver_5xx_alarm_watches_the_http_apis_default_stage():
    p = ALARMS["Receiver5xxAlarm"]["Properties"]
    # HTTP APIs publish 5xx (not REST APIs' 5XXError) by ApiId and Stage.
    assert {d["Name"]: d["Value"] for d in p["Dimensions"]} == {"ApiId": {"Ref": "RelayApi"}, "Stage": "$default"}
    assert (p["Statistic"], p["Threshold"]) == ("Sum", {"Ref": "Receiver5xxAlarmThreshold"})


def test_worker_errors_alarm_watches_the_worker_function():
    p = ALARMS["DeliveryWorkerErrorsAlarm"]["Properties"]
    assert alarm_metric(ALARMS["DeliveryWorkerErrorsAlarm"])[:2] == ("AWS/Lambda", "Errors")
    assert p["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "DeliveryWorkerFunction"}}]


def test_each_stack_publishes_its_metrics_in_a_namespace_of_its_own():
    """Two stacks in one account and region (samconfig.toml's [default] and [prod]) would otherwise
    feed each other's Clay pool alarms."""
    assert ENVIRONMENT["POWERTOOLS_METRICS_NAMESPACE"] == {"Fn::Sub": "ClayRelay/${AWS::StackName}"}


# --- the topic and its e-mail subscription ------------------------------------------------------------
def test_email_subscription_exists_only_when_an_address_is_given():
    assert TEMPLATE["Parameters"]["AlarmEmail"]["Default"] == ""
    assert TEMPLATE["Conditions"]["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    [subscription] = of_type("AWS::SNS::Subscription").values()
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"] == {"TopicArn": TOPIC, "Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}}


@pytest.mark.parametrize(
    ("address", "allowed"), [("", True), ("ops@example.com", True), ("ops@example", False), ("not an address", False)]
)
def test_alarm_email_parameter_accepts_an_address_or_nothing(address, allowed):
    pattern = TEMPLATE["Parameters"]["AlarmEmail"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, address)) is allowed


def test_only_this_stacks_alarms_may_publish_to_the_topic():
    policy = RESOURCES["AlarmTopicPolicy"]["Properties"]
    assert policy["Topics"] == [TOPIC]
    [statement] = policy["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert statement["Action"] == "sns:Publish" and statement["Resource"] == TOPIC
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    source = statement["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"]
    assert source.endswith(":alarm:${AWS::StackName}-*")


# --- dashboard -----------------------------------------------------------------------------------------
def dashboard() -> dict:
    body = RESOURCES["RelayDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    return json.loads(
        re.sub(
            r"\$\{([^}]+)\}",
            lambda m: STACK if m[1] == "AWS::StackName" else "0" if "." not in m[1] and "::" not in m[1] else "X",
            body,
        )
    )


def dashboard_metrics() -> list[Metric]:
    lines = []
    for widget in dashboard()["widgets"]:
        for entry in widget["properties"].get("metrics", []):
            fields = [f for f in entry if isinstance(f, str)]
            if len(fields) >= 2:
                namespace, name, *pairs = fields
                lines.append((namespace, name, frozenset(zip(pairs[::2], pairs[1::2], strict=True))))
    return lines


def test_dashboard_plots_the_flows():
    titles = " / ".join(w["properties"]["title"] for w in dashboard()["widgets"])
    for flow in (
        "accepted",
        "Delivered",
        "Retried",
        "Deferred",
        "Dead-lettered",
        "pool used",
        "Delivery queue",
        "spend",
    ):
        assert flow in titles
    names = {name for _, name, _ in dashboard_metrics()}
    assert names >= {"EventsAccepted", "EventsDuplicate", "Delivered", "DeliveryRetried", "DeliveryDeferred"}
    assert names >= {"DeadLettered", "ClayPoolUsedPercent", "ApproximateAgeOfOldestMessage", "5xx", "4xx"}


PER_DESTINATION = ["Delivered", "DeliveryRetried", "DeliveryDeferred", "DeadLettered", "DestinationDown"]
PER_DESTINATION += ["DeliveryParked", "ParkedJobsReleased"]


@pytest.mark.parametrize("name", PER_DESTINATION)
def test_dashboard_shows_each_destination_of_the_worker(name):
    shown = {dict(dimensions)["destination"] for _, metric, dimensions in dashboard_metrics() if metric == name}
    assert shown >= DESTINATIONS == {"clay", "loops", "slack", "zapier", "directus", "forward"}


def test_dashboards_alarm_widget_shows_whether_each_destination_is_down():
    body = RESOURCES["RelayDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    for destination in DESTINATIONS:
        assert f"${{DestinationDown{destination.capitalize()}Alarm.Arn}}" in body


def test_dashboard_custom_metrics_are_exactly_what_the_code_emits(emitted):
    for namespace, name, dimensions in dashboard_metrics():
        if namespace != NAMESPACE:
            continue
        values = dict(dimensions)
        destination = values.get("destination")
        # The scenario sends to Clay only; the dimension set is the same for every destination.
        assert destination is None or destination in DESTINATIONS | {"unknown"}
        if destination is not None and (namespace, name, dimensions) not in emitted:  # the sweep's: as emitted
            values["destination"] = "clay"
        assert (namespace, name, frozenset(values.items())) in emitted, (name, dimensions)


def test_dashboard_search_for_each_target_matches_the_gauges_breakdown(emitted):
    [expression] = [
        entry[0]["expression"]
        for widget in dashboard()["widgets"]
        for entry in widget["properties"].get("metrics", [])
        if isinstance(entry[0], dict)
    ]
    schema = [part.strip('"') for part in re.search(r"\{([^}]+)\}", expression)[1].split(",")]
    name = re.search(r'MetricName="(\w+)"', expression)[1]
    assert any(
        namespace == schema[0] and metric == name and {d for d, _ in dimensions} == set(schema[1:])
        for namespace, metric, dimensions in emitted
    )


def test_dashboard_aws_metrics_name_the_stacks_resources():
    body = RESOURCES["RelayDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    for reference in set(re.findall(r"\$\{([^}]+)\}", body)):
        logical = reference.split(".")[0]
        assert reference.startswith("AWS::") or logical in RESOURCES or logical in TEMPLATE["Parameters"], reference
    for namespace, _, dimensions in dashboard_metrics():
        names = {d for d, _ in dimensions}
        expected = {"AWS/SQS": {"QueueName"}, "AWS/ApiGateway": {"ApiId", "Stage"}, "AWS/Lambda": {"FunctionName"}}
        assert namespace == NAMESPACE or names == expected[namespace]


def test_outputs_give_the_topic_and_the_dashboards_url():
    outputs = TEMPLATE["Outputs"]
    assert outputs["AlarmTopicArn"]["Value"] == TOPIC
    url = outputs["DashboardUrl"]["Value"]["Fn::Sub"]
    assert url.startswith("https://${AWS::Region}.console.aws.amazon.com/cloudwatch/")
    assert url.endswith("#dashboards/dashboard/${RelayDashboard}")


# --- after SAM's translation ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def translated() -> dict:
    python = ROOT / ".tools" / "bin" / "python"
    if not python.exists():
        pytest.skip("the tools virtualenv (.tools, `make install`) translates the template")
    run = subprocess.run(
        [str(python), str(ROOT / "scripts" / "check_template.py"), "--print"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(run.stdout)


def test_translated_http_api_stage_is_the_one_the_5xx_alarm_watches(translated):
    stages = [r["Properties"] for r in translated["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Stage"]
    assert [(s["ApiId"], s["StageName"]) for s in stages] == [({"Ref": "RelayApi"}, "$default")]
    assert translated["Resources"]["RelayApi"]["Type"] == "AWS::ApiGatewayV2::Api"


def test_translated_alarms_reference_resources_that_exist(translated):
    resources = translated["Resources"]
    assert resources["DeliveryWorkerFunction"]["Type"] == "AWS::Lambda::Function"
    for name, alarm in ALARMS.items():
        assert resources[name]["Properties"] == alarm["Properties"]
    assert resources["AlarmEmailSubscription"]["Condition"] == "HasAlarmEmail"
    assert "HasAlarmEmail" in translated["Conditions"]
