"""Issue 10's stress scenario for a chosen time, and SIGTERM's latency during a large start-up backlog.

    python bench/stress.py [--seconds 120] [--rate 50] [--backlog 1000000]

The scenario (``tests.support.stress``): ``guardd run`` with every job due every second — evaluation, delivery,
OpenRouter polled every 1 s against the stand-in with a management key and the key switch on, a price refresh, a
``json://`` notifier to a local HTTP server, a burn-rate budget that trips and releases — while a writer appends
``--rate`` lines/s for ``--seconds``. Prints lines written, stored, whether the report's total is exact, the
notifications received and the error lines in the daemon's log.

Then (unless ``--backlog 0``) it writes ``--backlog`` lines, starts ``guardd run`` on them, sends SIGTERM once the
first batch is stored, and prints how long the daemon took to exit and how much of the backlog it had stored.
Needs the ``test`` extra.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root: tests.support

from tests.support.stress import run_stress, stored_events


def sigterm_during_backlog(workdir: Path, lines: int) -> str:
    (workdir / "ledgers").mkdir()
    (workdir / "guardd.toml").write_text(
        '[guardd]\nstate_dir = "state"\n[[ledgers]]\npath = "ledgers/*.jsonl"\n[[budgets]]\nname = "all"\ndaily = 1e9\n'
    )
    rng = random.Random(1)
    ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with (workdir / "ledgers" / "app.jsonl").open("w") as f:
        f.writelines(
            f'{{"ts":"{ts}","id":"b-{i}","model":"m","cost":"0.{rng.randint(1, 999_999):06d}"}}\n' for i in range(lines)
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUARDD_", "OPENROUTER_"))}
    with (workdir / "daemon.log").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "guardd", "run", "-c", "guardd.toml"], cwd=workdir, env=env, stdout=log, stderr=log
        )
    db = workdir / "state" / "guardd.db"
    while stored_events(db) == 0 and proc.poll() is None:
        time.sleep(0.05)
    asked = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(60)
    took = time.monotonic() - asked
    return f"SIGTERM during a {lines}-line backlog: exit {code} after {took:.2f} s, {stored_events(db)} lines stored"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--backlog", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = run_stress(Path(tmp), seconds=args.seconds, rate=args.rate)
        print(result.summary())
        for line in result.error_lines[:10]:
            print("  ", line[:300])
    if args.backlog:
        with tempfile.TemporaryDirectory() as tmp:
            print(sigterm_during_backlog(Path(tmp), args.backlog))
    return 0 if result.exact and not result.error_lines else 1


if __name__ == "__main__":
    sys.exit(main())
