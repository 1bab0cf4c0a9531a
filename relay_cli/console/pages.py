"""The console's pages, rendered on the server (Jinja2, autoescaped) from `reports`: each function
takes the request's parameters and answers (status, HTML). Forms are plain HTML forms, so every page
works with JavaScript off; only the overview's refresh needs it."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from relay_cli.console import charts, reports
from relay_cli.output import duration, iso
from relay_cli.parked import state_text
from relay_cli.stack import Stack
from relay_cli.status import flows

TEMPLATES = Path(__file__).parent / "templates"
_environment = Environment(
    loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True
)
_environment.globals.update(charts=charts, duration=duration, iso=iso, state_text=state_text)


def _pretty(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False, default=str)


_environment.globals["pretty"] = _pretty


@dataclass(frozen=True)
class Page:
    status: int
    html: str


@dataclass
class Console:
    """What every page needs: the stack, the CSRF token of this start, the overview's refresh."""

    stack: Stack
    csrf: str
    refresh: int = 30

    def render(self, template: str, status: int = 200, **values: object) -> Page:
        values = {"stack": self.stack, "csrf": self.csrf, "refresh": 0, **values}
        return Page(status, _environment.get_template(template).render(**values))

    def message(self, status: int, heading: str, message: str) -> Page:
        return self.render("message.html", status, heading=heading, message=message, page="")

    def overview(self) -> Page:
        report = reports.overview(self.stack)
        configured: dict[str, list[str]] = {}
        for flow, destination in flows(self.stack.config):
            configured.setdefault(destination, []).append(flow)
        now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        return self.render(
            "overview.html", page="overview", refresh=self.refresh, now=now, configured=configured, **report
        )

    def leads(self, query: str, reveal: bool) -> Page:
        if not query:
            return self.render("leads.html", page="leads", query="", reveal=reveal, trace=None, problem=None)
        try:
            trace = reports.lead(self.stack, query, reveal)
        except reports.BadRequest as error:
            return self._lead_problem(400, query, reveal, str(error))
        except reports.NoSuchLead as error:
            return self._lead_problem(404, query, reveal, str(error))
        return self.render("leads.html", page="leads", query=query, reveal=reveal, trace=trace, problem=None)

    def _lead_problem(self, status: int, query: str, reveal: bool, problem: str) -> Page:
        values = {"page": "leads", "query": query, "reveal": reveal, "trace": None, "problem": problem}
        return self.render("leads.html", status, **values)

    def dead_letters(self, reveal: str) -> Page:
        revealed: set[str] | bool = True if reveal == "all" else ({reveal} if reveal else set())
        found = reports.letters(self.stack, revealed)
        return self.render("dead_letters.html", page="dead-letters", reveal_all=revealed is True, **found)

    def replay(self, ids: list[str], every: bool, action: str) -> Page:
        if action not in ("preview", "replay"):
            raise reports.BadRequest("action must be preview or replay")
        report, letters = reports.replay(self.stack, ids, every=every, dry_run=action == "preview")
        status = 200 if not (report["failed"] or report["sent_but_not_removed"]) else 502
        return self.render("replay.html", status, page="dead-letters", report=report, letters=letters, every=every)
