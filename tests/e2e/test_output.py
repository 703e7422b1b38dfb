"""Output for people: local times to the second, money rounded for eyes (exact in JSON), plurals, no raw JSON."""

import json
import re
from datetime import UTC, datetime
from pathlib import Path

MICROSECONDS = re.compile(r"\d\d:\d\d:\d\d\.\d+")


def setup(tmp_path: Path, cost: str = "0.0000001234567") -> Path:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = {"ts": now, "id": "g1", "model": "m", "cost": cost}
    (tmp_path / "usage.jsonl").write_text(json.dumps(line) + "\n")
    cfg = tmp_path / "guardd.toml"
    cfg.write_text(
        "[guardd]\nstate_dir = 'state'\ntimezone = 'America/New_York'\n[[ledgers]]\npath = 'usage.jsonl'\n"
        "[[budgets]]\nname = 'b'\ndaily = 5\n"
    )
    return cfg


def test_status_for_people_has_local_times_to_the_second_and_plurals(run_guardd, tmp_path):
    cfg = setup(tmp_path)
    run_guardd("run", "--once", "-c", str(cfg))
    run_guardd("silence", "add", "--budget", "b", "--for", "1h", "-c", str(cfg))
    out = run_guardd("status", "-c", str(cfg)).stdout
    assert not MICROSECONDS.search(out), out
    assert "+00:00" not in out and "Z)" not in out, out
    assert "1 event," in out and "1 events" not in out, out


def test_status_is_not_coloured_when_piped(run_guardd, tmp_path):
    cfg = setup(tmp_path)
    run_guardd("run", "--once", "-c", str(cfg))
    assert "\x1b[" not in run_guardd("status", "-c", str(cfg)).stdout


def test_killswitch_show_is_for_people_unless_json_is_asked(run_guardd, tmp_path):
    cfg = setup(tmp_path)
    run_guardd("killswitch", "trip", "--budget", "b", "--reason", "test", "-c", str(cfg))
    human = run_guardd("killswitch", "show", "-c", str(cfg)).stdout
    assert not human.lstrip().startswith("{") and "TRIPPED" in human and "test" in human, human
    assert not MICROSECONDS.search(human)
    assert json.loads(run_guardd("killswitch", "show", "--json", "-c", str(cfg)).stdout)["tripped"] is True


def test_history_for_people_has_times_to_the_second(run_guardd, tmp_path):
    cfg = setup(tmp_path)
    run_guardd("silence", "add", "--budget", "b", "--for", "1h", "-c", str(cfg))
    out = run_guardd("history", "-c", str(cfg)).stdout
    assert out.strip() and not MICROSECONDS.search(out), out


def test_perfdata_has_at_most_six_decimals(run_guardd, tmp_path):
    cfg = setup(tmp_path)
    run_guardd("run", "--once", "-c", str(cfg))
    line = run_guardd("check", "-c", str(cfg)).stdout
    values = re.findall(r"=([-\d.]+);", line)
    assert values and all(len(v.partition(".")[2]) <= 6 for v in values), line


def test_money_under_a_cent_has_four_significant_digits(run_guardd, tmp_path):
    cfg = setup(tmp_path, cost="0.00123456")
    run_guardd("run", "--once", "-c", str(cfg))
    assert "$0.001235" in run_guardd("status", "-c", str(cfg)).stdout


def _on_a_terminal(args: list[str], cwd: Path, extra_env: dict[str, str]) -> str:
    import os
    import pty
    import subprocess
    import sys

    main, child = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUARDD_", "NO_COLOR"))} | extra_env
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen([sys.executable, "-m", "guardd", *args], stdout=child, stderr=child, cwd=cwd, env=env)
    os.close(child)
    out = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    proc.wait(60)
    os.close(main)
    return out.decode("utf-8", "replace")


def test_status_is_coloured_on_a_terminal_unless_no_color_is_set(run_guardd, tmp_path):
    cfg = setup(tmp_path)
    run_guardd("run", "--once", "-c", str(cfg))
    assert "\x1b[" in _on_a_terminal(["status", "-c", str(cfg)], tmp_path, {})
    assert "\x1b[" not in _on_a_terminal(["status", "-c", str(cfg)], tmp_path, {"NO_COLOR": "1"})


def test_a_failing_notifier_is_named_once(run_guardd, tmp_path):
    cfg = tmp_path / "guardd.toml"
    cfg.write_text("[guardd]\nstate_dir = 'state'\n[[notifiers]]\nurl = 'json://127.0.0.1:9/hook'\n")
    out = run_guardd("notify", "test", "-c", str(cfg)).stdout
    assert out.startswith("FAILED") and out.count("127.0.0.1:9") == 1, out
