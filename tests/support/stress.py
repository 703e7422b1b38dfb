"""The stress scenario of issue 10, shared by ``tests/e2e/test_stress.py`` and ``bench/stress.py``.

A real ``guardd run`` subprocess with every job due every second: evaluation, delivery, OpenRouter polling (against
:class:`~tests.support.fake_openrouter.FakeOpenRouter`, with a management key and the key switch on), a price
refresh, a ``json://`` notifier posting to a local HTTP server, a burn-rate budget that trips and releases again and
again, and a writer appending canonical lines at a fixed rate. When the writer is done, the harness waits until the
daemon has stored every line (or a deadline passes), stops it with SIGTERM and compares ``guardd report --json``
with what was written: the exact sum of the costs and the number of lines. Needs the ``test`` extra.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from guardd.client import LedgerWriter
from tests.support.fake_openrouter import FakeOpenRouter

API_KEY = "sk-or-v1-" + "a" * 60 + "1f2e"
MANAGEMENT_KEY = "sk-or-v1-" + "b" * 60 + "9c8d"
ERROR_MARKERS = (" error ", " critical ", "Traceback", "<3>", "<2>")


@dataclass
class StressResult:
    """What a stress run wrote, what guardd stored, and what its log said."""

    seconds: float
    written: int
    stored: int
    expected_total: Decimal
    reported_total: Decimal
    notifications: int
    error_lines: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return self.reported_total == self.expected_total and self.stored == self.written

    def summary(self) -> str:
        return (
            f"{self.seconds:.0f} s: lines written {self.written}, stored {self.stored}; total "
            f"{self.reported_total} vs {self.expected_total} ({'exact' if self.exact else 'NOT exact'}); "
            f"notifications {self.notifications}; error lines in the log {len(self.error_lines)}"
        )


class _Hook:
    """A local HTTP server that accepts every POST (the ``json://`` notifier's target) and counts them."""

    def __init__(self) -> None:
        self.count = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.count += 1
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_config(workdir: Path, base_url: str, hook_port: int) -> Path:
    """Write the stress configuration into ``workdir`` and return its path."""
    path = workdir / "guardd.toml"
    path.write_text(f"""
[guardd]
state_dir = "state"
evaluate_every = "1s"
stale_after = "30s"

[openrouter]
api_key = "{API_KEY}"
management_key = "{MANAGEMENT_KEY}"
base_url = "{base_url}"
poll_every = "1s"
timeout = "5s"
low_balance = 1000
refresh_prices_every = "1s"

[[ledgers]]
path = "ledgers/*.jsonl"

[[budgets]]
name = "everything"
daily = 0.50
warn_at = [50, 80, 90]

[[budgets]]
name = "burst"
match = {{ model = "openai/*" }}
rolling = [{{ window = "5s", limit = 0.13 }}]  # about what 5 s of the writer cost: trips and releases
warn_at = [50]

[[notifiers]]
url = "json://127.0.0.1:{hook_port}/hook"
min_severity = "info"

[alerts]
repeat_every = "1s"
retry_after = "1s"

[killswitch]
disable_openrouter_keys = true
""")
    path.chmod(0o600)
    (workdir / "ledgers").mkdir(exist_ok=True)
    return path


def stored_events(db: Path) -> int:
    """Events committed so far (0 when the database does not exist yet)."""
    if not db.exists():
        return 0
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    except sqlite3.Error:
        return 0


def error_lines(log: Path) -> list[str]:
    """The lines of a daemon log at error level or worse, and tracebacks."""
    return [line for line in log.read_text(errors="replace").splitlines() if any(m in line for m in ERROR_MARKERS)]


def run_stress(workdir: Path, seconds: float = 30.0, rate: float = 50.0, catch_up: float = 60.0) -> StressResult:
    """Run the scenario in ``workdir`` for ``seconds`` of writing at ``rate`` lines/s and return the result."""
    rng = random.Random(10)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUARDD_", "OPENROUTER_"))}
    hook = _Hook()
    try:
        with FakeOpenRouter() as fake:
            fake.state.management_key = MANAGEMENT_KEY
            fake.add_key(API_KEY, name="prod", usage_daily="0.10", limit="1000")
            config = write_config(workdir, fake.base_url, hook.port)
            log = workdir / "daemon.log"
            with log.open("w") as handle:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "guardd", "run", "-c", str(config)],
                    cwd=workdir,
                    env=env,
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                )
            try:
                written, expected = _write(workdir, seconds, rate, rng)
                db = workdir / "state" / "guardd.db"
                deadline = time.monotonic() + catch_up
                while stored_events(db) < written and time.monotonic() < deadline and proc.poll() is None:
                    time.sleep(0.2)
                time.sleep(2.5)  # a few more cycles of every job with nothing new to read
            finally:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(30)
            report = subprocess.run(
                [sys.executable, "-m", "guardd", "report", "--json", "--since", "2000-01-01", "-c", str(config)],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            )
            doc = json.loads(report.stdout)
            return StressResult(
                seconds,
                written,
                int(doc["events"]),
                expected,
                Decimal(doc["total"]),
                hook.count,
                error_lines(log),
            )
    finally:
        hook.close()


def _write(workdir: Path, seconds: float, rate: float, rng: random.Random) -> tuple[int, Decimal]:
    writer = LedgerWriter(workdir / "ledgers" / "app.jsonl", labels={"team": "stress"})
    models = ("openai/gpt-4o-mini", "anthropic/claude-3.5-sonnet")
    written, total = 0, Decimal(0)
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < seconds:
        due = int(elapsed * rate) + 1
        while written < due:
            cost = Decimal(rng.randint(1, 2000)) / 1_000_000
            writer.write({"id": f"stress-{written}", "model": models[written % 2], "cost": cost, "key": "prod"})
            written += 1
            total += cost
        time.sleep(0.005)
    return written, total
