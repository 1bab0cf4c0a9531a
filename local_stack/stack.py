"""Starts and stops the whole local stack: moto's server, the template's resources, the sandboxes,
the gateway, the queue pollers and the scheduled functions. Used by `make run`, `make invoke` and
the end-to-end tests."""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from moto.server import ThreadedMotoServer

from clay_relay.config import ConfigError, RelayConfig, load_config
from clay_relay.directus_items import api_secret
from clay_relay.secrets import SecretUnavailable, parse_tokens
from clay_relay.settings import DEFAULT_CONFIG_PATH
from local_stack.aws import FAKE_CREDENTIALS, LOCAL_ENV, Provisioned, provision, read_local_env, secret_name_for
from local_stack.functions import LocalFunction
from local_stack.gateway import Gateway
from local_stack.metrics import MetricsExtraction
from local_stack.poller import QueuePoller
from local_stack.real_services import asked_for, outbound_settings, refuse_real_services
from local_stack.sandboxes import ClaySandbox, HttpApiColumn, Sandboxes
from local_stack.sandboxes.clay_column import token_header
from local_stack.scheduler import Scheduler
from local_stack.template import ROOT, Template, load_template

STATE_FILE = ROOT / ".local-stack" / "state.json"
RECONCILE_FUNCTION = "DirectusReconcileFunction"


@dataclass
class Options:
    host: str = "127.0.0.1"
    port: int = 3000
    sandbox_port: int = 3001
    moto_port: int = 5001
    stack_name: str = "clay-relay-local"
    workers: int = 2
    config_path: Path | None = None
    secrets_file: Path = LOCAL_ENV
    clay_limit: int = 50_000
    clay_over_limit: str = "drop"
    clay_rate: float = 10.0
    clay_dedupe_column: str | None = "relay_event_id"
    clay_enrich: bool = False  # the sandbox Clay table calls /clay/enriched back for each row (HTTP API column)
    clay_enrich_delay: float = 3.0  # seconds between a row and its enrichment call
    enrichment_sla: int | None = None  # seconds: ENRICHMENT_SLA_SECONDS of every function, and the schedules' period
    schedule_every: float | None = None  # seconds between runs of every scheduled function (default: their rate)
    reconcile_seconds: int | None = None  # seconds between Directus sweeps (RECONCILE_EVERY_SECONDS, and the settle)
    queue_visibility_timeout: int | None = None  # default: the template's
    log_level: str = "INFO"
    environment: dict[str, str] = field(default_factory=dict)  # extra function environment
    state_file: Path | None = STATE_FILE  # where `invoke` and `replay` find the running stack
    allow_real_services: bool = False  # settings or secrets may point beyond this machine (see real_services)

    @property
    def schedule_period(self) -> float | None:
        """Seconds between runs of the scheduled functions, when not their template's rate."""
        if self.schedule_every is not None:
            return self.schedule_every
        if self.enrichment_sla is not None:
            return max(1.0, self.enrichment_sla / 2)
        return None

    @property
    def schedule_periods(self) -> dict[str, float]:
        """Functions run on a period of their own (the Directus sweep's `--reconcile-seconds`)."""
        return {RECONCILE_FUNCTION: float(self.reconcile_seconds)} if self.reconcile_seconds else {}

    @property
    def function_environment(self) -> dict[str, str]:
        """Environment the options give every function (after the template's and `environment`)."""
        environment = {"ENRICHMENT_SLA_SECONDS": str(self.enrichment_sla)} if self.enrichment_sla is not None else {}
        if self.reconcile_seconds:  # every source swept at each run, changes looked at once that old
            environment["RECONCILE_EVERY_SECONDS"] = str(self.reconcile_seconds)
            environment["RECONCILE_SETTLE_SECONDS"] = str(min(self.reconcile_seconds, 3600))
        return environment


class StartupError(RuntimeError):
    """The local stack cannot start as configured; the message says what to fix."""


def token_secrets(config: RelayConfig) -> dict[str, str]:
    """The secrets the relay reads tokens or keys from (a list each), with what reads them."""
    uses = {
        source.tokens_secret: f"tokens of the Directus source {name!r}"
        for name, source in config.directus_sources.items()
    }
    if config.clay_callback:
        uses.setdefault(config.clay_callback.tokens_secret, "tokens of /clay/enriched")
        if config.clay_callback.hmac_secret:
            uses.setdefault(config.clay_callback.hmac_secret, "HMAC keys of /clay/enriched")
    if config.loops_forwarding:
        uses.setdefault(config.loops_forwarding.tokens_secret, "tokens of /loops/contacts and /loops/events")
    if config.loops_webhook:
        uses.setdefault(config.loops_webhook.signing_secret, "signing secrets of /loops/webhook")
    return uses


