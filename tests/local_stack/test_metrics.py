"""The local stack's CloudWatch: the functions' EMF lines become metrics in moto under every
dimension set they name, as CloudWatch Logs extracts them; other output passes through untouched."""

from __future__ import annotations

import io
import json

import boto3
from moto import mock_aws

from local_stack.metrics import MetricsExtraction, datums

BLOB = {
    "_aws": {
        "Timestamp": 1_796_000_000_000,
        "CloudWatchMetrics": [
            {
                "Namespace": "ClayRelay/local",
                "Dimensions": [["service", "destination"], ["service", "destination", "target"]],
                "Metrics": [{"Name": "ClayPoolUsedPercent", "Unit": "Percent"}],
            }
        ],
    },
    "service": "clay-relay",
    "destination": "clay",
    "target": "leads",
    "ClayPoolUsedPercent": [12.5],
}


def test_an_emf_blob_is_a_datum_per_value_and_dimension_set():
    [(namespace, data)] = datums(BLOB)
    assert namespace == "ClayRelay/local"
    assert [[d["Name"] for d in datum["Dimensions"]] for datum in data] == [
        ["destination", "service"],
        ["destination", "service", "target"],
    ]
    assert {datum["Value"] for datum in data} == {12.5}


def test_emf_lines_go_to_cloudwatch_and_every_other_line_to_the_output():
    with mock_aws():
        output = io.StringIO()
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        extraction = MetricsExtraction(output, cloudwatch)
        print("[gateway] POST /directus/leads → 202", file=extraction)
        print(json.dumps(BLOB), file=extraction)
        print('{"level":"INFO","message":"delivered"}', file=extraction)
        extraction.flush_metrics()
        assert output.getvalue().splitlines() == [
            "[gateway] POST /directus/leads → 202",
            '{"level":"INFO","message":"delivered"}',
        ]
        names = {(m["MetricName"], len(m["Dimensions"])) for m in cloudwatch.list_metrics()["Metrics"]}
        assert names == {("ClayPoolUsedPercent", 2), ("ClayPoolUsedPercent", 3)}
