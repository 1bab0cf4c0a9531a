"""Expand template.yaml's SAM resources with aws-sam-translator, then lint the result with cfn-lint.

cfn-lint alone does not check what SAM generates (roles, permissions, event source mappings);
this does. Runs in the tools virtualenv (.tools/). Exit code 0 when clean.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / ".aws-sam" / "translated-template.json"


class StaticManagedPolicies:
    """The AWS managed policies SAM may attach, so translation needs no AWS credentials."""

    def load(self) -> dict[str, str]:
        names = [
            "AWSLambdaBasicExecutionRole",
            "AWSXrayWriteOnlyAccess",
            "AWSLambdaSQSQueueExecutionRole",
            "AWSXRayDaemonWriteAccess",
        ]
        return {name: f"arn:aws:iam::aws:policy/service-role/{name}" for name in names}


def translate() -> dict:
    """template.yaml as the CloudFormation that SAM deploys (no AWS credentials needed)."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    template = yaml_parse((ROOT / "template.yaml").read_text())
    # Local code folders become placeholder S3 locations, as `sam package` would make them.
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str):
                properties[key] = f"s3://clay-relay-artifacts/{properties[key].strip('/')}.zip"
    return transform(template, {}, StaticManagedPolicies())


def main() -> int:
    translated = translate()
    if "--print" in sys.argv[1:]:  # for tests (tests/infrastructure/test_alarms.py): the translation only, on stdout
        print(json.dumps(translated))
        return 0
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(translated, indent=1))
    kinds = sorted({r["Type"] for r in translated["Resources"].values()})
    print(f"translated {len(translated['Resources'])} resources: {', '.join(kinds)}")
    result = subprocess.run([str(Path(sys.executable).with_name("cfn-lint")), str(OUT)], check=False)
    print("cfn-lint on the translated template:", "clean" if result.returncode == 0 else "FAILED")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
