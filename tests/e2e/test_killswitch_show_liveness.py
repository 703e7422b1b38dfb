"""``guardd killswitch show`` never reads a dead guard's switch as all clear (contract §3, §7): when the document's
``expires_at`` has passed, or there is no document, it says ``GUARD DOWN`` first and exits 3, as ``check`` is
UNKNOWN; while the guard is alive it exits 0."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path


def configured(tmp_path: Path) -> Path:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    (tmp_path / "usage.jsonl").write_text(json.dumps({"ts": now, "id": "g1", "model": "m", "cost": "0.5"}) + "\n")
    cfg = tmp_path / "guardd.toml"
    cfg.write_text(
        "[guardd]\nstate_dir = 'state'\n[[ledgers]]\npath = 'usage.jsonl'\n[[budgets]]\nname = 'b'\ndaily = 5\n"
    )
    return cfg


def expire(switch: Path) -> None:
    """Make the switch file's heartbeat an hour old, as a daemon killed an hour ago left it."""
    doc = json.loads(switch.read_text())
    ago = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    doc["heartbeat_at"], doc["expires_at"] = ago.isoformat(), (ago + timedelta(minutes=5)).isoformat()
    switch.write_text(json.dumps(doc))


def test_killswitch_show_is_0_while_the_guard_is_alive(run_guardd, tmp_path):
    cfg = configured(tmp_path)
    assert run_guardd("run", "--once", "-c", str(cfg)).returncode == 0

    done = run_guardd("killswitch", "show", "-c", str(cfg))

    assert done.returncode == 0, done.stdout
    assert "GUARD DOWN" not in done.stdout and "open" in done.stdout


def test_killswitch_show_says_the_guard_is_down_after_expires_at(run_guardd, tmp_path):
    cfg = configured(tmp_path)
    run_guardd("run", "--once", "-c", str(cfg))
    expire(tmp_path / "state" / "killswitch.json")

    done = run_guardd("killswitch", "show", "-c", str(cfg))

    assert done.returncode == 3, done.stdout
    assert done.stdout.startswith("GUARD DOWN: guardd is not running"), done.stdout


def test_killswitch_show_json_prints_the_document_and_exits_3_when_the_guard_is_down(run_guardd, tmp_path):
    cfg = configured(tmp_path)
    run_guardd("run", "--once", "-c", str(cfg))
    expire(tmp_path / "state" / "killswitch.json")

    done = run_guardd("killswitch", "show", "--json", "-c", str(cfg))

    assert done.returncode == 3
    assert json.loads(done.stdout)["tripped"] is False
    assert "GUARD DOWN" in done.stderr


def test_killswitch_show_without_a_switch_file_says_the_guard_is_down(run_guardd, tmp_path):
    cfg = configured(tmp_path)

    done = run_guardd("killswitch", "show", "-c", str(cfg))

    assert done.returncode == 3, done.stdout
    assert "GUARD DOWN" in done.stdout and "no kill-switch file yet" in done.stdout
