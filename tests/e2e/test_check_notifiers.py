"""An alert that cannot be delivered is not OK: check must not say all is well while every notifier fails."""

from __future__ import annotations

import json
from datetime import UTC, datetime


def test_check_is_not_ok_while_the_only_notifier_fails_with_messages_waiting(run_guardd, tmp_path):
    now = datetime.now(UTC).isoformat()
    (tmp_path / "u.jsonl").write_text(json.dumps({"ts": now, "id": "a", "model": "m/a", "cost": "1.00"}) + "\n")
    cfg = tmp_path / "guardd.toml"
    cfg.write_text(
        '[guardd]\nstate_dir = "state"\n[[ledgers]]\npath = "u.jsonl"\n'
        '[[budgets]]\nname = "team"\ndaily = 10\nforecast = false\n'
        '[[notifiers]]\nurl = "json://127.0.0.1:1/nowhere"\n'  # nothing listens on port 1
    )
    assert run_guardd("killswitch", "trip", "--reason", "drill", "-c", str(cfg)).returncode == 0
    assert run_guardd("killswitch", "release", "-c", str(cfg)).returncode == 0
    assert run_guardd("run", "--once", "-c", str(cfg)).returncode == 0  # delivery fails: the channel is failing
    doc = json.loads(run_guardd("status", "--json", "-c", str(cfg)).stdout)
    assert doc["notifiers"][0]["ok"] is False and doc["outbox_pending"] > 0
    result = run_guardd("check", "-c", str(cfg))
    assert result.returncode == 1, result.stdout  # was: "GUARDD OK - 1 budget(s) within limits"
    assert "json://127.0.0.1:1/" in result.stdout
