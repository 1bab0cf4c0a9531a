"""The baseline the delivery worker is measured against: the obvious SQS handler written with raw
boto3, json.loads and requests, making exactly the AWS calls the worker made for the same batch and
the same requests out (bench/handlers.py records both: `BASELINE_CALLS` names the recording), no
framework, no models, no retries.

Clients and the session are created at import, as such handlers usually do."""

import json
import os

import boto3
import requests

with open(os.environ["BASELINE_CALLS"]) as recording:
    recorded = json.load(recording)
COLD, WARM = recorded["invocations"]
SENT_COLD, SENT_WARM = recorded["sent"]

clients = {name: boto3.client(name) for name in sorted({call["service"] for call in COLD + WARM})}
# botocore's method name of an operation (PutItem → put_item) without importing its helpers.
method = {
    call["operation"]: "".join("_" + c.lower() if c.isupper() else c for c in call["operation"]).lstrip("_")
    for call in COLD + WARM
}
session = requests.Session()
first_request = True


def lambda_handler(event: dict, context) -> dict:
    global first_request
    jobs = [json.loads(record["body"]) for record in event["Records"]]
    (calls, sent), first_request = ((COLD, SENT_COLD) if first_request else (WARM, SENT_WARM)), False
    for call in calls:
        getattr(clients[call["service"]], method[call["operation"]])(**call["params"])
    for request in sent:
        headers = {k: v for k, v in request["headers"].items() if k.lower() != "content-length"}
        session.request(request["method"], request["url"], data=request["body"], headers=headers, timeout=10)
    return {"batchItemFailures": [], "jobs": len(jobs)}
