"""AWS for the local stack: moto's server, and the template's tables, queues and secrets in it.

Works the same against moto's in-process mock (tests) and its server (the running stack): it only
uses boto3 clients built from the environment (`AWS_ENDPOINT_URL` points them at the server).
"""

from __future__ import annotations

import json
import secrets as random_secrets
import threading
from dataclasses import dataclass
from pathlib import Path

import boto3

from local_stack.template import ROOT, Resolver, Template

LOCAL_ENV = ROOT / "local.env"

FAKE_CREDENTIALS = {  # moto accepts any; these are no secret  # nosec B105
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def read_local_env(path: Path = LOCAL_ENV, *, sandbox_url: str = "http://127.0.0.1:3001") -> dict[str, str]:
    """KEY=VALUE lines (# comments, blank lines ignored); `{sandbox}` becomes the sandboxes' URL."""
    values = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{path}:{number}: expected KEY=VALUE")
        values[key.strip()] = value.strip().replace("{sandbox}", sandbox_url)
    return values


def secret_name_for(key: str) -> str:
    """local.env's `CLAY_WEBHOOKS_LEADS` is the secret relay.json calls `clay-webhooks-leads`."""
    return key.lower().replace("_", "-")


@dataclass
class Provisioned:
    resolver: Resolver
    environment: dict[str, str]
    secrets: dict[str, str]  # relay.json secret name → value

    def ref(self, logical_id: str) -> str:
        return self.resolver.refs[logical_id]


_WRITES = ("put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items")
_write_lock = threading.RLock()


def atomic_dynamodb_writes() -> None:
    """Makes moto's DynamoDB writes atomic, as DynamoDB's are: moto checks a condition and writes in
    two steps, so two workers' conditional updates of one item (a Clay URL's quota) could both pass
    at once and send past the limit. One lock for every write of the process; idempotent."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in _WRITES:
        method = getattr(DynamoDBBackend, name)
        if getattr(method, "_atomic", False):
            continue

        def atomic(self: object, *args: object, __method=method, **kwargs: object) -> object:
            with _write_lock:
                return __method(self, *args, **kwargs)

        atomic._atomic = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, atomic)


def provision(
    template: Template, local_secrets: dict[str, str], *, visibility_timeout: int | None = None
) -> Provisioned:
    """Create the template's DynamoDB tables, SQS queues and secrets; return the resolved env.
    `visibility_timeout` replaces the queues' own (a killed worker's batch then returns sooner)."""
    atomic_dynamodb_writes()
    stack = template.stack_name
    resolver = Resolver(stack, parameters=template.parameter_defaults())
    dynamodb, sqs, secretsmanager = (boto3.client(s) for s in ("dynamodb", "sqs", "secretsmanager"))

    for logical, resource in template.of_type("AWS::DynamoDB::Table").items():
        props = resource["Properties"]
        name = f"{stack}-{logical}"
        dynamodb.create_table(
            TableName=name,
            KeySchema=props["KeySchema"],
            AttributeDefinitions=props["AttributeDefinitions"],
            BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
            **(
                {"GlobalSecondaryIndexes": props["GlobalSecondaryIndexes"]} if "GlobalSecondaryIndexes" in props else {}
            ),
        )
        if ttl := props.get("TimeToLiveSpecification"):
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        resolver.refs[logical] = name
        resolver.attributes[f"{logical}.Arn"] = f"arn:aws:dynamodb:us-east-1:123456789012:table/{name}"

    queues = template.of_type("AWS::SQS::Queue")
    for logical, resource in queues.items():
        props = resource["Properties"]
        name = resolver.resolve(props.get("QueueName", f"{stack}-{logical}"))
        attributes = {"VisibilityTimeout": str(visibility_timeout or props.get("VisibilityTimeout", 30))}
        if "MessageRetentionPeriod" in props:
            attributes["MessageRetentionPeriod"] = str(props["MessageRetentionPeriod"])
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        resolver.refs[logical] = url
        resolver.attributes[f"{logical}.Arn"] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        resolver.attributes[f"{logical}.QueueName"] = name
    for logical, resource in queues.items():
        if redrive := resource["Properties"].get("RedrivePolicy"):
            sqs.set_queue_attributes(
                QueueUrl=resolver.refs[logical],
                Attributes={"RedrivePolicy": json.dumps(resolver.resolve(redrive))},
            )

    environment = template.function_environment(resolver)
    prefix = environment.get("SECRETS_PREFIX", "")
    values = {secret_name_for(key): value for key, value in local_secrets.items()}
    for logical, resource in template.of_type("AWS::SecretsManager::Secret").items():
        props = resource["Properties"]
        full_name = resolver.resolve(props["Name"])
        short = full_name.removeprefix(prefix)
        if short not in values:
            values[short] = props.get("SecretString") or random_secrets.token_urlsafe(30)
        resolver.refs[logical] = full_name
    for short, value in values.items():
        secretsmanager.create_secret(Name=prefix + short, SecretString=value)
    return Provisioned(resolver=resolver, environment=environment, secrets=values)
