"""Spikes end to end: ledger spend days in the past makes the baseline; a burst now is announced."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from guardd.client import LedgerWriter


def test_a_burst_over_factor_times_the_past_mean_is_a_warning_with_both_figures(run_guardd, tmp_path, webhook):
    (tmp_path / "ledgers").mkdir()
    path = tmp_path / "guardd.toml"
    path.write_text(
        '[guardd]\nstate_dir = "state"\n[[ledgers]]\npath = "ledgers/*.jsonl"\n'
        '[[budgets]]\nname = "team"\nmonthly = 1000\nforecast = false\n'
        'spike = { window = "1h", factor = 3, baseline = "1d", min = 1 }\n'
        f'[[notifiers]]\nurl = "{webhook.url}"\n'
    )
    writer = LedgerWriter(tmp_path / "ledgers" / "a.jsonl")
    now = datetime.now(UTC)
    for hours_ago, cost in ((3, "12.00"), (20, "12.00")):  # $24 over the day before the last hour: $1 per hour
        writer.write({"ts": (now - timedelta(hours=hours_ago)).isoformat(), "model": "m", "cost": cost})
    writer.write({"ts": (now - timedelta(minutes=10)).isoformat(), "model": "m", "cost": "3.01"})
    assert run_guardd("run", "--once", "-c", str(path)).returncode == 0
    budget = json.loads(run_guardd("status", "--json", "-c", str(path)).stdout)["budgets"][0]
    assert budget["state"] == "warning" and budget["tripped"] is False
    assert {k: budget["spike"][k] for k in ("state", "recent", "baseline_mean", "factor")} == {
        "state": "warning",
        "recent": "3.01",
        "baseline_mean": "1.00",
        "factor": 3.0,
    }
    assert run_guardd("check", "-c", str(path)).returncode == 1
    (body,) = webhook.bodies
    assert body["title"] == (
        "guardd WARNING: team spending spike — spend in the last 1h $3.01 is above 3 × the mean $1.00 per 1h"
        " over the 1d before it; 3.0×"
    )
    print(body["message"])
