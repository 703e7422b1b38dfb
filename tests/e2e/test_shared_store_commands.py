"""Contract §9: with ``[store] url = "postgresql://…"`` the daemon and every command run on the shared store, and a
single instance behaves as a single host would — real ``guardd`` processes, a real PostgreSQL schema of the test's
own, nothing of the state in ``state_dir`` but the lock and the local switch file."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from tests.e2e.conftest import wait_for

NOW = datetime.now(UTC).replace(microsecond=0)


def at(seconds_ago: int) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).isoformat().replace("+00:00", "Z")


def write(tmp_path: Path, pg_url: str, extra: str = "") -> Path:
    ledger = tmp_path / "ledgers" / "app.jsonl"
    ledger.parent.mkdir(exist_ok=True)
    lines = [
        {"ts": at(60 - i), "id": f"g{i}", "model": "openai/gpt-4o", "cost": "0.25", "prompt_tokens": 1000}
        for i in range(6)
    ]
    lines.append({"ts": at(50), "id": "g-err", "model": "openai/gpt-4o", "cost": "0", "status": 503})
    ledger.write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json at all\n")
    path = tmp_path / "guardd.toml"
    path.write_text(f"""
[store]
url = "{pg_url}"
[guardd]
state_dir = "state"
instance = "host-a"
[[ledgers]]
path = "{ledger}"
[[budgets]]
name = "team"
monthly = 1
suggest = ["openai/gpt-4o-mini"]
[[notifiers]]
url = "json://127.0.0.1:9/nowhere"
min_severity = "info"
{extra}
""")
    return path


def test_every_command_answers_from_the_shared_store(run_guardd, tmp_path, pg_url):
    cfg = str(write(tmp_path, pg_url))
    since = ["--since", "1d"]

    ingest = json.loads(run_guardd("ingest", str(tmp_path / "ledgers" / "app.jsonl"), "--json", "-c", cfg).stdout)
    assert (ingest["read"], ingest["stored"], ingest["quarantined"]) == (8, 7, 1)
    with psycopg.connect(pg_url) as conn:  # it is in PostgreSQL, exact, and nothing went to a SQLite file
        total, count = conn.execute("SELECT sum(cost)::text, count(*) FROM events").fetchone()
    assert (total.rstrip("0"), count) == ("1.5", 7)
    assert not (tmp_path / "state" / "guardd.db").exists()

    report = json.loads(run_guardd("report", "--json", *since, "-c", cfg).stdout)
    assert report["total"] == "1.500000" and report["events"] == 7

    assert run_guardd("run", "--once", "-c", cfg).returncode == 0  # evaluates: $1.50 of $1 trips the budget
    status = json.loads(run_guardd("status", "--json", "-c", cfg).stdout)
    [team] = status["budgets"]
    assert team["tripped"] is True and team["windows"][0]["spent"] == "1.50"
    assert status["killswitch"]["tripped"] is True and status["outbox_pending"] >= 1
    # run --once read the ledger again: every event was stored by ingest already, the bad line set aside again
    assert [(x["events"], x["quarantined"]) for x in status["ledgers"]] == [(0, 1)]
    assert run_guardd("check", "-c", cfg).returncode == 2

    quarantine = json.loads(run_guardd("quarantine", "--json", "-c", cfg).stdout)
    assert [q["reason"] for q in quarantine] and quarantine[0]["file"].endswith("app.jsonl")

    silence = run_guardd("silence", "add", "--budget", "team", "--for", "1h", "--reason", "deploy", "-c", cfg)
    assert silence.returncode == 0, silence.stderr
    listed = json.loads(run_guardd("silence", "list", "--json", "-c", cfg).stdout)
    assert [s["reason"] for s in listed] == ["deploy"]
    assert run_guardd("silence", "remove", str(listed[0]["id"]), "-c", cfg).returncode == 0

    # Only a leader decides the switch: with no guardd running, the release is recorded and waits for one.
    released = run_guardd("killswitch", "release", "--budget", "team", "--reason", "ok'd", "-c", cfg)
    assert released.returncode == 75, released.stderr
    assert "recorded" in released.stderr and "no guardd instance runs" in released.stderr
    assert json.loads(run_guardd("status", "--json", "-c", cfg).stdout)["budgets"][0]["tripped"] is True
    assert run_guardd("run", "--once", "-c", cfg).returncode == 0  # a leader, which applies it
    assert json.loads(run_guardd("status", "--json", "-c", cfg).stdout)["budgets"][0]["tripped"] is False

    history = json.loads(run_guardd("history", "--json", "-c", cfg).stdout)
    kinds = {h["kind"] for h in history}
    assert {"switch", "override", "silence", "alert"} <= kinds, kinds

    advice = run_guardd("advise", "--budget", "team", "--json", *since, "-c", cfg)
    assert advice.returncode == 0, advice.stderr
    assert json.loads(advice.stdout)["rows"][0]["model"] == "openai/gpt-4o"

    assert run_guardd("config", "check", "-c", cfg).returncode == 0


def test_the_daemon_runs_on_the_shared_store_and_keeps_reading_its_ledger(daemon_factory, run_guardd, tmp_path, pg_url):
    cfg = write(tmp_path, pg_url)
    daemon = daemon_factory(cfg)
    daemon.start()
    try:
        switch = tmp_path / "state" / "killswitch.json"
        wait_for(lambda: switch.exists() and json.loads(switch.read_text())["tripped"])
        with (tmp_path / "ledgers" / "app.jsonl").open("a") as ledger:
            ledger.write(json.dumps({"ts": at(0), "id": "late", "model": "m", "cost": "2"}) + "\n")

        def stored() -> bool:
            with psycopg.connect(pg_url) as conn:
                return conn.execute("SELECT count(*) FROM events WHERE k = 'g:late'").fetchone() == (1,)

        wait_for(stored)
        status = json.loads(run_guardd("status", "--json", "-c", str(cfg)).stdout)
        assert status["store"]["ok"] is True and status["guard"]["alive"] is True
        assert [(x["events"], x["quarantined"]) for x in status["ledgers"]] == [(8, 1)]
    finally:
        assert daemon.stop() == 0
