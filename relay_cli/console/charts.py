"""Small charts drawn on the server as inline SVG: they show with JavaScript off, need no library,
and carry their figures as text (a <title> per bar) for screen readers and tooltips.

- deliveries per minute of one destination over the last hour (a bar per minute);
- a Clay pool's quota: a bar per webhook URL, used against its limit.
"""

from __future__ import annotations

from markupsafe import Markup, escape

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
            f'<rect x="{i * slot:.1f}" y="{HEIGHT - height:.1f}" width="{max(1.0, slot - 1):.1f}" '
            f'height="{height:.1f}" fill="{COLOURS["bar"]}"><title>{int(value)} delivered, minute {i + 1} '
            f"of {len(per_minute)}</title></rect>"
        )
    total = int(sum(per_minute))
    label = escape(f"{destination}: {total} delivered in the last {len(per_minute)} minutes (since {since} UTC)")
    return Markup(  # noqa: S704 - built from numbers and escape()d text only
        f'<svg class="chart" role="img" aria-label="{label}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}"><title>{label}</title>'
        f'<line x1="0" y1="{HEIGHT - 0.5}" x2="{WIDTH}" y2="{HEIGHT - 0.5}" stroke="#9ca3af" stroke-width="1"/>'
        + "".join(bars)
        + "</svg>"
    )


def quota_used(pool: dict) -> Markup:
    """A pool's URLs in pool order, each a bar of its submissions used (the current one green)."""
    webhooks = pool.get("webhooks") or []
    limit = pool.get("submission_limit") or 1
    row = 14
    height = max(row, row * len(webhooks))
    parts = []
    for i, webhook in enumerate(webhooks):
        used = min(limit, webhook["used"])
        width = WIDTH * used / limit
        colour = COLOURS["current"] if webhook["current"] else COLOURS["used"]
        text = escape(
            f"#{webhook['position']} {webhook['url']}: {webhook['used']:,} used, {webhook['remaining']:,} left"
        )
        y = i * row
        parts.append(
            f'<rect x="0" y="{y + 2}" width="{WIDTH}" height="{row - 4}" fill="{COLOURS["left"]}">'
            f"<title>{text}</title></rect>"
            f'<rect x="0" y="{y + 2}" width="{width:.1f}" height="{row - 4}" fill="{colour}">'
            f"<title>{text}</title></rect>"
        )
    label = escape(f"Clay target {pool.get('target')}: submissions used per webhook URL")
    return Markup(  # noqa: S704 - built from numbers and escape()d text only
        f'<svg class="chart" role="img" aria-label="{label}" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}"><title>{label}</title>' + "".join(parts) + "</svg>"
    )
