"""Scheduled functions, as EventBridge runs them: every function of template.yaml with a `Schedule`
or `ScheduleV2` event is invoked on its `rate(...)`, from a background thread per schedule, with the
event EventBridge Scheduler (or an EventBridge rule) sends when the schedule has no `Input`.

Runs of one function never overlap: a tick that comes while the previous run is still going is
skipped (and said so). `cron(...)` and `at(...)` expressions are not run locally unless a period is
given (`--schedule-every`, `--enrichment-sla`), which replaces every schedule's rate; a function's own
period (`--reconcile-seconds` for the Directus sweep) replaces its schedules' rate and that one.
"""

from __future__ import annotations

import json
import re
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from local_stack.functions import LocalFunction
from local_stack.template import ACCOUNT_ID, REGION, FunctionSpec, ScheduleEvent

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86_400}


class ScheduleRefused(ValueError):
    """A schedule expression the local stack does not run."""


def rate_seconds(expression: object) -> int:
    """`rate(5 minutes)` → 300 (minute(s), hour(s), day(s)); anything else raises ScheduleRefused."""
    text = expression.strip() if isinstance(expression, str) else ""
    found = _RATE.match(text)
    if found and int(found.group(1)) > 0:
        return int(found.group(1)) * _UNIT_SECONDS[found.group(2).removesuffix("s")]
    if text.startswith(("cron(", "at(")):
        raise ScheduleRefused(
            f"{text}: the local stack runs only rate(N minutes|hours|days) schedules; "
            "pass --schedule-every SECONDS to run this function every SECONDS instead"
        )
    raise ScheduleRefused(
        f"{expression!r} is not a schedule expression the local stack understands: "
        "expected rate(N minute(s)|hour(s)|day(s)) with N ≥ 1"
    )


def scheduled_event(schedule: ScheduleEvent, deployed_name: str, at: datetime) -> dict:
    """What the function receives: the schedule's `Input` when it has one, else the notification
    EventBridge Scheduler (ScheduleV2) or an EventBridge rule (Schedule) sends by default."""
    if isinstance(schedule.input, str):
        return json.loads(schedule.input)
    scheduler = schedule.kind == "ScheduleV2"
    resource = (
        f"arn:aws:scheduler:{REGION}:{ACCOUNT_ID}:schedule/default/{deployed_name}"
        if scheduler
        else f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{deployed_name}"
    )
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler" if scheduler else "aws.events",
        "account": ACCOUNT_ID,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [resource],
        "detail": "{}" if scheduler else {},
    }


@dataclass
class ScheduledRun:
    """One schedule of one function, run every `period` seconds until stop()."""

    function: LocalFunction
    schedule: ScheduleEvent
    period: float
    deployed_name: str = ""  # the schedule's (or rule's) name in AWS, for the event's `resources`
    running: threading.Lock = field(default_factory=threading.Lock)  # shared by the function's schedules
    log: Callable[[str], None] = lambda line: print(line, flush=True)
    runs: int = 0  # completed or failed
    skipped: int = 0  # ticks that came while a run of the function was still going
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self.function.spec.name

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"schedule-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, *, wait: bool = True) -> None:
        """No more runs; with `wait`, waits for one in progress (up to the function's timeout)."""
        self._stop.set()
        if wait and self._thread:
            self._thread.join(timeout=self.function.spec.timeout + 5)

    def _loop(self) -> None:
        due = time.monotonic() + self.period
        while not self._stop.wait(max(0.0, due - time.monotonic())):
            self.tick()
            due += self.period
            late = time.monotonic() - due
            if late > 0:  # the run took longer than the period: no burst of runs to catch up
                missed = int(late // self.period) + 1
                due += missed * self.period
                self.skipped += missed
                self.log(f"[scheduler] {self.name}: a run outlasted the {self.period:g} s period; {missed} skipped")

    def tick(self) -> None:
        """One scheduled run, unless the function is still running (then the tick is skipped)."""
        if not self.running.acquire(blocking=False):
            self.skipped += 1
            self.log(f"[scheduler] {self.name}: still running, this {self.schedule.name} tick is skipped")
            return
        try:
            self.runs += 1
            event = scheduled_event(self.schedule, self.deployed_name or self.name, datetime.now(UTC))
            started = time.monotonic()
            try:
                result = self.function.invoke(event)
            except Exception:  # as Lambda reports a failed invocation; the next tick runs again
                self.log(f"[scheduler] {self.name} run {self.runs} failed:\n{traceback.format_exc().rstrip()}")
                return
            elapsed = (time.monotonic() - started) * 1000
            self.log(f"[scheduler] {self.name} run {self.runs} ({elapsed:.0f} ms): {json.dumps(result, default=str)}")
        finally:
            self.running.release()


def _deployed_name(function: str, schedule: ScheduleEvent, stack_name: str, resolve: Callable) -> str:
    """The schedule's Name, else what SAM names it (ScheduleV2) or what CloudFormation names the rule."""
    if schedule.deployed_name is not None:
        try:
            return str(resolve(schedule.deployed_name))
        except KeyError:
            pass
    return f"{function}{schedule.name}" if schedule.kind == "ScheduleV2" else f"{stack_name}-{function}{schedule.name}"


class Scheduler:
    """The scheduled functions of a template. `every` (seconds) replaces every schedule's rate;
    `periods` (function → seconds) a function's own."""

    def __init__(
        self,
        functions: dict[str, FunctionSpec],
        *,
        every: float | None = None,
        periods: dict[str, float] | None = None,
        stack_name: str = "clay-relay-local",
        resolve: Callable[[object], object] = lambda value: value,
        log: Callable[[str], None] = lambda line: print(line, flush=True),
    ):
        self.runs: list[ScheduledRun] = []
        self.refused: dict[str, str] = {}  # "Function.Event" → why it does not run
        self.log = log
        for spec in functions.values():
            instance = LocalFunction(spec)  # one execution environment per function, as Lambda would reuse
            running = threading.Lock()
            for schedule in spec.schedules:
                where = f"{spec.name}.{schedule.name}"
                if not schedule.enabled:
                    self.refused[where] = "disabled in template.yaml"
                    continue
                own = (periods or {}).get(spec.name, every)
                try:
                    period = own if own is not None else float(rate_seconds(resolve(schedule.expression)))
                except ScheduleRefused as refused:
                    self.refused[where] = str(refused)
                    continue
                except KeyError as unknown:  # a !Ref or !Sub the local stack has no value for
                    self.refused[where] = f"its schedule expression cannot be resolved locally: {unknown.args[0]}"
                    continue
                deployed = _deployed_name(spec.name, schedule, stack_name, resolve)
                self.runs.append(ScheduledRun(instance, schedule, period, deployed, running, log))

    def start(self) -> None:
        for where, why in self.refused.items():
            self.log(f"[scheduler] {where} is not run: {why}")
        for run in self.runs:
            self.log(f"[scheduler] {run.name} every {run.period:g} s ({run.schedule.kind} {run.schedule.name})")
            run.start()

    def stop(self) -> None:
        for run in self.runs:
            run.stop(wait=False)
        for run in self.runs:
            run.stop()
