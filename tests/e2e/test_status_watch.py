"""``guardd status --watch`` in a pseudo-terminal: a budget crosses its warning live, the guard goes down and comes
back, and Ctrl-C ends the view cleanly."""

from __future__ import annotations

import fcntl
import os
import re
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

from guardd.client import LedgerWriter
from tests.e2e.conftest import wait_for

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")
HEADER = "guardd status --watch"


class Terminal:
    """A child process on a pseudo-terminal of 140x40, its screen output collected as text."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GUARDD_", "OPENROUTER_", "COLUMNS", "LINES"))}
        env["TERM"] = "xterm-256color"

        def controlling_tty() -> None:
            os.setsid()
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)  # so that ^C typed on it is SIGINT, as in a real terminal

        self.proc = subprocess.Popen(
            args, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave, preexec_fn=controlling_tty
        )
        os.close(slave)
        self.master = master
        self.raw = bytearray()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.raw += chunk

    def text(self) -> str:
        return ANSI.sub(b"", bytes(self.raw)).decode("utf-8", "replace")

    def last_frame(self) -> str:
        text = self.text()
        return text[text.rfind(HEADER) :] if HEADER in text else ""

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        os.close(self.master)


def test_status_watch_shows_a_budget_crossing_its_warning_live_and_survives_a_daemon_restart(tmp_path, daemon_factory):
    (tmp_path / "ledgers").mkdir()
    config = tmp_path / "guardd.toml"
    config.write_text(
        '[guardd]\nstate_dir = "state"\nevaluate_every = "1s"\nstale_after = "3s"\n'
        '[[ledgers]]\npath = "ledgers/*.jsonl"\n'
        '[[budgets]]\nname = "team"\ndaily = 1\nwarn_at = [50]\nforecast = false\n'
    )
    daemon = daemon_factory(config)
    daemon.start()
    term = Terminal([sys.executable, "-m", "guardd", "status", "--watch", "--every", "1s", "-c", str(config)], tmp_path)
    try:
        wait_for(lambda: "team" in term.last_frame() and "OK" in term.last_frame(), timeout=60)
        LedgerWriter(tmp_path / "ledgers" / "a.jsonl").write({"id": "x", "model": "m", "cost": "0.60"})
        wait_for(lambda: "WARNING" in term.last_frame() and "$0.60" in term.last_frame(), timeout=60)
        daemon.stop()
        wait_for(lambda: "GUARD DOWN" in term.last_frame(), timeout=60)
        daemon.start()
        wait_for(lambda: "GUARD DOWN" not in term.last_frame() and "WARNING" in term.last_frame(), timeout=60)
        print(term.last_frame())
        term.type(b"\x03")  # Ctrl-C
        assert term.proc.wait(30) == 0
        assert "Traceback" not in term.text()
    finally:
        term.close()


def test_every_without_watch_or_without_a_unit_is_a_usage_error(run_guardd, tmp_path):
    config = tmp_path / "guardd.toml"
    config.write_text('[guardd]\nstate_dir = "state"\n')
    assert run_guardd("status", "--every", "1s", "-c", str(config)).returncode == 2
    assert run_guardd("status", "--watch", "--every", "5", "-c", str(config)).returncode == 2
