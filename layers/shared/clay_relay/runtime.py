"""The runtime of a relay function: everything that lives from one invocation to the next, built
once per execution environment (at the first invocation, a cold start) and passed to what needs it.

It holds the validated settings, the configuration (relay.json), the AWS clients, the outbound HTTP
session, the secrets cache, the per-destination pacer and circuit breaker, the Clay webhook URLs
this instance saw used up, and the Clay budgets it read (kept `CLAY_BUDGET_CACHE_SECONDS`). Nothing
else in the layer keeps state between invocations, so a test starts from a clean slate with
`use_runtime(None)` (or hands in a runtime it built).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from clay_relay.aws_clients import AwsClients
from clay_relay.config import RelayConfig, load_config
from clay_relay.pacing import CircuitBreaker, Pacer
from clay_relay.secrets import Secrets
from clay_relay.settings import Settings

if TYPE_CHECKING:
    from typing import Any

    import requests

    from clay_relay.delivery_queue import DeliveryQueue
    from clay_relay.store import RelayTable
    from clay_relay.tracing import TracingBackend


@dataclass
class Runtime:
    settings: Settings
    aws: AwsClients = field(default_factory=AwsClients)
    pacer: Pacer = field(default_factory=Pacer)
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    clay_used_up: set[str] = field(default_factory=set)  # webhook ids this instance saw used up
    # Clay targets' budgets as `relay clay budget` stored them: target → (when read, the item).
    clay_budgets: dict[str, tuple[float, dict[str, Any] | None]] = field(default_factory=dict)
    _config: RelayConfig | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_environment(cls) -> Runtime:
        """Validates the function's environment (SettingsError names every bad variable)."""
        return cls(Settings.from_environment())

    @cached_property
    def secrets(self) -> Secrets:
        return Secrets(
            lambda: self.aws.client("secretsmanager"),
            prefix=self.settings.secrets_prefix,
            max_age_seconds=self.settings.secrets_cache_seconds,
        )

    @property
    def config(self) -> RelayConfig:
        """relay.json, read once; a broken file raises ConfigError on every use until it is fixed."""
        if self._config is None:
            self._config = load_config(self.settings.config_path)
        return self._config

    @cached_property
    def table(self) -> RelayTable:
        from clay_relay.store import RelayTable

        return RelayTable(self.settings.table_name, clients=self.aws)

    @cached_property
    def queue(self) -> DeliveryQueue:
        from clay_relay.delivery_queue import DeliveryQueue

        return DeliveryQueue(self.settings.delivery_queue_url, self.settings.dead_letter_queue_url, clients=self.aws)

    @cached_property
    def tracing(self) -> TracingBackend:
        """What the settings' tracing mode does in the functions (clay_relay.tracing)."""
        from clay_relay.tracing import backend_for

        return backend_for(self.settings.tracing)

    @cached_property
    def http(self) -> requests.Session:
        """The outbound session. requests (and, tracing with the X-Ray SDK, its patch) load on the
        first request out: the receivers, which only map payloads, never pay for them at cold start."""
        from clay_relay.outbound import new_session

        return new_session()


_current: Runtime | None = None
_lock = threading.Lock()


def get_runtime() -> Runtime:
    """This execution environment's runtime, built on first use."""
    global _current
    if _current is None:
        with _lock:
            if _current is None:
                _current = Runtime.from_environment()
    return _current


def use_runtime(runtime: Runtime | None) -> None:
    """Make `runtime` the current one; None builds a fresh one (from the environment) on next use."""
    global _current
    with _lock:
        _current = runtime
