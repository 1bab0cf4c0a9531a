"""pip-audit over the layer's and the development requirements, against PyPI's advisories.

pip-audit asks PyPI for each pinned release (`/pypi/<name>/<version>/json`). Where only PyPI's
project pages are reachable (`/pypi/<name>/json`, as through this project's package proxy), it
cannot audit anything and still says "No known vulnerabilities found". So each package it could
not audit is looked up on its project page, whose advisories are those of the latest release: a
pin at the latest release is audited that way, an older pin is named as not audited. Exits 1 when
any advisory applies to a pinned release, else 0 (printing what could not be audited).

Runs in the tools virtualenv (.tools/), where pip-audit is installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The layer's file is its complete pinned set (installed with --no-deps); the development one
# names only what it needs, so its dependencies are resolved first.
REQUIREMENTS = [("layers/shared/requirements.txt", ["--no-deps", "--disable-pip"]), ("requirements-dev.txt", [])]
PROJECT_PAGE = "https://pypi.org/pypi/{name}/json"


def pip_audit(requirements: str, options: list[str]) -> list[dict]:
    """pip-audit's findings for a requirements file: [{"name", "version", "vulns" | "skip_reason"}]."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        command = [
            str(Path(sys.executable).with_name("pip-audit")),
            "--vulnerability-service",
            "pypi",
            "--requirement",
            str(ROOT / requirements),
            *options,
            "--format",
            "json",
            "--output",
            str(report),
            "--progress-spinner",
            "off",
        ]
        finished = subprocess.run(command, check=False, capture_output=True, text=True)
        if finished.returncode not in (0, 1):  # 1: vulnerabilities found (reported below)
            raise SystemExit(f"pip-audit failed on {requirements}:\n{finished.stderr}")
        return json.loads(report.read_text())["dependencies"]


def latest_release_advisories(name: str, version: str) -> list[dict] | None:
    """Advisories of `name` at `version` from its project page, or None when that page speaks of
    another (newer) release."""
    with urllib.request.urlopen(PROJECT_PAGE.format(name=name), timeout=30) as answer:  # noqa: S310 - fixed https URL
        page = json.load(answer)
    if page["info"]["version"] != version:
        return None
    return [advisory for advisory in page.get("vulnerabilities", []) if not advisory.get("withdrawn")]


def main() -> int:
    releases: dict[tuple[str, str], list[str] | None] = {}  # (name, version) -> pip-audit's advisory ids, or None
    for requirements, options in REQUIREMENTS:
        for dependency in pip_audit(requirements, options):
            name, version = dependency["name"], dependency.get("version")
            if "skip_reason" in dependency:
                version = version or dependency["skip_reason"].rsplit("(", 1)[-1].rstrip(")")
                releases.setdefault((name, version), None)
            else:
                releases[(name, version)] = [advisory["id"] for advisory in dependency.get("vulns", [])]
    vulnerable: dict[str, list[str]] = {}
    not_audited: list[str] = []
    for (name, version), ids in sorted(releases.items()):
        if ids is None:  # pip-audit could not ask PyPI about this release
            advisories = latest_release_advisories(name, version)
            if advisories is None:
                not_audited.append(f"{name}=={version}")
                continue
            ids = [advisory["id"] for advisory in advisories]
        if ids:
            vulnerable[f"{name}=={version}"] = ids
    audited = len(releases) - len(not_audited)
    print(f"pip-audit (PyPI's advisories): {audited} pinned releases audited, {len(vulnerable)} with advisories")
    for release, ids in vulnerable.items():
        print(f"  VULNERABLE {release}: {', '.join(ids)}")
    if not_audited:
        print(
            "  not audited (PyPI's per-release pages are not reachable from here, and these pins are older than "
            "the release their project page describes): " + ", ".join(not_audited)
        )
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main())
