"""The TCO chart as a PNG: ``hybridgate tco --chart x.png``.

Offline. Draws ``chart.layout`` (the SVG's geometry: same axes, curves, dots and break-even) with
Pillow at twice the SVG's size. Pillow is the optional ``chart`` extra (``pip install
'hybridgate[chart]'``): a raster image needs a rasteriser and a font, and Pillow brings both
(FreeType and its default font) in one wheel with no further dependencies. Imported only when a
PNG is asked for; without Pillow that request is refused with the install hint.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from hybridgate.tco.chart import (
    BOTTOM,
    HEIGHT,
    LEFT,
    RIGHT,
    SERIES,
    TOP,
    WIDTH,
    Layout,
    break_even_label,
    decades,
    dollars_label,
    layout,
)
from hybridgate.tco.model import Assumptions, api_monthly, hybrid_monthly, selfhost_monthly
from hybridgate.tco.report import human_tokens

if TYPE_CHECKING:
    from PIL.ImageDraw import ImageDraw
    from PIL.ImageFont import FreeTypeFont, ImageFont

SCALE = 2  # pixels per SVG unit
BREAK_EVEN_RGB = (0, 0, 0)  # the dashed vertical line at the break-even; nothing else is pure black
DASH, GAP = 5, 4  # as the SVG's stroke-dasharray


def render_png(volumes: list[float], a: Assumptions, *, title: str = "Monthly cost vs daily tokens") -> bytes:
    """The chart as PNG bytes, ``WIDTH * SCALE`` by ``HEIGHT * SCALE`` pixels."""
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        raise ValueError(
            "--chart .png needs Pillow: pip install 'hybridgate[chart]' (or write a .svg chart)"
        ) from None
    chart = layout(volumes, a)
    image = Image.new("RGB", (WIDTH * SCALE, HEIGHT * SCALE), "white")
    draw = ImageDraw.Draw(image)
    font, bold = ImageFont.load_default(12 * SCALE), ImageFont.load_default(15 * SCALE)
    draw.text((LEFT * SCALE, 24 * SCALE), title, fill="black", font=bold, anchor="ls")
    _grid(draw, chart, font)
    _curves(draw, chart)
    _dots(draw, chart, a)
    _break_even(draw, chart, a, font)
    _legend(draw, font)
    y_label = Image.new("RGB", (200 * SCALE, 16 * SCALE), "white")
    label = "US dollars per month"
    ImageDraw.Draw(y_label).text((100 * SCALE, 8 * SCALE), label, fill="#333", font=font, anchor="mm")
    rotated = y_label.rotate(90, expand=True)
    image.paste(rotated, (10 * SCALE, int((TOP + chart.axes.height / 2 - 100) * SCALE)))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _xy(x: float, y: float) -> tuple[float, float]:
    return x * SCALE, y * SCALE


def _grid(draw: ImageDraw, chart: Layout, font: FreeTypeFont | ImageFont) -> None:
    axes, bottom, right = chart.axes, HEIGHT - BOTTOM, WIDTH - RIGHT
    for tick in decades(*axes.x_range):
        x = axes.x(tick)
        draw.line([_xy(x, TOP), _xy(x, bottom)], fill="#ddd", width=SCALE)
        draw.text(_xy(x, bottom + 18), human_tokens(tick), fill="#333", font=font, anchor="ms")
    for tick in decades(*axes.y_range):
        y = axes.y(tick)
        draw.line([_xy(LEFT, y), _xy(right, y)], fill="#ddd", width=SCALE)
        draw.text(_xy(LEFT - 8, y + 4), dollars_label(tick), fill="#333", font=font, anchor="rs")
    draw.rectangle([_xy(LEFT, TOP), _xy(right, bottom)], outline="#333", width=SCALE)
    draw.text(_xy(LEFT + axes.width / 2, HEIGHT - 16), "tokens per day", fill="#333", font=font, anchor="ms")


def _curves(draw: ImageDraw, chart: Layout) -> None:
    for (_, colour), curve in zip(SERIES, chart.curves, strict=True):
        points = [_xy(chart.axes.x(x), chart.axes.y(y)) for x, y in zip(chart.samples, curve, strict=True)]
        draw.line(points, fill=colour, width=2 * SCALE, joint="curve")


def _dots(draw: ImageDraw, chart: Layout, a: Assumptions) -> None:
    costs = [
        [api_monthly(v, a) for v in chart.volumes],
        [selfhost_monthly(v, a)[0] for v in chart.volumes],
        [hybrid_monthly(v, a) for v in chart.volumes],
    ]
    for (_, colour), values in zip(SERIES, costs, strict=True):
        for volume, value in zip(chart.volumes, values, strict=True):
            x, y = _xy(chart.axes.x(volume), chart.axes.y(value))
            r = 3.5 * SCALE
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)


def _break_even(draw: ImageDraw, chart: Layout, a: Assumptions, font: FreeTypeFont | ImageFont) -> None:
    axes = chart.axes
    if chart.break_even is None:
        draw.text(_xy(LEFT + 10, TOP + 18), "no break-even: the API stays cheaper", fill="#333", font=font)
        return
    x, y = axes.x(chart.break_even), axes.y(api_monthly(chart.break_even, a))
    top = TOP
    while top < HEIGHT - BOTTOM:  # dashed, as in the SVG
        draw.line([_xy(x, top), _xy(x, min(top + DASH, HEIGHT - BOTTOM))], fill=BREAK_EVEN_RGB, width=SCALE)
        top += DASH + GAP
    r = 5 * SCALE
    cx, cy = _xy(x, y)
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=BREAK_EVEN_RGB, width=2 * SCALE)
    left_half = x < LEFT + axes.width / 2
    draw.text(
        _xy(x + (6 if left_half else -6), TOP + 14),
        break_even_label(chart.break_even),
        fill=BREAK_EVEN_RGB,
        font=font,
        anchor="ls" if left_half else "rs",
    )


def _legend(draw: ImageDraw, font: FreeTypeFont | ImageFont) -> None:
    x = WIDTH - RIGHT + 16
    for i, (name, colour) in enumerate(SERIES):
        y = TOP + 10 + i * 20
        draw.line([_xy(x, y), _xy(x + 22, y)], fill=colour, width=3 * SCALE)
        draw.text(_xy(x + 28, y + 4), name, fill="#333", font=font, anchor="ls")
