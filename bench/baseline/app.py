"""The baseline the relay's receivers are measured against: the obvious handler written with raw
boto3 and json.loads, making exactly the AWS calls the real handler made for the same request
(bench/handlers.py records them: `BASELINE_CALLS` names the recording), no framework, no models.

Clients are created at import, as such handlers usually do; secrets are read on the first request
and kept, as the relay caches them."""

import json
import os

import boto3

with open(os.environ["BASELINE_CALLS"]) as recording:
    COLD, WARM = json.load(recording)["invocations"]

clients = {name: boto3.client(name) for name in sorted({call["service"] for call in COLD})}
# botocore's method name of an operation (PutItem → put_item) without importing its helpers.
method = {
    call["operation"]: "".join("_" + c.lower() if c.isupper() else c for c in call["operation"]).lstrip("_")
    for call in COLD + WARM
}
first_request = True


def lambda_handler(event: dict, context) -> dict:
    global first_request
    body = json.loads(event["body"])
    calls, first_request = (COLD if first_request else WARM), False
    for call in calls:
        getattr(clients[call["service"]], method[call["operation"]])(**call["params"])
    return {"statusCode": 202, "body": json.dumps({"accepted": True, "keys": len(body)})}
