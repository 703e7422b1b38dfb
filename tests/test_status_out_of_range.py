"""A time an older guardd stored outside any date (review F19: a Unix time in µs or ns read as milliseconds) is
shown, never a crash: ``status``, ``status --json`` / ``GET /v1/status`` and the page."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from guardd.app import open_app
from guardd.cli import render
from guardd.config import load_config
from guardd.http import page
from guardd.http.backend import Charts
from guardd.services import status

NOW = datetime(2026, 12, 1, 19, 0, tzinfo=UTC)
NANOS_AS_MS = 1796153479000000000  # year 56,919,807
YEAR_9999_MS = 253402300799000  # 9999-12-31T23:59:59Z: 10000-01-01 in Berlin


async def document(tmp_path: Path, stored_ms: int) -> dict:
    (tmp_path / "ledgers").mkdir()
    line = '{"ts": "2026-12-01T18:30:00Z", "id": "g1", "model": "m", "cost": 0.1}\n'
    (tmp_path / "ledgers" / "a.jsonl").write_text(line)
    path = tmp_path / "guardd.toml"
    path.write_text(
        '[guardd]\nstate_dir = "state"\ntimezone = "Europe/Berlin"\n[[budgets]]\nname = "a"\ndaily = 1\n'
        '[[ledgers]]\npath = "ledgers/a.jsonl"\n'
    )
    config = load_config(str(path))
    async with open_app(config) as app:
        tailer = app.tailer()
        try:
            await tailer.poll()
        finally:
            await tailer.aclose()
    with sqlite3.connect(tmp_path / "state" / "guardd.db") as db:  # as an older guardd left it
        db.execute("UPDATE files SET last_event_ms = ?", (stored_ms,))
    async with open_app(config) as app:
        return await status.document(config, app.stores, app.evaluator, NOW)


@pytest.mark.parametrize("stored_ms", [NANOS_AS_MS, YEAR_9999_MS], ids=["nanos-as-ms", "year-9999-east-of-utc"])
async def test_a_last_event_time_no_date_holds_is_shown_as_its_stored_number(tmp_path, stored_ms):
    (ledger,) = (await document(tmp_path, stored_ms))["ledgers"]
    assert ledger["last_event_at"] is None and ledger["last_event_ms"] == stored_ms


async def test_the_status_text_says_the_last_event_time_is_out_of_range(tmp_path):
    text = render.status_text(await document(tmp_path, NANOS_AS_MS))
    assert f"last event out of range (Unix ms {NANOS_AS_MS})" in text


async def test_the_page_shows_the_last_event_time_out_of_range(tmp_path):
    html = page.render(await document(tmp_path, NANOS_AS_MS), Charts({}, []), NOW)
    assert f"out of range (Unix ms {NANOS_AS_MS})" in html


def test_an_rfc3339_time_past_the_last_local_date_is_shown_as_written():
    assert render.when("9999-12-31T23:59:59+00:00", "Europe/Berlin") == "9999-12-31T23:59:59+00:00"
    assert "9999-12-31T23:59:59+00:00" in page._local("9999-12-31T23:59:59+00:00", page.ZoneInfo("Europe/Berlin"))
