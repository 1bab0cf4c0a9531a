"""The local stack runs template.yaml's scheduled functions like EventBridge Scheduler: on their
rate (or the period `--schedule-every` / `--enrichment-sla` give), with Scheduler's event, one run
of a function at a time, until stopped."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from local_stack.__main__ import main
from local_stack.scheduler import ScheduledRun, Scheduler, ScheduleRefused, rate_seconds
from local_stack.stack import Options
from local_stack.template import FunctionSpec, Resolver, ScheduleEvent, Template, load_template

EVERY_FIVE_MINUTES = ScheduleEvent("Check", "ScheduleV2", "rate(5 minutes)")


def wait_for(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while not (value := predicate()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return value


# --- schedule expressions ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(1 hour)", 3600),
        ("rate(12 hours)", 43_200),
        ("rate(1 day)", 86_400),
        ("rate(7 days)", 604_800),
    ],
)
def test_a_rate_is_read_in_minutes_hours_or_days(expression, seconds):
    assert rate_seconds(expression) == seconds


def test_cron_and_at_schedules_are_refused_saying_how_to_run_them_anyway():
    for expression in ("cron(0/5 * * * ? *)", "at(2026-12-24T18:00:00)"):
        with pytest.raises(ScheduleRefused, match=r"only rate\(N minutes\|hours\|days\).*--schedule-every"):
            rate_seconds(expression)


@pytest.mark.parametrize("expression", ["rate(0 minutes)", "rate(5 weeks)", "rate(minutes)", "every 5 minutes", None])
def test_anything_else_is_refused_naming_what_is_expected(expression):
    with pytest.raises(ScheduleRefused, match=r"expected rate\(N minute\(s\)\|hour\(s\)\|day\(s\)\) with N ≥ 1"):
        rate_seconds(expression)


def test_the_template_schedules_the_overdue_check_every_five_minutes_with_eventbridge_scheduler():
    spec = Template(load_template(), "test").functions()["EnrichmentOverdueFunction"]
    assert [(s.kind, s.expression, s.enabled) for s in spec.schedules] == [("ScheduleV2", "rate(5 minutes)", True)]
    assert rate_seconds(spec.schedules[0].expression) == 300
    named = Resolver("clay-relay-prod").resolve(spec.schedules[0].deployed_name)
    assert named == "clay-relay-prod-enrichment-overdue", "two stacks in one account each have their schedule"


def test_the_template_sweeps_directus_every_five_minutes_with_eventbridge_scheduler():
    spec = Template(load_template(), "test").functions()["DirectusReconcileFunction"]
    assert [(s.kind, s.expression, s.enabled) for s in spec.schedules] == [("ScheduleV2", "rate(5 minutes)", True)]
    named = Resolver("clay-relay-prod").resolve(spec.schedules[0].deployed_name)
    assert named == "clay-relay-prod-directus-reconcile"


def test_reconcile_seconds_runs_the_sweep_that_often_sweeping_every_source_at_each_run(tmp_path):
    options = Options(reconcile_seconds=3)
    assert options.schedule_periods == {"DirectusReconcileFunction": 3.0}
    assert options.function_environment == {"RECONCILE_EVERY_SECONDS": "3", "RECONCILE_SETTLE_SECONDS": "3"}
    sweep = handler_spec(tmp_path, "DirectusReconcileFunction", EVERY_FIVE_MINUTES, body=RECORD)
    overdue = handler_spec(tmp_path, "OverdueFunction", EVERY_FIVE_MINUTES, body=RECORD)
    runs = Scheduler({f.name: f for f in (sweep, overdue)}, periods=options.schedule_periods).runs
    assert {run.name: run.period for run in runs} == {"DirectusReconcileFunction": 3.0, "OverdueFunction": 300}
    runs = Scheduler({f.name: f for f in (sweep, overdue)}, every=1, periods=options.schedule_periods).runs
    assert {run.name: run.period for run in runs} == {"DirectusReconcileFunction": 3.0, "OverdueFunction": 1}


# --- runs --------------------------------------------------------------------------------------------
def handler_spec(folder: Path, name: str, *schedules: ScheduleEvent, body: str) -> FunctionSpec:
    """A function whose handler (in `folder`) runs `body` with `event` and `OUT` (a file) in scope."""
    code = folder / name
    code.mkdir()
    (code / "app.py").write_text(
        f"import json, pathlib\nOUT = pathlib.Path({str(code / 'runs.jsonl')!r})\n"
        f"def lambda_handler(event, context):\n    {body}\n"
    )
    return FunctionSpec(name=name, code_dir=code, handler="app.lambda_handler", timeout=3, schedules=list(schedules))


def runs_of(spec: FunctionSpec) -> list[dict]:
    out = spec.code_dir / "runs.jsonl"
    return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []


RECORD = "OUT.open('a').write(json.dumps(event) + '\\n'); return {'overdue': 0}"


def test_a_scheduled_function_is_invoked_on_its_period_with_eventbridge_schedulers_event(tmp_path):
    named = ScheduleEvent(
        "Check", "ScheduleV2", "rate(5 minutes)", deployed_name={"Fn::Sub": "${AWS::StackName}-check"}
    )
    spec = handler_spec(tmp_path, "OverdueFunction", named, body=RECORD)
    lines: list[str] = []
    scheduler = Scheduler(
        {spec.name: spec}, every=0.05, stack_name="local", resolve=Resolver("local").resolve, log=lines.append
    )
    scheduler.start()
    try:
        assert wait_for(lambda: len(runs_of(spec)) >= 2), "runs again and again"
    finally:
        scheduler.stop()

    event = runs_of(spec)[0]
    assert (event["source"], event["detail-type"], event["detail"]) == ("aws.scheduler", "Scheduled Event", "{}")
    assert event["resources"] == ["arn:aws:scheduler:us-east-1:123456789012:schedule/default/local-check"]
    assert event["time"].endswith("Z") and event["id"] != runs_of(spec)[1]["id"]
    assert any(line.startswith("[scheduler] OverdueFunction run 1 (") and '{"overdue": 0}' in line for line in lines)


def test_a_schedule_with_an_input_passes_it_as_the_event(tmp_path):
    schedule = ScheduleEvent("Check", "Schedule", "rate(1 minute)", input='{"sweep": "directus"}')
    spec = handler_spec(tmp_path, "SweepFunction", schedule, body=RECORD)
    scheduler = Scheduler({spec.name: spec}, every=0.05, log=lambda _: None)
    scheduler.start()
    try:
        assert wait_for(lambda: runs_of(spec))
    finally:
        scheduler.stop()
    assert runs_of(spec)[0] == {"sweep": "directus"}


def test_without_a_period_given_each_schedule_runs_on_its_own_rate(tmp_path):
    spec = handler_spec(tmp_path, "OverdueFunction", EVERY_FIVE_MINUTES, body=RECORD)
    (run,) = Scheduler({spec.name: spec}).runs
    assert run.period == 300


def test_cron_and_disabled_schedules_are_not_run_and_say_why(tmp_path):
    cron = ScheduleEvent("Nightly", "ScheduleV2", "cron(0 3 * * ? *)")
    off = ScheduleEvent("Paused", "ScheduleV2", "rate(1 minute)", enabled=False)
    spec = handler_spec(tmp_path, "SweepFunction", cron, off, body=RECORD)
    lines: list[str] = []
    scheduler = Scheduler({spec.name: spec}, log=lines.append)
    scheduler.start()
    scheduler.stop()
    assert scheduler.runs == []
    assert any(line.startswith("[scheduler] SweepFunction.Nightly is not run: cron(0 3") for line in lines)
    assert "[scheduler] SweepFunction.Paused is not run: disabled in template.yaml" in lines
    assert [run.period for run in Scheduler({spec.name: spec}, every=2).runs] == [2], "a period runs cron too"


def test_a_schedule_expression_naming_an_unknown_parameter_is_not_run_and_says_why(tmp_path):
    schedule = ScheduleEvent("Check", "ScheduleV2", {"Ref": "CheckRate"})
    spec = handler_spec(tmp_path, "OverdueFunction", schedule, body=RECORD)
    resolver = Resolver("local")
    scheduler = Scheduler({spec.name: spec}, resolve=resolver.resolve)
    assert scheduler.runs == []
    assert scheduler.refused == {
        "OverdueFunction.Check": "its schedule expression cannot be resolved locally: "
        "template reference 'CheckRate' has no local value"
    }
    resolver.parameters["CheckRate"] = "rate(2 minutes)"
    assert [run.period for run in Scheduler({spec.name: spec}, resolve=resolver.resolve).runs] == [120]


def test_a_failed_run_is_logged_and_the_next_tick_runs_again(tmp_path):
    body = (
        "OUT.open('a').write('{}\\n')\n"
        "    if len(OUT.read_text().splitlines()) == 1: raise RuntimeError('table unreachable')"
    )
    spec = handler_spec(tmp_path, "OverdueFunction", EVERY_FIVE_MINUTES, body=body)
    lines: list[str] = []
    scheduler = Scheduler({spec.name: spec}, every=0.02, log=lines.append)
    scheduler.start()
    try:
        assert wait_for(lambda: len(runs_of(spec)) >= 2)
    finally:
        scheduler.stop()
    failure = next(line for line in lines if "run 1 failed" in line)
    assert "RuntimeError: table unreachable" in failure


class BlockingFunction:
    """Stands in for a LocalFunction whose runs wait until released; counts runs at once."""

    def __init__(self, spec: FunctionSpec):
        self.spec = spec
        self.release = threading.Event()
        self.active = self.most_at_once = self.calls = 0
        self._lock = threading.Lock()

    def invoke(self, event: dict) -> dict:
        with self._lock:
            self.calls += 1
            self.active += 1
            self.most_at_once = max(self.most_at_once, self.active)
        self.release.wait(20)
        with self._lock:
            self.active -= 1
        return {}


def test_runs_of_one_function_never_overlap_even_from_two_schedules(tmp_path):
    spec = FunctionSpec(name="OverdueFunction", code_dir=tmp_path, handler="app.lambda_handler", timeout=3)
    function = BlockingFunction(spec)
    running = threading.Lock()  # as Scheduler gives every schedule of one function
    runs = [
        ScheduledRun(
            function, ScheduleEvent(name, "ScheduleV2", "rate(1 minute)"), 0.01, running=running, log=lambda _: None
        )
        for name in ("Check", "AlsoCheck")
    ]
    for run in runs:
        run.start()
    try:
        assert wait_for(lambda: function.calls == 1 and sum(run.skipped for run in runs) >= 3)
        function.release.set()
        assert wait_for(lambda: function.calls >= 3)
    finally:
        function.release.set()
        for run in runs:
            run.stop()
    assert function.most_at_once == 1


class SlowFunction(BlockingFunction):
    """Each run takes `seconds` (as a slow overdue check would)."""

    def __init__(self, spec: FunctionSpec, seconds: float):
        super().__init__(spec)
        self.seconds = seconds

    def invoke(self, event: dict) -> dict:
        self.calls += 1
        threading.Event().wait(self.seconds)
        return {}


def test_a_run_that_outlasts_its_period_skips_the_ticks_it_missed(tmp_path):
    spec = FunctionSpec(name="OverdueFunction", code_dir=tmp_path, handler="app.lambda_handler", timeout=3)
    function = SlowFunction(spec, seconds=0.05)
    lines: list[str] = []
    run = ScheduledRun(function, EVERY_FIVE_MINUTES, 0.01, log=lines.append)
    run.start()
    try:
        assert wait_for(lambda: run.skipped >= 1)
    finally:
        run.stop()
    assert any("a run outlasted the 0.01 s period" in line for line in lines)


def test_stopping_waits_for_the_run_in_progress_and_runs_no_more(tmp_path):
    spec = FunctionSpec(name="OverdueFunction", code_dir=tmp_path, handler="app.lambda_handler", timeout=3)
    function = BlockingFunction(spec)
    run = ScheduledRun(function, EVERY_FIVE_MINUTES, 0.01, log=lambda _: None)
    run.start()
    assert wait_for(lambda: function.calls == 1)
    stopper = threading.Thread(target=run.stop)
    stopper.start()
    function.release.set()
    stopper.join(20)
    assert not stopper.is_alive() and not run._thread.is_alive()
    assert (function.calls, function.active) == (1, 0)


# --- options -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "period"),
    [
        (Options(), None),
        (Options(enrichment_sla=10), 5.0),
        (Options(enrichment_sla=1), 1.0),
        (Options(enrichment_sla=10, schedule_every=0.5), 0.5),
        (Options(schedule_every=30), 30),
    ],
)
def test_the_enrichment_sla_runs_schedules_at_half_of_it_unless_a_period_is_given(options, period):
    assert options.schedule_period == period


def test_the_enrichment_sla_reaches_every_function_as_an_environment_variable():
    assert Options(enrichment_sla=30).function_environment == {"ENRICHMENT_SLA_SECONDS": "30"}
    assert Options().function_environment == {}


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--enrichment-sla", "0"], "--enrichment-sla: expected a whole number of seconds ≥ 1, got '0'"),
        (["--enrichment-sla", "2.5"], "--enrichment-sla: expected a whole number of seconds ≥ 1"),
        (["--schedule-every", "0"], "--schedule-every: expected a number of seconds > 0, got '0'"),
        (["--schedule-every", "soon"], "--schedule-every: expected a number of seconds ≥ 0, got 'soon'"),
        (["--clay-enrich-delay", "-1"], "--clay-enrich-delay: expected a number of seconds ≥ 0, got '-1'"),
        (["--reconcile-seconds", "0"], "--reconcile-seconds: expected a whole number of seconds ≥ 1, got '0'"),
    ],
)
def test_malformed_option_values_are_refused_naming_the_option(argv, says, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", *argv])
    assert exit_.value.code == 2
    assert says in capsys.readouterr().err
