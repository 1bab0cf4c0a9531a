"""The console's charts are SVG drawn on the server: a bar per minute with its figure as text, a bar
per Clay webhook URL against its limit, and no way for a name to inject markup."""

from __future__ import annotations

import re

from relay_cli.console.charts import deliveries_per_minute, quota_used


def test_deliveries_per_minute_draw_a_bar_per_busy_minute_titled_with_its_count():
    svg = str(deliveries_per_minute("loops", [0, 3, 0, 6], "2026-12-01T10:00"))
    assert svg.startswith("<svg") and 'role="img"' in svg
    assert re.findall(r"<title>(\d+) delivered, minute (\d) of 4</title>", svg) == [
        ("0", "1"),
        ("3", "2"),
        ("0", "3"),
        ("6", "4"),
    ]
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([\d.]+)"', svg)]
    assert heights[0] == 0 and heights[3] > heights[1] > 0
    assert "loops: 9 delivered in the last 4 minutes" in svg


def test_an_hour_without_deliveries_is_a_flat_line():
    svg = str(deliveries_per_minute("slack", [0.0] * 60, "2026-12-01T10:00"))
    assert all(float(h) == 0 for h in re.findall(r'<rect [^>]*height="([\d.]+)"', svg))
    assert "slack: 0 delivered" in svg


def test_quota_bars_show_each_url_used_against_its_limit_and_escape_what_they_name():
    pool = {
        "target": "<script>",
        "submission_limit": 10,
        "webhooks": [
            {"position": 1, "url": "api.clay.com/…aaaaaa", "used": 10, "remaining": 0, "current": False},
            {"position": 2, "url": "api.clay.com/…<b>bb", "used": 5, "remaining": 5, "current": True},
        ],
    }
    svg = str(quota_used(pool))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "<b>" not in svg
    widths = [float(w) for w in re.findall(r'width="([\d.]+)" height="10" fill="#(?:c2410c|15803d)"', svg)]
    assert widths == [240.0, 120.0]
    assert "#2 api.clay.com/…&lt;b&gt;bb: 5 used, 5 left" in svg
