"""The local stack talks only to this machine: its sandboxes (Clay, Loops, Slack, Zapier, Directus)
and moto. A setting or secret that points anywhere else (the template's `LOOPS_API_BASE`
https://app.loops.so/api, a real Slack URL in a secrets file, a state file written by an older stack)
would send lead data to a real service, so it is refused, naming what points where, unless the
person asked for it: `--allow-real-services`, or LOCAL_STACK_ALLOW_REAL_SERVICES=1.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from clay_relay.destination_urls import local_host

ALLOW_VARIABLE = "LOCAL_STACK_ALLOW_REAL_SERVICES"
# The settings that say where the functions send (AWS's endpoint, Loops' API); the queue URLs are
# only names for the endpoint's SQS.
OUTBOUND_SETTINGS = ("AWS_ENDPOINT_URL", "LOOPS_API_BASE")
_URL = re.compile(r"""https?://[^\s"'<>\\,\]}]+""", re.IGNORECASE)


class RealServiceRefused(RuntimeError):
    """The local stack would reach a real service that nobody asked for: the message says which."""


def asked_for(flag: bool = False, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the person asked to reach real services: the option, or the variable set to 1/true/yes."""
    return flag or environ.get(ALLOW_VARIABLE, "").strip().lower() in ("1", "true", "yes")


def real_services(values: Mapping[str, str]) -> list[str]:
    """`NAME → host` for each URL in `values` whose host is not this machine."""
    found = []
    for name, value in values.items():
        for url in _URL.findall(value or ""):
            try:
                host = urlsplit(url).hostname or ""
            except ValueError:
                host = ""
            if not local_host(host):
                found.append(f"{name} → {host or url[:60]}")
    return found


def refuse_real_services(values: Mapping[str, str], *, where: str, allowed: bool) -> None:
    """RealServiceRefused when a URL among `values` leaves this machine and nobody asked for that."""
    found = real_services(values)
    if found and not allowed:
        raise RealServiceRefused(
            f"{where} points at real services ({', '.join(found)}): the local stack talks only to its sandboxes "
            f"and moto unless you ask for it with --allow-real-services (or {ALLOW_VARIABLE}=1)"
        )


def outbound_settings(environment: Mapping[str, str]) -> dict[str, str]:
    """The settings of a function environment that say where it sends."""
    return {name: environment[name] for name in OUTBOUND_SETTINGS if environment.get(name)}
