"""The status page in headless Chromium: a card per budget, and both charts drew something."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
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
    heights = [float(h) for h in re.findall(r'<rect class="bar"[^>]*height="([\d.]+)"', daily.group(0))]
    assert len(heights) == 2 and all(h > 0 for h in heights)
    shot = tmp_path / "page.png"
    browse(tmp_path, served.url + "/", f"--screenshot={shot}", "--window-size=420,1400")
    assert shot.is_file() and shot.stat().st_size > 10_000
