"""Monthly cost versus daily tokens as a dependency-free SVG, with the break-even marked.

Offline and pure: ``layout`` samples the three cost curves from ``tco.model`` on log-log axes;
``render_svg`` turns that into SVG text (the CLI writes it to a file and the dashboard serves it)
and ``chart_png.render_png`` into a PNG. No plotting library and no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

from hybridgate.tco.model import (
    Assumptions,
    api_monthly,
    break_even_daily_tokens,
    hybrid_monthly,
    selfhost_monthly,
)
from hybridgate.tco.report import human_tokens

WIDTH, HEIGHT = 760, 440
LEFT, RIGHT, TOP, BOTTOM = 80, 170, 40, 60
SAMPLES = 160
SERIES = (("closed API", "#d9480f"), ("self-host", "#1864ab"), ("hybrid", "#2b8a3e"))


def _curves(volumes: list[float], a: Assumptions) -> list[list[float]]:
    return [
        [api_monthly(v, a) for v in volumes],
        [selfhost_monthly(v, a)[0] for v in volumes],
        [hybrid_monthly(v, a) for v in volumes],
    ]


def _log_range(values: list[float]) -> tuple[float, float]:
    positive = [v for v in values if v > 0] or [1.0]
    low = 10 ** math.floor(math.log10(min(positive)))
    high = 10 ** math.ceil(math.log10(max(positive) * 1.0001))
    return low, max(high, low * 10)


class Axes:
    """Maps data to pixels on log-log axes inside the plot area."""

    def __init__(self, x_range: tuple[float, float], y_range: tuple[float, float]) -> None:
        self.x_range, self.y_range = x_range, y_range
        self.width, self.height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(self, value: float) -> float:
        low, high = self.x_range
        return LEFT + self.width * math.log10(max(value, low) / low) / math.log10(high / low)

    def y(self, value: float) -> float:
        low, high = self.y_range
        return TOP + self.height * (1 - math.log10(max(value, low) / low) / math.log10(high / low))


@dataclass(frozen=True)
class Layout:
    """What both renderings draw: the axes, the sampled curves, the dots and the break-even."""

    axes: Axes
    samples: list[float]
    curves: list[list[float]]
    volumes: list[float]  # positive ones, shown as dots
    break_even: float | None


def layout(volumes: list[float], a: Assumptions) -> Layout:
    if not volumes or all(v <= 0 for v in volumes):
        raise ValueError("the chart needs at least one positive daily token volume")
    break_even = break_even_daily_tokens(a)
    span = [v for v in volumes if v > 0] + ([break_even] if break_even else [])
    x_range = _log_range(span)
    samples = [x_range[0] * (x_range[1] / x_range[0]) ** (i / (SAMPLES - 1)) for i in range(SAMPLES)]
    curves = _curves(samples, a)
    axes = Axes(x_range, _log_range([v for curve in curves for v in curve]))
    return Layout(axes, samples, curves, [v for v in volumes if v > 0], break_even)


def dollars_label(tick: float) -> str:
    return f"${tick:g}" if tick < 1 else "$" + human_tokens(tick)


def break_even_label(break_even: float) -> str:
    return f"break-even {human_tokens(break_even)} tokens/day"


def render_svg(volumes: list[float], a: Assumptions, *, title: str = "Monthly cost vs daily tokens") -> str:
    """The chart as SVG text; ``volumes`` are the rows' volumes, shown as dots on each curve."""
    chart = layout(volumes, a)
    axes, samples, curves, break_even = chart.axes, chart.samples, chart.curves, chart.break_even
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{LEFT}" y="24" font-size="15" font-weight="bold">{escape(title)}</text>',
        *_grid(axes),
        *_lines(axes, samples, curves),
        *_dots(axes, chart.volumes, a),
        *_break_even(axes, break_even, a),
        *_legend(),
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def decades(low: float, high: float) -> list[float]:
    return [10.0**e for e in range(round(math.log10(low)), round(math.log10(high)) + 1)]


def _grid(axes: Axes) -> list[str]:
    out = []
    bottom, right = HEIGHT - BOTTOM, WIDTH - RIGHT
    for tick in decades(*axes.x_range):
        x = axes.x(tick)
        out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{bottom}" stroke="#ddd"/>')
        out.append(f'<text x="{x:.1f}" y="{bottom + 18}" text-anchor="middle">{human_tokens(tick)}</text>')
    for tick in decades(*axes.y_range):
        y = axes.y(tick)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#ddd"/>')
        label = dollars_label(tick)
        out.append(f'<text x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    out.append(
        f'<rect x="{LEFT}" y="{TOP}" width="{axes.width}" height="{axes.height}" fill="none" stroke="#333"/>'
    )
    out.append(
        f'<text x="{LEFT + axes.width / 2}" y="{HEIGHT - 16}" text-anchor="middle">tokens per day</text>'
    )
    out.append(
        f'<text x="18" y="{TOP + axes.height / 2}" text-anchor="middle" '
        f'transform="rotate(-90 18 {TOP + axes.height / 2})">US dollars per month</text>'
    )
    return out


def _lines(axes: Axes, samples: list[float], curves: list[list[float]]) -> list[str]:
    out = []
    for (name, colour), curve in zip(SERIES, curves, strict=True):
        points = " ".join(f"{axes.x(x):.1f},{axes.y(y):.1f}" for x, y in zip(samples, curve, strict=True))
        out.append(
            f'<polyline class="series" data-name="{name}" points="{points}" fill="none" '
            f'stroke="{colour}" stroke-width="2"/>'
        )
    return out


def _dots(axes: Axes, volumes: list[float], a: Assumptions) -> list[str]:
    out = []
    for (_, colour), values in zip(SERIES, _curves(volumes, a), strict=True):
        for volume, value in zip(volumes, values, strict=True):
            out.append(
                f'<circle cx="{axes.x(volume):.1f}" cy="{axes.y(value):.1f}" r="3.5" fill="{colour}"/>'
            )
    return out


def _break_even(axes: Axes, break_even: float | None, a: Assumptions) -> list[str]:
    if break_even is None:
        return [f'<text x="{LEFT + 10}" y="{TOP + 18}">no break-even: the API stays cheaper</text>']
    x, y = axes.x(break_even), axes.y(api_monthly(break_even, a))
    label = break_even_label(break_even)
    # Keep the label inside the plot: to the right of the line on the left half, else to its left.
    anchor, dx = ("start", 6) if x < LEFT + axes.width / 2 else ("end", -6)
    return [
        f'<line id="break-even" x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{HEIGHT - BOTTOM}" '
        'stroke="#000" stroke-dasharray="5,4"/>',
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="none" stroke="#000" stroke-width="2"/>',
        f'<text x="{x + dx:.1f}" y="{TOP + 14}" text-anchor="{anchor}">{escape(label)}</text>',
    ]


def _legend() -> list[str]:
    out = []
    x = WIDTH - RIGHT + 16
    for i, (name, colour) in enumerate(SERIES):
        y = TOP + 10 + i * 20
        out.append(f'<line x1="{x}" y1="{y}" x2="{x + 22}" y2="{y}" stroke="{colour}" stroke-width="3"/>')
        out.append(f'<text x="{x + 28}" y="{y + 4}">{name}</text>')
    return out
