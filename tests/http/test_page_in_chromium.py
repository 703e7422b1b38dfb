"""The status page in headless Chromium: a card per budget, and both charts drew something."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.http.conftest import Served

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium is missing (Debian package chromium: apt-get install -y chromium)")
    return found


def browse(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{time.monotonic_ns()}"
    command = [chromium(), *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=3000", *args, url]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def png_colours(path: Path) -> set[tuple[int, int, int]]:
    """The distinct RGB colours of an 8-bit RGB/RGBA PNG (what Chromium writes), decoded with zlib alone."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        header = body if kind == b"IHDR" else header
        chunks += body if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, colour_type = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour_type in (2, 6)
    bpp = 3 if colour_type == 2 else 4
    raw, stride, previous, seen = zlib.decompress(chunks), width * bpp, bytearray(width * bpp), set()
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, corner = previous[i], previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        seen.update(tuple(line[i : i + 3]) for i in range(0, stride, bpp))
        previous = line
    return seen


def test_the_page_shows_every_budget_and_draws_both_charts(served: Served, tmp_path: Path):
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    lines = [
        f'{{"ts": "{now}", "id": "c1", "model": "anthropic/claude-haiku-4.5", "cost": "0.40"}}',
        f'{{"ts": "{now}", "id": "c2", "model": "openai/gpt-4o", "cost": "0.30"}}',
    ]
    served.post("/v1/events", content="\n".join(lines), headers={"content-type": "application/x-ndjson"})
    dom = browse(tmp_path, served.url + "/", "--dump-dom").stdout
    cards = re.findall(r'<div class="card budget" data-budget="([\w-]+)"', dom)
    assert cards == ["team", "claude"]
    for budget in cards:
        spend = re.search(rf'<svg class="chart cumulative" data-budget="{budget}".*?</svg>', dom, re.S)
        assert spend is not None, budget
        points = re.search(r'<polyline class="spend"[^>]*points="([^"]+)"', spend.group(0))
        assert points is not None and len(points.group(1).split()) >= 3
    daily = re.search(r'<svg class="chart daily".*?</svg>', dom, re.S)
    assert daily is not None
    heights = [float(h) for h in re.findall(r'<rect class="seg"[^>]*height="([\d.]+)"', daily.group(0))]
    assert len(heights) == 2 and all(h > 0 for h in heights)
    shot = tmp_path / "page.png"
    browse(tmp_path, served.url + "/", f"--screenshot={shot}", "--window-size=420,1600")
    colours = png_colours(shot)
    assert (0x15, 0x65, 0xC0) in colours  # the cumulative spend line was painted
    assert (0x4E, 0x79, 0xA7) in colours and (0xF2, 0x8E, 0x2B) in colours  # both models' day bars were painted
