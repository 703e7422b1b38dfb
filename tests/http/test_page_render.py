"""The page's rendering on its own (pure): what it says when something is wrong."""

from __future__ import annotations

from datetime import UTC, datetime

from guardd.http.backend import Charts
from guardd.http.page import render

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
EMPTY = Charts({}, [])


def status(**extra: object) -> dict[str, object]:
    return {"schema": 1, "generated_at": NOW.isoformat(), "timezone": "UTC", "budgets": [], **extra}


def test_a_dead_guard_is_said_at_the_top():
    html = render(status(guard={"alive": False, "reason": "heartbeat expired"}, killswitch={}), EMPTY, NOW)
    assert "Guard not alive: heartbeat expired" in html


def test_a_store_that_cannot_be_written_is_said():
    html = render(status(store={"ok": False, "error": "disk full"}, killswitch={}), EMPTY, NOW)
    assert "The state cannot be written: disk full" in html


def test_text_from_the_state_is_escaped():
    scopes = {"*": {"tripped": True, "reason": "<script>alert(1)</script>", "until": None}}
    html = render(status(killswitch={"tripped": True, "scopes": scopes}), EMPTY, NOW)
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_a_rolling_window_is_not_said_to_reset():
    window = {"window": "rolling:10m", "start": "2026-12-01T11:50:00+00:00", "end": NOW.isoformat()}
    window |= {"resets": None, "spent": "0.5", "limit": "1", "percent": 50.0, "state": "ok", "forecast": None}
    budget = {"name": "burn", "state": "ok", "source": "ledger", "windows": [window]}
    html = render(status(budgets=[budget], killswitch={}), EMPTY, NOW)
    assert "resets" not in html and "sliding" in html


def test_a_budget_whose_match_selects_nothing_ever_stored_says_so_on_its_card():
    gap = {"level": "warning", "message": "label key 'teem' was never seen; seen keys: env, team", "parts": []}
    budget = {"name": "typo", "state": "ok", "source": "ledger", "windows": [], "never_matched": gap}
    html = render(status(budgets=[budget], killswitch={}), EMPTY, NOW)
    assert "class=never-matched" in html
    assert "matches nothing ever stored: label key &#x27;teem&#x27; was never seen; seen keys: env, team" in html
