"""``hybridgate tco --chart x.png``: a real PNG (Pillow, the ``chart`` extra) with the break-even marked.

The file is checked as bytes first (signature, chunk CRCs, IHDR, the IDAT stream inflating to
exactly the image's rows), then decoded by Pillow: the dashed break-even line must be at the
x position the model's break-even maps to, in the only pure black the chart uses.
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from hybridgate.commands.tco import tco_command
from hybridgate.tco.chart import BOTTOM, HEIGHT, TOP, WIDTH, layout
from hybridgate.tco.chart_png import BREAK_EVEN_RGB, SCALE
from hybridgate.tco.model import Assumptions
from hybridgate.tco.profiles import get_profile

app = typer.Typer()
app.command("tco")(tco_command)
app.command("noop")(lambda: None)  # two commands, so "tco" is a subcommand as in cli.py
runner = CliRunner()
PLANNING = ["tco", "--daily-tokens", "500k,5M,20M,50M,200M", "--blended-price", "8"]
PLANNING += ["--selfhost-monthly", "8000"]


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """The chunks of a PNG file, each CRC checked."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        chunks.append((kind, body))
        at += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    return chunks


def black_share(image: Image.Image, x: int) -> float:
    """Share of the plot area's height that is break-even black in pixel column ``x`` (or next to it)."""
    rows = range(TOP * SCALE + 2, (HEIGHT - BOTTOM) * SCALE - 2)
    hits = sum(any(image.getpixel((c, y)) == BREAK_EVEN_RGB for c in (x - 1, x, x + 1)) for y in rows)
    return hits / len(rows)


def test_png_chart_is_a_real_png_with_the_break_even_marked(tmp_path: Path) -> None:
    chart = tmp_path / "tco.png"
    result = runner.invoke(app, [*PLANNING, "--chart", str(chart), "--json"])
    assert result.exit_code == 0, result.output
    data = chart.read_bytes()
    chunks = png_chunks(data)
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (width, height, depth, colour, interlace) == (WIDTH * SCALE, HEIGHT * SCALE, 8, 2, 0)  # RGB
    pixels = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(pixels) == height * (1 + width * 3)  # a filter byte and RGB per pixel, every row

    image = Image.open(chart)
    image.load()
    assert image.format == "PNG" and image.size == (width, height)
    a = Assumptions(8.0, get_profile("l4"), selfhost_monthly_usd=8000.0, local_share=0.5)
    drawn = layout([5e5, 5e6, 2e7, 5e7, 2e8], a)
    assert drawn.break_even == pytest.approx(8000 / (8e-6 * 30))
    assert drawn.break_even is not None
    x = round(drawn.axes.x(drawn.break_even) * SCALE)
    assert black_share(image, x) > 0.4  # the dashed line: 5 on, 4 off
    far = round(drawn.axes.x(1e6) * SCALE)  # a grid line a decade and a half away
    assert black_share(image, far) == 0
    # The curves are drawn too: each series' colour appears.
    colours = {rgb for _, rgb in image.getcolors(maxcolors=1 << 20) or []}
    assert {(0xD9, 0x48, 0x0F), (0x18, 0x64, 0xAB), (0x2B, 0x8A, 0x3E)} <= colours


def test_png_chart_without_a_break_even_has_no_line(tmp_path: Path) -> None:
    chart = tmp_path / "never.png"
    args = ["tco", "--daily-tokens", "5M", "--blended-price", "0.01", "--profile", "h100x2"]
    assert runner.invoke(app, [*args, "--chart", str(chart)]).exit_code == 0
    image = Image.open(chart)
    assert max(black_share(image, x) for x in range(2, image.size[0] - 2, 3)) < 0.4


def test_other_chart_formats_are_refused(tmp_path: Path) -> None:
    chart = tmp_path / "tco.gif"
    result = runner.invoke(app, [*PLANNING, "--chart", str(chart)])
    assert result.exit_code == 2 and ".svg or .png" in result.stderr
    assert not chart.exists()


def test_png_without_pillow_is_refused_with_the_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "PIL", None)  # import PIL raises ImportError
    chart = tmp_path / "tco.png"
    result = runner.invoke(app, [*PLANNING, "--chart", str(chart)])
    assert result.exit_code == 2 and "hybridgate[chart]" in result.stderr
    assert not chart.exists()
