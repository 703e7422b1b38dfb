"""A ledger file the daemon cannot read is never OK: its spend is not counted, so status names it and check is
UNKNOWN until the daemon reads it (contract §7: unknown states said loudly, never OK or $0)."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime

import httpx
import pytest

from guardd.adapters.instance_lock import read_record
from tests.e2e.conftest import free_port, wait_for

# root reads any file whatever its mode: the daemon runs without the capabilities that let it (as a real
# unprivileged user would be refused). Not root: a 000 file is refused anyway.
PREFIX = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
pytestmark = pytest.mark.skipif(bool(PREFIX) and shutil.which("setpriv") is None, reason="no setpriv (util-linux)")


def line(i: int, cost: str) -> str:
    now = datetime.now(UTC).isoformat()
    return json.dumps({"ts": now, "id": f"gen-{i}", "model": "m/a", "cost": cost}) + "\n"


def test_an_unreadable_ledger_file_is_named_by_status_and_makes_check_unknown(run_guardd, tmp_path, daemon_factory):
    ledgers = tmp_path / "ledgers"
    ledgers.mkdir()
    (ledgers / "a.jsonl").write_text(line(1, "1.00"))
    secret = ledgers / "b.jsonl"
    secret.write_text(line(2, "50.00"))  # this file alone is over the limit
    secret.chmod(0)
    config = tmp_path / "guardd.toml"
    config.write_text(
        '[guardd]\nstate_dir = "state"\nevaluate_every = "10s"\n[[ledgers]]\npath = "ledgers/*.jsonl"\n'
        '[[budgets]]\nname = "team"\nmonthly = 10\nforecast = false\n'
    )
    daemon = daemon_factory(config)
    daemon.prefix = PREFIX
    daemon.start()

    def checked():
        result = run_guardd("check", "-c", str(config))
        return result if "cannot be read" in result.stdout else None

    result = wait_for(checked, timeout=30)
    assert result.returncode == 3, result.stdout
    assert result.stdout.startswith("GUARDD UNKNOWN - "), result.stdout
    assert f"{secret} cannot be read (Permission denied): its spend is not counted" in result.stdout
    doc = json.loads(run_guardd("status", "--json", "-c", str(config)).stdout)
    assert doc["ledger_errors"] == [{"path": str(secret), "error": "Permission denied"}]
    text = run_guardd("status", "-c", str(config)).stdout
    assert f"{secret}: CANNOT BE READ (Permission denied): its spend is not counted" in text

    secret.chmod(0o644)  # the operator fixes it: the spend is counted and the problem goes away
    tripped = wait_for(lambda: (r := run_guardd("check", "-c", str(config))).returncode == 2 and r, timeout=30)
    assert "cannot be read" not in tripped.stdout
    assert json.loads(run_guardd("status", "--json", "-c", str(config)).stdout)["ledger_errors"] == []
    assert daemon.stop() == 0


def test_an_unreadable_ledger_file_makes_the_ledger_source_stale_on_metrics(tmp_path, daemon_factory):
    ledgers = tmp_path / "ledgers"
    ledgers.mkdir()
    secret = ledgers / "b.jsonl"
    secret.write_text(line(2, "0.50"))
    secret.chmod(0)
    port = free_port()
    config = tmp_path / "guardd.toml"
    config.write_text(
        '[guardd]\nstate_dir = "state"\nevaluate_every = "1s"\n[[ledgers]]\npath = "ledgers/*.jsonl"\n'
        f'[[budgets]]\nname = "team"\nmonthly = 10\nforecast = false\n[http]\nlisten = "127.0.0.1:{port}"\n'
    )
    daemon = daemon_factory(config)
    daemon.prefix = PREFIX
    daemon.start()
    stale = 'guardd_source_stale{source="ledger"} 1.0'
    fresh = 'guardd_source_stale{source="ledger"} 0.0'

    def metrics() -> str:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        except httpx.HTTPError:
            return ""

    wait_for(lambda: read_record(tmp_path / "state").ledger_errors, timeout=30)
    assert stale in metrics()
    secret.chmod(0o644)  # readable again: the source is fresh once the daemon has read it
    wait_for(lambda: fresh in metrics(), timeout=30)
    assert daemon.stop() == 0
