"""Operator commands and daemon lifecycle: silences, notify test, SIGHUP reload, journald-style logs."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from guardd.client import LedgerWriter
from tests.e2e.conftest import wait_for


def cfg(tmp_path: Path, extra: str = "", daily: str = "1") -> Path:
    (tmp_path / "ledgers").mkdir(exist_ok=True)
    path = tmp_path / "guardd.toml"
    path.write_text(
        f'[guardd]\nstate_dir = "state"\n[[ledgers]]\npath = "ledgers/*.jsonl"\n'
        f'[[budgets]]\nname = "team"\ndaily = {daily}\nforecast = false\n{extra}'
    )
    return path


def test_a_silence_mutes_notifications_until_removed(run_guardd, tmp_path, webhook):
    path = cfg(tmp_path, f'[[notifiers]]\nurl = "{webhook.url}"\n')
    added = run_guardd("silence", "add", "--budget", "team", "--for", "1h", "--reason", "migration", "-c", str(path))
    assert added.returncode == 0, added.stderr
    listed = json.loads(run_guardd("silence", "list", "--json", "-c", str(path)).stdout)
    assert [s["budget"] for s in listed] == ["team"] and listed[0]["reason"] == "migration"
    LedgerWriter(tmp_path / "ledgers" / "a.jsonl").write({"id": "x", "model": "m", "cost": "0.9"})
    assert run_guardd("run", "--once", "-c", str(path)).returncode == 0
    assert webhook.bodies == []
    history = json.loads(run_guardd("history", "--json", "-c", str(path)).stdout)
    assert any("(silenced)" in h["detail"] for h in history)
    assert run_guardd("silence", "remove", str(listed[0]["id"]), "-c", str(path)).returncode == 0
    assert json.loads(run_guardd("silence", "list", "--json", "-c", str(path)).stdout) == []
    assert run_guardd("silence", "remove", "999", "-c", str(path)).returncode == 2


def test_notify_test_reports_each_channel(run_guardd, tmp_path, webhook):
    path = cfg(tmp_path, f'[[notifiers]]\nurl = "{webhook.url}"\n[[notifiers]]\nurl = "json://127.0.0.1:9/dead"\n')
    result = run_guardd("notify", "test", "-c", str(path))
    assert result.returncode == 1
    assert "ok      json://127.0.0.1:" in result.stdout and "FAILED  json://127.0.0.1:9" in result.stdout
    assert webhook.titles() == ["guardd test message"]


def test_sighup_reloads_and_a_broken_config_is_rejected_while_the_old_one_keeps_running(tmp_path, daemon_factory):
    path = cfg(tmp_path, daily="100")
    daemon = daemon_factory(path)
    daemon.start()
    switch = tmp_path / "state" / "killswitch.json"
    path.write_text(path.read_text() + "[guardd.broken\n")
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload rejected" in daemon.log.read_text())
    (tmp_path / "moved").mkdir()
    path.write_text(cfg(tmp_path, daily="0.5").read_text().replace("ledgers/*.jsonl", "moved/*.jsonl"))
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "configuration reloaded" in daemon.log.read_text())
    LedgerWriter(tmp_path / "moved" / "a.jsonl").write({"id": "y", "model": "m", "cost": "0.6"})
    # the new ledger folder is followed and the new, lower limit is in force
    wait_for(lambda: json.loads(switch.read_text())["tripped"], timeout=10)
    assert daemon.stop() == 0


def test_under_journald_lines_carry_priorities_and_no_timestamps(run_guardd, tmp_path):
    path = cfg(tmp_path)
    LedgerWriter(tmp_path / "ledgers" / "a.jsonl").write({"id": "z", "model": "m", "cost": "2"})
    result = run_guardd("run", "--once", "-c", str(path), env={"JOURNAL_STREAM": "8:1234"})
    lines = [line for line in result.stderr.splitlines() if line]
    assert lines and all(line[:3] in ("<4>", "<6>", "<3>") for line in lines), result.stderr
    assert any("budget=team" in line for line in lines)


def test_a_dry_run_decides_but_writes_no_switch_and_sends_nothing(run_guardd, tmp_path, webhook):
    path = cfg(tmp_path, f'[[notifiers]]\nurl = "{webhook.url}"\n')
    LedgerWriter(tmp_path / "ledgers" / "a.jsonl").write({"id": "d", "model": "m", "cost": "5"})
    result = run_guardd("run", "--once", "--dry-run", "-c", str(path))
    assert result.returncode == 0 and "dry run" in result.stderr and "TRIPPED" in result.stderr
    assert not (tmp_path / "state" / "killswitch.json").exists() and webhook.bodies == []
    assert run_guardd("run", "--once", "-c", str(path)).returncode == 0  # the real run still announces it
    assert len(webhook.bodies) == 1 and (tmp_path / "state" / "killswitch.json").exists()


def test_report_by_label_puts_unlabelled_spend_in_the_null_group(run_guardd, tmp_path):
    path = cfg(tmp_path)
    writer = LedgerWriter(tmp_path / "ledgers" / "a.jsonl")
    writer.write({"ts": "2026-11-02T10:00:00Z", "id": "1", "model": "m", "cost": "0.25", "labels": {"team": "a"}})
    writer.write({"ts": "2026-11-02T11:00:00Z", "id": "2", "model": "m", "cost": "0.50"})
    assert run_guardd("ingest", str(tmp_path / "ledgers" / "a.jsonl"), "-c", str(path)).returncode == 0
    out = run_guardd(
        "report", "--by", "label:team", "--csv", "--since", "2026-11-01", "--until", "2026-11-03", "-c", str(path)
    ).stdout
    assert out.splitlines() == [
        "group,spent,events,errors,rate_limited,last_at",
        "null,0.500000,1,0,0,2026-11-02T11:00:00+00:00",
        "a,0.250000,1,0,0,2026-11-02T10:00:00+00:00",
    ]
    days = json.loads(
        run_guardd(
            "report", "--by", "day", "--json", "--since", "2026-11-01", "--until", "2026-11-03", "-c", str(path)
        ).stdout
    )
    assert [(r["group"], r["spent"]) for r in days["rows"]] == [("2026-11-02", "0.750000")]


def test_a_release_under_manual_release_holds_until_the_window_resets_not_forever(run_guardd, tmp_path):
    path = cfg(tmp_path, '[killswitch]\nrelease = "manual"\n')
    LedgerWriter(tmp_path / "ledgers" / "a.jsonl").write({"id": "m", "model": "m", "cost": "3"})
    assert run_guardd("run", "--once", "-c", str(path)).returncode == 0
    switch = json.loads((tmp_path / "state" / "killswitch.json").read_text())
    assert switch["scopes"]["team"]["tripped"] and switch["scopes"]["team"]["until"] is None
    assert run_guardd("killswitch", "release", "--budget", "team", "-c", str(path)).returncode == 0
    override = json.loads((tmp_path / "state" / "killswitch.json").read_text())["scopes"]["team"]["override"]
    assert override["state"] == "released" and override["until"] is not None
