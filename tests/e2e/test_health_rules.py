"""Health rules end to end: ledger lines with statuses and latencies → status, check and a notification."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from guardd.client import LedgerWriter


def setup(tmp_path: Path, webhook_url: str) -> Path:
    (tmp_path / "ledgers").mkdir()
    path = tmp_path / "guardd.toml"
    path.write_text(
        '[guardd]\nstate_dir = "state"\n[[ledgers]]\npath = "ledgers/*.jsonl"\n'
        '[[budgets]]\nname = "team"\ndaily = 100\n'
        '[[health]]\nname = "anthropic"\nmatch = { provider = "Anthropic" }\nwindow = "10m"\nmin_requests = 10\n'
        'error_rate = 20\nlatency_p95 = "10s"\nrate_limited = 2\n'
        '[[health]]\nname = "openai"\nmatch = { provider = "OpenAI" }\nerror_rate = 20\n'
        f'[[notifiers]]\nurl = "{webhook_url}"\n'
    )
    writer = LedgerWriter(tmp_path / "ledgers" / "a.jsonl")
    now = datetime.now(UTC)
    for i in range(20):
        status = 429 if i < 3 else 500 if i < 6 else 200
        ts = (now - timedelta(minutes=5)).isoformat()
        writer.write(
            {
                "ts": ts,
                "id": f"a{i}",
                "model": "m",
                "cost": "0",
                "provider": "Anthropic",
                "status": status,
                "latency_ms": 400 + i,
            }
        )
    for i in range(3):
        writer.write({"id": f"o{i}", "model": "m", "cost": "0", "provider": "OpenAI", "ok": False})
    return path


def test_a_firing_health_rule_shows_in_status_and_check_and_is_announced(run_guardd, tmp_path, webhook):
    path = setup(tmp_path, webhook.url)
    assert run_guardd("run", "--once", "-c", str(path)).returncode == 0
    doc = json.loads(run_guardd("status", "--json", "-c", str(path)).stdout)
    anthropic, openai = doc["health"]
    assert anthropic == {
        "name": "anthropic",
        "state": "warning",
        "window": "10m",
        "requests": 20,
        "error_rate": 30.0,
        "latency_p95_ms": 418.0,
        "rate_limited": 3,
        "firing": [
            "error rate 30.0% is above 20% (6 of 20 requests)",
            "3 requests got 429 (more than 2)",
        ],
    }
    assert openai["state"] == "idle" and openai["requests"] == 3
    assert doc["budgets"][0]["tripped"] is False
    check = run_guardd("check", "-c", str(path))
    assert check.returncode == 1 and "health anthropic: error rate 30.0%" in check.stdout
    (body,) = webhook.bodies
    assert body["title"] == (
        "guardd WARNING: health anthropic firing — error rate 30.0% is above 20% (6 of 20 requests);"
        " 3 requests got 429 (more than 2)"
    )
    assert run_guardd("run", "--once", "-c", str(path)).returncode == 0
    assert len(webhook.bodies) == 1  # unchanged state is not announced again, across restarts
