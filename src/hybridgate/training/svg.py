"""Cost-quality curves as a small hand-written SVG (no plotting library needed).

One panel per benchmark setting: x = share of requests sent to the strong tier, y = quality as a
fraction of the strong tier's; the learned router's curve, the random router's straight line and
the 95% line. Offline only (``hybridgate bench router --svg``).
"""

from __future__ import annotations

from html import escape

import numpy as np

from hybridgate.training.quality import Curve

PANEL_W, PANEL_H, MARGIN = 300, 220, 40
COLUMNS = 3


def curves_svg(curves: dict[str, Curve]) -> str:
    names = list(curves)
    rows = (len(names) + COLUMNS - 1) // COLUMNS
    width = COLUMNS * (PANEL_W + MARGIN) + MARGIN
    height = rows * (PANEL_H + 2 * MARGIN) + MARGIN
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    for i, name in enumerate(names):
        x0 = MARGIN + (i % COLUMNS) * (PANEL_W + MARGIN)
        y0 = MARGIN + (i // COLUMNS) * (PANEL_H + 2 * MARGIN)
        parts += _panel(name, curves[name], x0, y0)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _panel(name: str, c: Curve, x0: float, y0: float) -> list[str]:
    low = min(float(c.quality.min()), c.weak_quality) / max(c.strong_quality, 1e-9)
    low = max(0.0, np.floor(low * 20) / 20)
    high = max(1.0, float(c.quality.max()) / max(c.strong_quality, 1e-9))

    def xy(share: float, ratio: float) -> str:
        x = x0 + share * PANEL_W
        y = y0 + PANEL_H - (ratio - low) / (high - low) * PANEL_H
        return f"{x:.1f},{y:.1f}"

    ratios = c.quality / max(c.strong_quality, 1e-9)
    step = max(1, len(c.share) // 400)  # a few hundred points draw the same line
    points = " ".join(xy(float(s), float(r)) for s, r in zip(c.share[::step], ratios[::step], strict=True))
    points += " " + xy(float(c.share[-1]), float(ratios[-1]))
    weak_ratio = c.weak_quality / max(c.strong_quality, 1e-9)
    at95 = c.share_for_quality(0.95)
    return [
        f'<rect x="{x0}" y="{y0}" width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="#999"/>',
        f'<text x="{x0}" y="{y0 - 8}" font-size="13" font-weight="bold">{escape(name)}</text>',
        f'<polyline points="{xy(0, 0.95)} {xy(1, 0.95)}" fill="none" stroke="#bbb" stroke-dasharray="4 3"/>',
        f'<text x="{x0 + 4}" y="{y0 + 12}" fill="#777">'
        f"95% of strong quality: learned needs {at95:.0%}</text>",
        f'<polyline points="{xy(0, weak_ratio)} {xy(1, 1.0)}" fill="none" stroke="#d62728" '
        'stroke-dasharray="6 3"/>',
        f'<polyline points="{points}" fill="none" stroke="#1f77b4" stroke-width="2"/>',
        f'<text x="{x0 + PANEL_W / 2}" y="{y0 + PANEL_H + 28}" text-anchor="middle">'
        "share sent to the strong tier</text>",
        f'<text x="{x0}" y="{y0 + PANEL_H + 14}">0</text>',
        f'<text x="{x0 + PANEL_W}" y="{y0 + PANEL_H + 14}" text-anchor="end">1</text>',
        f'<text x="{x0 - 4}" y="{y0 + 10}" text-anchor="end">{high:.2f}</text>',
        f'<text x="{x0 - 4}" y="{y0 + PANEL_H}" text-anchor="end">{low:.2f}</text>',
        f'<text x="{x0 + PANEL_W - 4}" y="{y0 + PANEL_H - 8}" text-anchor="end">'
        '<tspan fill="#1f77b4">learned</tspan> / <tspan fill="#d62728">random</tspan></text>',
    ]
