"""Issue 10's stress scenario: every job every second, OpenRouter polled, a notifier, 50 lines/s for 30 s."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.stress import run_stress


@pytest.mark.slow
def test_a_busy_daemon_stores_every_line_exactly_and_logs_no_error(tmp_path: Path):
    result = run_stress(tmp_path, seconds=30, rate=50)
    assert result.error_lines == [], result.summary()
    assert result.stored == result.written, result.summary()
    assert result.reported_total == result.expected_total, result.summary()
    assert result.notifications > 0, result.summary()
