"""The command line never shows a traceback for a user's mistake or a signal (issue 11)."""

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import guardd

PACKAGE = str(Path(guardd.__file__).parent) + os.sep

BUDGET = "[[budgets]]\nname = 'b'\ndaily = 5\n"


def write_config(tmp_path: Path, body: str = BUDGET, state: str = "state") -> Path:
    path = tmp_path / "guardd.toml"
    path.write_text(f"[guardd]\nstate_dir = '{state}'\n" + body)
    return path


def before_python_ran_guardd(err: str) -> bool:
    """An interrupt inside the interpreter's own start (``site``, ``runpy``), before any guardd module ran:
    no frame of the traceback is in guardd's own files."""
    return "Traceback" in err and PACKAGE not in err


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("GUARDD_", "OPENROUTER_"))}


def test_a_reader_that_goes_away_ends_the_output_quietly(run_guardd, tmp_path):
    cfg = write_config(tmp_path)
    for i in range(2):  # output to write (any amount: the pipe is closed before the first write)
        run_guardd("silence", "add", "--budget", "b", "--for", "1h", "--reason", f"r{i}", "-c", str(cfg))
    proc = subprocess.Popen(
        [sys.executable, "-m", "guardd", "history", "-c", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=env(),
    )
    proc.stdout.close()  # like `| head -0`: the reader is gone before guardd writes
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 141 and err == b""


@pytest.mark.parametrize("delay", [0.02, 0.08, 0.15, 0.25, 0.4, 0.6])
def test_ctrl_c_at_any_moment_exits_130_without_a_traceback(tmp_path, delay):
    cfg = write_config(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "guardd", "status", "-c", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=env(),
        text=True,
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if not before_python_ran_guardd(err):
        assert "Traceback" not in err and "Error" not in err, err
        assert proc.returncode in (130, -signal.SIGINT, 0), err  # 0: it finished first


@pytest.mark.parametrize("delay", [0.05, 0.3, 0.6, 1.0])
def test_ctrl_c_while_the_daemon_starts_exits_130_without_a_traceback(tmp_path, delay):
    cfg = write_config(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "guardd", "run", "-c", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=env(),
        text=True,
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if not before_python_ran_guardd(err):
        assert "Traceback" not in err, err
        assert proc.returncode in (130, -signal.SIGINT), err


def test_global_options_work_after_the_command(run_guardd, tmp_path):
    result = run_guardd("status", "--version")
    assert result.returncode == 0 and result.stdout.startswith("guardd ")


@pytest.fixture
def read_only():
    """Make a folder unwritable, even for root (chattr +i), and writable again afterwards."""
    frozen: list[Path] = []

    def freeze(folder: Path) -> None:
        paths = [folder, *folder.rglob("*")]
        if os.geteuid() != 0:
            for p in paths:
                p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
            frozen.extend(paths)
            return
        result = subprocess.run(["chattr", "-R", "+i", str(folder)], capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot make a folder read-only for root here (chattr: {result.stderr.strip()})")
        frozen.append(folder)

    yield freeze
    for p in frozen:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-R", "-i", str(p)], check=True)
        else:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


def _state_with_spend(run_guardd, tmp_path: Path) -> Path:
    ledger = tmp_path / "usage.jsonl"
    ledger.write_text('{"ts": "2026-11-02T10:00:00Z", "id": "g1", "model": "m", "cost": "0.5"}\n')
    cfg = write_config(tmp_path, BUDGET + "[[ledgers]]\npath = 'usage.jsonl'\n")
    assert run_guardd("run", "--once", "-c", str(cfg)).returncode == 0
    return cfg


@pytest.mark.parametrize(
    "command",
    [["status"], ["status", "--json"], ["report", "--since", "2026-11-01"], ["history"], ["check"], ["quarantine"]],
    ids=lambda c: " ".join(c),
)
def test_read_commands_work_on_a_read_only_state(run_guardd, tmp_path, read_only, command):
    cfg = _state_with_spend(run_guardd, tmp_path)
    read_only(tmp_path / "state")
    result = run_guardd(*command, "-c", str(cfg))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_a_writing_command_names_the_state_folder_that_is_not_writable(run_guardd, tmp_path, read_only):
    cfg = _state_with_spend(run_guardd, tmp_path)
    read_only(tmp_path / "state")
    result = run_guardd("killswitch", "trip", "--budget", "b", "-c", str(cfg))
    assert result.returncode == 1
    assert "not writable" in result.stderr and str(tmp_path / "state") in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize("command", [["run", "--once"], ["run"]], ids=lambda c: " ".join(c))
def test_the_daemon_on_a_state_folder_it_may_not_write_says_so_in_one_line(run_guardd, tmp_path, read_only, command):
    cfg = _state_with_spend(run_guardd, tmp_path)
    read_only(tmp_path / "state")
    result = run_guardd(*command, "-c", str(cfg))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "is not writable by" in result.stderr and str(tmp_path / "state") in result.stderr, result.stderr


def test_an_unopenable_database_is_one_line_without_event_loop_noise(run_guardd, tmp_path):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "guardd.db").mkdir()  # a folder where the database file should be
    cfg = write_config(tmp_path)
    for command in (["history"], ["killswitch", "trip"], ["status"]):
        result = run_guardd(*command, "-c", str(cfg))
        assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Event loop is closed" not in result.stderr and "Traceback" not in result.stderr


def test_ctrl_c_on_a_running_daemon_stops_it_with_130(tmp_path, daemon_factory):
    daemon = daemon_factory(write_config(tmp_path))
    daemon.start()
    daemon.proc.send_signal(signal.SIGINT)
    assert daemon.proc.wait(30) == 130
    daemon.close_log()
    assert "Traceback" not in daemon.log.read_text()
