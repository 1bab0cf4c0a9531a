"""Small charts drawn on the server as inline SVG: they show with JavaScript off, need no library,
and carry their figures as text (a <title> per bar) for screen readers and tooltips.

- deliveries per minute of one destination over the last hour (a bar per minute);
- a Clay pool's quota: a bar per webhook URL, used against its limit.
"""

from __future__ import annotations

from markupsafe import Markup

WIDTH, HEIGHT = 240, 40
COLOURS = {"used": "#c2410c", "left": "#d1d5db", "bar": "#2563eb", "current": "#15803d"}


def deliveries_per_minute(destination: str, per_minute: list[float], since: str) -> Markup:
    """A bar per minute, oldest on the left; an empty hour is a flat line."""
    peak = max(per_minute, default=0) or 1
    slot = WIDTH / max(1, len(per_minute))
    bars = []
    for i, value in enumerate(per_minute):
        height = 0 if not value else max(1.5, (HEIGHT - 2) * value / peak)
        bars.append(
            Markup(
                '<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" fill="{fill}">'
                "<title>{value} delivered, minute {minute} of {minutes}</title></rect>"
            ).format(
                x=i * slot,
                y=HEIGHT - height,
                width=max(1.0, slot - 1),
                height=height,
                fill=COLOURS["bar"],
                value=int(value),
                minute=i + 1,
                minutes=len(per_minute),
            )
        )
    total = int(sum(per_minute))
    label = f"{destination}: {total} delivered in the last {len(per_minute)} minutes (since {since} UTC)"
    return Markup(
        '<svg class="chart" role="img" aria-label="{label}" viewBox="0 0 {width} {height}" '
        'width="{width}" height="{height}"><title>{label}</title>'
        '<line x1="0" y1="{baseline}" x2="{width}" y2="{baseline}" stroke="#9ca3af" stroke-width="1"/>{bars}</svg>'
    ).format(label=label, width=WIDTH, height=HEIGHT, baseline=HEIGHT - 0.5, bars=Markup("").join(bars))


def quota_used(pool: dict) -> Markup:
    """A pool's URLs in pool order, each a bar of its submissions used (the current one green)."""
    webhooks = pool.get("webhooks") or []
    limit = pool.get("submission_limit") or 1
    row = 14
    height = max(row, row * len(webhooks))
    parts = []
    for i, webhook in enumerate(webhooks):
        used = min(limit, webhook["used"])
        parts.append(
            Markup(
                '<rect x="0" y="{y}" width="{full}" height="{bar}" fill="{left}"><title>{text}</title></rect>'
                '<rect x="0" y="{y}" width="{width:.1f}" height="{bar}" fill="{colour}"><title>{text}</title></rect>'
            ).format(
                y=i * row + 2,
                full=WIDTH,
                bar=row - 4,
                left=COLOURS["left"],
                width=WIDTH * used / limit,
                colour=COLOURS["current"] if webhook["current"] else COLOURS["used"],
                text=f"#{webhook['position']} {webhook['url']}: "
                f"{webhook['used']:,} used, {webhook['remaining']:,} left",
            )
        )
    label = f"Clay target {pool.get('target')}: submissions used per webhook URL"
    return Markup(
        '<svg class="chart" role="img" aria-label="{label}" viewBox="0 0 {width} {height}" '
        'width="{width}" height="{height}"><title>{label}</title>{parts}</svg>'
    ).format(label=label, width=WIDTH, height=height, parts=Markup("").join(parts))
