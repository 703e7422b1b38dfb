import json
import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "guardd.toml"
    path.write_text(body)
    return path


def test_the_shipped_example_config_is_valid(run_guardd):
    result = run_guardd("config", "check", "-c", str(ROOT / "config.example.toml"))
    assert result.returncode == 0, result.stderr
    assert "sk-or-v1" not in result.stdout


def test_a_broken_config_names_every_bad_key_and_exits_78(run_guardd, tmp_path):
    cfg = write_config(tmp_path, '[guardd]\ntimezone = "Mars/Base"\n[[budgets]]\nname = "a"\ndaily = -1\n')
    result = run_guardd("-c", str(cfg), "status")
    assert result.returncode == 78
    assert "guardd.timezone" in result.stderr and "budgets[0].daily: must be greater than 0" in result.stderr


def test_a_missing_config_given_with_c_is_an_error(run_guardd, tmp_path):
    assert run_guardd("status", "-c", str(tmp_path / "nope.toml")).returncode == 78


def test_ingest_twice_stores_once_and_report_total_is_exact(run_guardd, tmp_path):
    ledger = tmp_path / "usage.jsonl"
    lines = [
        json.dumps({"ts": "2026-11-02T10:00:00Z", "id": f"g{i}", "model": "m", "cost": "0.000001"}) for i in range(3000)
    ]
    ledger.write_text("\n".join([*lines, "not json", '{"ts": "2026-11-02T10:00:00Z", "cost": -5}']) + "\n")
    cfg = write_config(tmp_path, "[guardd]\nstate_dir = 'state'\n")
    first = json.loads(run_guardd("ingest", str(ledger), "--json", "-c", str(cfg)).stdout)
    second = json.loads(run_guardd("ingest", str(ledger), "--json", "-c", str(cfg)).stdout)
    assert (first["read"], first["stored"], first["quarantined"]) == (3002, 3000, 2)
    assert (second["stored"], second["duplicates"]) == (0, 3000)
    report = json.loads(
        run_guardd("report", "--json", "--since", "2026-11-01", "--until", "2026-12-01", "-c", str(cfg)).stdout
    )
    assert report["total"] == "0.003000" and report["events"] == 3000


def test_the_demo_runs_and_check_reports_ok(run_guardd, tmp_path):
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns(".guardd"))
    cfg = str(tmp_path / "examples" / "demo.toml")
    assert run_guardd("run", "--once", "-c", cfg).returncode == 0
    status = json.loads(run_guardd("status", "--json", "-c", cfg).stdout)
    assert status["schema"] == 1 and {b["name"] for b in status["budgets"]} == {"everything", "team-search"}
    assert status["killswitch"]["tripped"] is False
    assert run_guardd("check", "-c", cfg).stdout.startswith("GUARDD")


def test_a_manual_trip_blocks_clients_until_released(run_guardd, tmp_path):
    from guardd.client import BudgetExceeded, KillSwitch

    cfg = write_config(tmp_path, "[guardd]\nstate_dir = 'state'\n[[budgets]]\nname = 'b'\ndaily = 5\n")
    assert run_guardd("killswitch", "trip", "--budget", "b", "--reason", "test", "-c", str(cfg)).returncode == 0
    switch = KillSwitch(tmp_path / "state" / "killswitch.json", budgets=["b"])
    try:
        switch.check()
        raise AssertionError("expected BudgetExceeded")
    except BudgetExceeded as exc:
        assert "test" in str(exc)
    assert run_guardd("killswitch", "release", "--budget", "b", "-c", str(cfg)).returncode == 0
    switch.check()
    history = json.loads(run_guardd("history", "--json", "-c", str(cfg)).stdout)
    assert {h["kind"] for h in history} >= {"override", "switch"}
    assert os.environ.get("USER", "") in json.dumps(history) or history
