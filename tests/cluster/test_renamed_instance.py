"""A renamed instance (the host name changed, a container restarted under a new one) must not read this host's
ledgers again under its new name: lines without an id are keyed by instance, so it would count them twice. It
refuses to start, naming the old instance, until its name is set back (review F13)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path


def setup(tmp_path: Path, url: str) -> Path:
    now = datetime.now(UTC).isoformat()
    lines = [
        {"ts": now, "model": "m", "cost": "1"},
        {"ts": now, "model": "m", "cost": "2"},
        {"ts": now, "id": "gen-4", "model": "m", "cost": "4"},
    ]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return named(tmp_path, url, "inst-d")


def named(tmp_path: Path, url: str, instance: str) -> Path:
    cfg = tmp_path / "guardd.toml"
    cfg.write_text(
        f'[guardd]\nstate_dir = "state"\ninstance = "{instance}"\n[store]\nurl = "{url}"\n'
        '[[ledgers]]\npath = "a.jsonl"\n[[budgets]]\nname = "all"\ndaily = 100\nforecast = false\n'
    )
    return cfg


def total(run_guardd, cfg: Path) -> str:
    return str(json.loads(run_guardd("report", "--json", "-c", str(cfg)).stdout)["total"])


def test_a_renamed_instance_refuses_to_read_the_ledgers_of_its_old_name_again(run_guardd, tmp_path, pg_url):
    cfg = setup(tmp_path, pg_url)
    assert run_guardd("run", "--once", "-c", str(cfg)).returncode == 0
    assert total(run_guardd, cfg) == "7.000000"
    cfg = named(tmp_path, pg_url, "inst-e")
    refused = run_guardd("run", "--once", "-c", str(cfg))
    assert refused.returncode == 1, refused.stderr
    assert "inst-d" in refused.stderr and 'instance = "inst-d"' in refused.stderr
    assert total(run_guardd, cfg) == "7.000000"


def test_set_back_to_its_old_name_it_reads_on_counting_nothing_twice(run_guardd, tmp_path, pg_url):
    cfg = setup(tmp_path, pg_url)
    assert run_guardd("run", "--once", "-c", str(cfg)).returncode == 0
    assert run_guardd("run", "--once", "-c", str(named(tmp_path, pg_url, "inst-e"))).returncode == 1
    cfg = named(tmp_path, pg_url, "inst-d")
    with (tmp_path / "a.jsonl").open("a") as ledger:
        ledger.write(json.dumps({"ts": datetime.now(UTC).isoformat(), "model": "m", "cost": "8"}) + "\n")
    assert run_guardd("run", "--once", "-c", str(cfg)).returncode == 0
    assert total(run_guardd, cfg) == "15.000000"