def first_token(value: str | None, name: str) -> str:
    """The first token a secret's value holds (what a sender uses); "" for none."""
    try:
        return parse_tokens(value or "", name)[0]
    except SecretUnavailable:
        return ""


@dataclass
class Urls:
    gateway: str
    sandboxes: str
    moto: str


class LocalStack:
    def __init__(self, options: Options | None = None):
        self.options = options or Options()
        self.sandboxes = Sandboxes(
            ClaySandbox(
                submission_limit=self.options.clay_limit,
                over_limit=self.options.clay_over_limit,
                rate=self.options.clay_rate,
                dedupe_column=self.options.clay_dedupe_column,
            )
        )
        if self.options.clay_enrich:
            self.sandboxes.clay.column = HttpApiColumn(self.sandboxes.deliveries, delay=self.options.clay_enrich_delay)
        self.pollers: list[QueuePoller] = []
        self.scheduler: Scheduler | None = None
        self.gateway: Gateway | None = None
        self.moto: ThreadedMotoServer | None = None
        self.provisioned: Provisioned | None = None
        self.environment: dict[str, str] = {}  # the functions' environment (also what `invoke` reuses)
        self.urls: Urls | None = None
        self.metrics: MetricsExtraction | None = None  # the functions' EMF lines into moto's CloudWatch
        self.clay_limited: list[str] = []  # Clay targets whose submission_limit --clay-limit lowered
        self._sandbox_url = ""

    @property
    def config_path(self) -> Path:
        return Path(self.options.config_path or os.environ.get("RELAY_CONFIG_PATH") or DEFAULT_CONFIG_PATH)

    def check_configuration(self) -> None:
        """Before anything starts: relay.json loads, and each tokens secret local.env gives holds a
        token (a value such as ",,," would make every request a 401, and the Directus flow tokenless)."""
        try:
            config = load_config(self.config_path)
            local_secrets = read_local_env(self.options.secrets_file)
        except (ConfigError, OSError, ValueError) as error:
            raise StartupError(str(error)) from None
        uses = token_secrets(config)
        for key, value in local_secrets.items():
            name = secret_name_for(key)
            if name not in uses:
                continue
            try:
                parse_tokens(value, name)
            except SecretUnavailable as error:
                raise StartupError(f"{self.options.secrets_file}: {key} ({uses[name]}): {error}") from None

    def start_aws(self) -> str:
        """moto's server, with the process environment pointing every AWS client at it."""
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        o = self.options
        if o.moto_port:  # moto's server reports a taken port only in its own thread
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((o.host, o.moto_port))
        self.moto = ThreadedMotoServer(ip_address=o.host, port=o.moto_port, verbose=False)
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        moto_url = f"http://{host}:{port}"
        os.environ.update(FAKE_CREDENTIALS)
        os.environ["AWS_ENDPOINT_URL"] = moto_url
        return moto_url

    def provision(self, sandbox_url: str) -> Provisioned:
        """The template's resources in moto and the functions' environment, pointing at the sandboxes
        (RealServiceRefused when a setting or secret points at a real service nobody asked for)."""
        o = self.options
        template = Template(load_template(), o.stack_name)
        config_path = self.clay_limited_config() or (Path(o.config_path).resolve() if o.config_path else None)
        self._sandbox_url = sandbox_url
        self.provisioned = provision(
            template,
            read_local_env(o.secrets_file, sandbox_url=sandbox_url),
            visibility_timeout=o.queue_visibility_timeout,
        )
        self.environment = {
            **self.provisioned.environment,
            "POWERTOOLS_TRACE_DISABLED": "1",
            # Metrics on: their EMF lines go to moto's CloudWatch (local_stack.metrics), not the output.
            "POWERTOOLS_METRICS_DISABLED": "0",
            "POWERTOOLS_LOG_LEVEL": o.log_level,
            **({"RELAY_CONFIG_PATH": str(config_path)} if config_path else {}),
            "LOOPS_API_BASE": f"{sandbox_url}/loops/api",  # never the template's real Loops
            "ALLOW_LOCAL_DESTINATIONS": "true",  # the sandboxes are on this machine
            # Every local worker shares this process's pacer (on Lambda each instance has its own and
            # takes 1/WORKER_MAX_CONCURRENCY of each destination's rate): here one pacer holds the whole rate.
            "WORKER_MAX_CONCURRENCY": "1",
            **o.environment,
            **o.function_environment,
        }
        refuse_real_services(
            {**outbound_settings({**os.environ, **self.environment}), **self.provisioned.secrets},
            where=f"the local stack's settings or secrets ({o.secrets_file.name})",
            allowed=asked_for(o.allow_real_services),
        )
        os.environ.update(self.environment)
        # The layer was imported before this environment existed (on Lambda it is there first): its
        # metrics take their namespace and service now, as a new execution environment would.
        from clay_relay.observability import metrics

        metrics.namespace = self.environment.get("POWERTOOLS_METRICS_NAMESPACE")
        metrics.service = self.environment.get("POWERTOOLS_SERVICE_NAME")
        self._configure_sandboxes()
        return self.provisioned

    def clay_limited_config(self) -> Path | None:
        """relay.json as this stack runs it when `--clay-limit` is below a target's submission_limit:
        that target's limit lowered to it, so that the relay's own count matches the sandbox Clay's
        and the pool rotates (written beside the state file). None when nothing needs lowering."""
        limit = self.options.clay_limit
        config = json.loads(self.config_path.read_text())
        targets = config.get("clay_targets") or {}
        lowered = sorted(name for name, target in targets.items() if target.get("submission_limit", 50_000) > limit)
        if not lowered:
            return None
        for name in lowered:
            targets[name]["submission_limit"] = limit
        folder = self.options.state_file.parent if self.options.state_file else Path(tempfile.mkdtemp())
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"relay.clay-limit-{limit}.json"
        path.write_text(json.dumps(config, indent=2))
        self.clay_limited = lowered
        return path.resolve()

    def _configure_sandboxes(self) -> None:
        """The sandboxes accept the credentials the local secrets give the relay."""
        secrets = self.provisioned.secrets
        self.sandboxes.loops.api_key = secrets.get("loops-api-key")
        self.sandboxes.loops.webhook_secret = (
            first_token(secrets.get("loops-webhook-secret"), "loops-webhook-secret") or None
        )
        try:
            self.sandboxes.directus.token = json.loads(secrets.get("directus-api", "{}")).get("token")
        except ValueError:
            self.sandboxes.directus.token = None
        self._register_clay_tokens()

    def real_directus(self) -> str | None:
        """The Directus the relay reads and writes when it is not the sandbox: the URL the secrets file
        gives the Directus API secret (full rows, the sweep and the write-back all use it)."""
        name = api_secret(load_config(self.config_path))
        try:
            url = str(json.loads(self.provisioned.secrets.get(name) or "{}").get("url") or "")
        except (ValueError, AttributeError):
            return None
        sandbox = f"{self.urls.sandboxes if self.urls else self._sandbox_url}/directus"
        return url.rstrip("/") if url and url.rstrip("/") != sandbox else None

    def connect_directus_flows(self, gateway_url: str) -> None:
        """Like a Directus admin adding a Flow per source: the sandbox Directus calls the relay
        when an item of the source's collection is created or updated. A real Directus (the secrets
        file points the relay at it) gets its Flows from you: what to paste is printed."""
        config = load_config(self.config_path)
        real = self.real_directus()
        for name, source in config.directus_sources.items():
            token = first_token(self.provisioned.secrets.get(source.tokens_secret), source.tokens_secret)
            if real:
                print(
                    f"[directus] the relay reads and writes the Directus at {real}: give its collection "
                    f"{source.collection or '<any>'!r} a Flow (event hook on items.create and items.update, then "
                    f"Webhook / Request URL: POST {gateway_url}/directus/{name}, body {{{{$trigger}}}}, header "
                    f"Authorization: Bearer {token})",
                    flush=True,
                )
            elif source.collection and source.collection not in self.sandboxes.directus.flows:
                self.sandboxes.directus.flows[source.collection] = (f"{gateway_url}/directus/{name}", token)

    def connect_clay_column(self, gateway_url: str) -> None:
        """Like a Clay table's owner adding an HTTP API column: it calls the relay's /clay/enriched
        with the token header relay.json's `clay_callback` expects (the first token of its secret)."""
        column = self.sandboxes.clay.column
        if column is None:
            return
        config = load_config(Path(os.environ.get("RELAY_CONFIG_PATH", DEFAULT_CONFIG_PATH)))
        column.url = f"{gateway_url}/clay/enriched"
        if config.clay_callback is None:
            print(
                "[clay] relay.json has no clay_callback: /clay/enriched answers 404 to every enrichment call",
                flush=True,
            )
            return
        tokens = self.provisioned.secrets.get(config.clay_callback.tokens_secret, "")
        token = tokens.replace(",", " ").split()[0] if tokens.strip() else ""
        column.headers = token_header(config.clay_callback.token_header, token)

    def _register_clay_tokens(self) -> None:
        """The Clay sandbox expects, per webhook URL, the token the pool secrets give it."""
        for name, value in self.provisioned.secrets.items():
            if not name.startswith("clay-webhooks-"):
                continue
            for entry in json.loads(value):
                entry = {"url": entry} if isinstance(entry, str) else entry
                if entry.get("token"):
                    self.sandboxes.clay.tokens[entry["url"].rstrip("/").rsplit("/", 1)[-1]] = entry["token"]

    def start(self) -> Urls:
        """Starts everything; StartupError (nothing started) when the configuration cannot work."""
        o = self.options
        self.check_configuration()
        moto_url = self.start_aws()
        sandbox_url = self.sandboxes.start(o.host, o.sandbox_port)
        self.provision(sandbox_url)
        self.metrics = MetricsExtraction(sys.stdout).start()
        sys.stdout = self.metrics
        template = Template(load_template(), o.stack_name)
        functions = template.functions()
        http_functions = {name: LocalFunction(spec) for name, spec in functions.items() if spec.routes}
        routes = [route for spec in functions.values() for route in spec.routes]
        for spec in functions.values():
            for source in spec.sqs_sources:
                queue = self.provisioned.resolver.resolve(source["Queue"])  # the queue's ARN
                logical = next(k for k, v in self.provisioned.resolver.attributes.items() if v == queue)
                url = self.provisioned.ref(logical.split(".")[0])
                for _ in range(max(1, o.workers)):
                    poller = QueuePoller(
                        LocalFunction(spec),
                        url,
                        queue,
                        int(source.get("BatchSize", 10)),
                        crash_next=lambda: self.sandboxes.active_fault("worker"),
                    )
                    poller.start()
                    self.pollers.append(poller)
        self.gateway = Gateway(routes, http_functions, self.sandboxes)
        gateway_url = self.gateway.start(o.host, o.port)
        self.connect_directus_flows(gateway_url)
        self.connect_clay_column(gateway_url)
        self.sandboxes.loops.webhook_url = f"{gateway_url}/loops/webhook"
        self.scheduler = Scheduler(
            functions,
            every=o.schedule_period,
            periods=o.schedule_periods,
            stack_name=o.stack_name,
            resolve=self.provisioned.resolver.resolve,
        )
        self.urls = Urls(gateway=gateway_url, sandboxes=sandbox_url, moto=moto_url)
        if o.state_file:
            self._write_state(moto_url)
        return self.urls

    def start_schedules(self) -> None:
        """Run the template's scheduled functions from now on (after start(); `make run` calls it
        once it has said the stack is ready, so their log lines come after that line)."""
        if self.scheduler:
            self.scheduler.start()

    def _write_state(self, moto_url: str) -> None:
        state_file = self.options.state_file
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text(
            json.dumps(
                {
                    **self.urls.__dict__,
                    "pid": os.getpid(),
                    "stack_name": self.options.stack_name,
                    # What the functions run with (the sandboxes' Loops, never the template's real one).
                    "environment": {**self.environment, "AWS_ENDPOINT_URL": moto_url, **FAKE_CREDENTIALS},
                }
            )
        )

    def stop(self) -> None:
        if self.scheduler:
            self.scheduler.stop()
        if self.sandboxes.clay.column:
            self.sandboxes.clay.column.stop()  # before the gateway: no call is left to fail
        for poller in self.pollers:
            poller.stop()
        if self.gateway:
            self.gateway.stop()
        self.sandboxes.stop()
        if self.metrics:
            if sys.stdout is self.metrics:
                sys.stdout = self.metrics.output
            self.metrics.stop()
        if self.moto:
            self.moto.stop()
        state_file = self.options.state_file
        if state_file and state_file.exists():
            try:
                if json.loads(state_file.read_text()).get("pid") == os.getpid():
                    state_file.unlink()
            except (OSError, ValueError):
                pass
