"""The daemon as a subprocess, with ledgers written by LedgerWriter, email to aiosmtpd and a JSON webhook."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

from guardd.client import KillSwitch, LedgerWriter
from tests.e2e.conftest import wait_for


def config(tmp_path: Path, notifiers: list[str], **budget: str) -> Path:
    extra = "\n".join(f"{k} = {v}" for k, v in budget.items())
    blocks = "\n".join(f'[[notifiers]]\nurl = "{url}"\nmin_severity = "info"\n' for url in notifiers)
    path = tmp_path / "guardd.toml"
    path.write_text(f"""
[guardd]
state_dir = "state"
evaluate_every = "1s"
[[ledgers]]
path = "ledgers/*.jsonl"
[[budgets]]
name = "team"
daily = 1.00
warn_at = [50, 80, 90]
forecast = false
{extra}
{blocks}
[alerts]
retry_after = "1s"
repeat_every = "0"
""")
    (tmp_path / "ledgers").mkdir(exist_ok=True)
    return path


def spend(tmp_path: Path, amount: str, gen: str) -> None:
    LedgerWriter(tmp_path / "ledgers" / "app.jsonl").write({"id": gen, "model": "openai/gpt-4o-mini", "cost": amount})


def delivered(tmp_path: Path) -> int:
    """Outbox rows whose delivery is committed (a kill before that is the one documented duplicate window)."""
    with closing(sqlite3.connect(tmp_path / "state" / "guardd.db")) as db:
        return db.execute("SELECT count(*) FROM outbox WHERE delivered_at IS NOT NULL").fetchone()[0]


def switch(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "state" / "killswitch.json").read_text())


def test_each_threshold_and_the_trip_are_announced_exactly_once(tmp_path, smtp, webhook, daemon_factory):
    daemon = daemon_factory(config(tmp_path, [smtp.url, webhook.url]))
    daemon.start()
    steps = [("0.55", "50%"), ("0.27", "80%"), ("0.09", "90%"), ("0.10", "TRIPPED")]
    for i, (amount, expected) in enumerate(steps):
        spend(tmp_path, amount, f"g{i}")
        wait_for(lambda n=i + 1: len(webhook.bodies) >= n and len(smtp.messages) >= n)
        assert expected in webhook.titles()[-1]
    assert switch(tmp_path)["tripped"] is True
    assert webhook.bodies[-1]["type"] == "failure"  # apprise's type for critical
    assert "kill-switch" in smtp.messages[-1].lower()
    daemon_log = daemon.log.read_text()
    assert daemon.stop() == 0, daemon_log
    assert len(webhook.bodies) == 4 and len(smtp.messages) == 4


def test_mail_sent_while_smtp_is_down_arrives_once_after_recovery_and_a_restart(tmp_path, smtp, daemon_factory):
    path = config(tmp_path, [smtp.url])
    daemon = daemon_factory(path)
    daemon.start()
    smtp.stop()
    spend(tmp_path, "1.50", "big")
    wait_for(lambda: switch(tmp_path)["tripped"])
    wait_for(lambda: "notification failed" in daemon.log.read_text())
    daemon.kill()  # kill -9 while the message waits in the outbox
    smtp.start()
    daemon.start()
    wait_for(lambda: len(smtp.messages) >= 1)
    daemon.stop()
    assert len(smtp.messages) == 1 and "team" in smtp.messages[0]


def test_kill_9_and_restart_repeat_nothing_but_announce_what_changed_while_down(tmp_path, webhook, daemon_factory):
    path = config(tmp_path, [webhook.url])
    daemon = daemon_factory(path)
    daemon.start()
    spend(tmp_path, "0.60", "a")
    wait_for(lambda: len(webhook.bodies) == 1 and delivered(tmp_path) == 1)
    daemon.kill()
    spend(tmp_path, "0.35", "b")  # 95% while guardd is down
    daemon.start()
    wait_for(lambda: len(webhook.bodies) == 2)
    daemon.stop()
    assert "50%" in webhook.titles()[0] and "90%" in webhook.titles()[1]
    assert len(webhook.bodies) == 2


def test_a_manual_release_for_an_hour_is_honoured_by_the_running_daemon(tmp_path, run_guardd, daemon_factory):
    path = config(tmp_path, [])
    daemon = daemon_factory(path)
    daemon.start()
    spend(tmp_path, "2.00", "over")
    wait_for(lambda: switch(tmp_path)["tripped"])
    result = run_guardd(
        "killswitch", "release", "--budget", "team", "--for", "1h", "--reason", "hotfix", "-c", str(path)
    )
    assert result.returncode == 0, result.stderr
    before = switch(tmp_path)["heartbeat_at"]
    wait_for(lambda: switch(tmp_path)["heartbeat_at"] != before)  # the daemon evaluated again since
    doc = switch(tmp_path)
    assert doc["tripped"] is False and doc["scopes"]["team"]["override"]["state"] == "released"
    KillSwitch(tmp_path / "state" / "killswitch.json", budgets=["team"]).check()
    daemon.stop()
