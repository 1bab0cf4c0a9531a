"""Which stack the `relay` command works on, and its AWS clients.

A deployed stack is found by name and region: its CloudFormation outputs give the API URL, the
queues and the table. The local stack (`make run`, or `--local`) is found through the state file it
writes when it starts; its AWS is moto's server.
"""

from __future__ import annotations

import json
import tomllib
import urllib.request
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from clay_relay.config import RelayConfig, load_config
from clay_relay.secrets import PLACEHOLDER, SecretUnavailable, parse_tokens
from clay_relay.settings import DEFAULT_CONFIG_PATH
from clay_relay.store import RelayTable

ROOT = Path(__file__).resolve().parent.parent
LOCAL_STATE_FILE = ROOT / ".local-stack" / "state.json"
SAMCONFIG = ROOT / "samconfig.toml"

# The stack outputs the command needs, by the Stack field they fill.
OUTPUTS = {
    "api_url": "ApiUrl",
    "queue_url": "DeliveryQueueUrl",
    "dead_letter_url": "DeadLetterQueueUrl",
    "table_name": "RelayTableName",
}


class StackError(RuntimeError):
    """The stack cannot be found or is not a clay-relay stack: the message says what to do."""


@dataclass
class Stack:
    name: str
    region: str
    api_url: str
    queue_url: str
    dead_letter_url: str
    table_name: str
    secrets_prefix: str
    config_path: Path = DEFAULT_CONFIG_PATH
    local: bool = False
    sandbox_url: str | None = None  # the local stack's sandboxes (Clay, Loops, Directus stand-ins)
    session: boto3.session.Session | None = field(default=None, repr=False)
    endpoint_url: str | None = None  # moto's server for the local stack

    def client(self, service: str):
        session = self.session or boto3.session.Session(region_name=self.region)
        return session.client(
            service,
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            config=Config(retries={"mode": "standard", "max_attempts": 5}),
        )

    sqs = cached_property(lambda self: self.client("sqs"))
    dynamodb = cached_property(lambda self: self.client("dynamodb"))
    secretsmanager = cached_property(lambda self: self.client("secretsmanager"))
    cloudwatch = cached_property(lambda self: self.client("cloudwatch"))

    @cached_property
    def table(self) -> RelayTable:
        """The relay's table, through the relay's own item layout (clay_relay.store)."""
        return RelayTable(self.table_name, client=self.dynamodb)

    @cached_property
    def config(self) -> RelayConfig:
        """relay.json: the same file the layer ships (or the one given with --config)."""
        return load_config(self.config_path)

    def secret_id(self, name: str) -> str:
        return self.secrets_prefix + name

    def read_secret(self, name: str, *, missing: str | None = None) -> str:
        """The secret's value; `missing` (when given) if the secret does not exist."""
        try:
            return self.secretsmanager.get_secret_value(SecretId=self.secret_id(name))["SecretString"]
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if missing is not None and code == "ResourceNotFoundException":
                return missing
            raise StackError(f"cannot read secret {self.secret_id(name)!r}: {code or error}") from None

    def first_token(self, name: str) -> str:
        """The first of the tokens (or keys) a secret holds: the one the relay's senders use."""
        value = self.read_secret(name)
        if not value.strip() or value.startswith(PLACEHOLDER):
            raise StackError(f"secret {self.secret_id(name)!r} is not set yet")
        try:
            return parse_tokens(value, self.secret_id(name))[0]
        except SecretUnavailable as error:
            raise StackError(str(error)) from None

    def write_secret(self, name: str, value: str) -> None:
        """A new version of the secret (created when it does not exist yet)."""
        try:
            try:
                self.secretsmanager.put_secret_value(SecretId=self.secret_id(name), SecretString=value)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                    raise
                self.secretsmanager.create_secret(Name=self.secret_id(name), SecretString=value)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            raise StackError(f"cannot write secret {self.secret_id(name)!r}: {code or error}") from None


def samconfig_defaults(config_env: str = "default", path: Path = SAMCONFIG) -> dict[str, str]:
    """stack_name and region of a samconfig.toml environment (what `sam deploy` used)."""
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    env = document.get(config_env, {})
    found: dict[str, str] = {}
    for section in ("global", "deploy"):
        parameters = env.get(section, {}).get("parameters", {})
        for key in ("stack_name", "region"):
            if key in parameters:
                found[key] = str(parameters[key])
    return found


def deployed_stack(name: str, region: str, *, profile: str | None = None, config_path: Path | None = None) -> Stack:
    session = boto3.session.Session(profile_name=profile, region_name=region)
    try:
        stacks = session.client("cloudformation", region_name=region).describe_stacks(StackName=name)["Stacks"]
    except (BotoCoreError, ClientError) as error:
        raise StackError(f"cannot read stack {name!r} in {region}: {error}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    missing = [key for key in OUTPUTS.values() if key not in outputs]
    if missing:
        raise StackError(f"stack {name!r} in {region} has no output {', '.join(missing)}: is it a clay-relay stack?")
    return Stack(
        name=name,
        region=region,
        secrets_prefix=f"{name}/",
        config_path=config_path or DEFAULT_CONFIG_PATH,
        session=session,
        **{attribute: outputs[key] for attribute, key in OUTPUTS.items()},
    )


def local_stack(state_file: Path = LOCAL_STATE_FILE, *, config_path: Path | None = None) -> Stack:
    try:
        state = json.loads(state_file.read_text())
        environment = state["environment"]
        urllib.request.urlopen(f"{state['gateway']}/_local/health", timeout=3).read()  # noqa: S310  # nosec B310
    except (OSError, ValueError, KeyError):
        raise StackError(f"no local stack is running (no live {state_file}): start one with `make run`") from None
    session = boto3.session.Session(
        aws_access_key_id=environment.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=environment.get("AWS_SECRET_ACCESS_KEY"),
        region_name=environment.get("AWS_DEFAULT_REGION", "us-east-1"),
    )
    return Stack(
        name=state.get("stack_name", "clay-relay-local"),
        region=session.region_name,
        api_url=state["gateway"],
        queue_url=environment["DELIVERY_QUEUE_URL"],
        dead_letter_url=environment["DEAD_LETTER_QUEUE_URL"],
        table_name=environment["RELAY_TABLE"],
        secrets_prefix=environment.get("SECRETS_PREFIX", ""),
        config_path=config_path or Path(environment.get("RELAY_CONFIG_PATH") or DEFAULT_CONFIG_PATH),
        local=True,
        sandbox_url=state.get("sandboxes"),
        session=session,
        endpoint_url=environment["AWS_ENDPOINT_URL"],
    )
