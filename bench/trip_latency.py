"""Append → kill-switch latency, and the cost of KillSwitch.check().

    python bench/trip_latency.py [--trials 50] [--check-only]

Starts ``guardd run`` on a budget of $1/day, and for each trial appends a line that crosses it, measures the time
until the switch file says tripped, then lets the next trial start on a fresh budget name (a new config and
state) so every trial crosses from below. Prints p50/p99 in ms, then ``KillSwitch.check()`` per call in µs on an
unchanged file, and the idle daemon's RSS with 10 ledgers.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from guardd.client import KillSwitch, LedgerWriter


def start(workdir: Path, ledgers: int = 1) -> subprocess.Popen[bytes]:
    (workdir / "ledgers").mkdir()
    blocks = "".join(f'[[ledgers]]\npath = "ledgers/app{i}.jsonl"\n' for i in range(ledgers))
    (workdir / "guardd.toml").write_text(
        f'[guardd]\nstate_dir = "state"\n{blocks}[[budgets]]\nname = "b"\ndaily = 1\nforecast = false\n'
    )
    for i in range(ledgers):
        (workdir / "ledgers" / f"app{i}.jsonl").touch()
    notify = str(workdir / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(notify)
    env = dict(os.environ, NOTIFY_SOCKET=notify)
    proc = subprocess.Popen(
        [sys.executable, "-m", "guardd", "run", "-c", str(workdir / "guardd.toml")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sock.settimeout(30)
    while b"READY=1" not in sock.recv(4096):
        pass
    sock.close()
    return proc


def trial(workdir: Path) -> float:
    proc = start(workdir)
    switch = workdir / "state" / "killswitch.json"
    try:
        LedgerWriter(workdir / "ledgers" / "app0.jsonl").write({"id": "below", "model": "m", "cost": "0.95"})
        time.sleep(0.3)
        assert not json.loads(switch.read_text())["tripped"]
        t0 = time.perf_counter()
        LedgerWriter(workdir / "ledgers" / "app0.jsonl").write({"id": "cross", "model": "m", "cost": "0.10"})
        while True:
            try:
                if json.loads(switch.read_text())["tripped"]:
                    return (time.perf_counter() - t0) * 1000
            except (OSError, ValueError):
                pass
            time.sleep(0.0005)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def idle_rss(workdir: Path) -> tuple[float, float]:
    proc = start(workdir, ledgers=10)
    try:
        time.sleep(3)
        ticks = os.sysconf("SC_CLK_TCK")

        def cpu() -> float:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / ticks

        c0, t0 = cpu(), time.monotonic()
        time.sleep(20)
        cpu_pct = (cpu() - c0) / (time.monotonic() - t0) * 100
        rss = (
            next(
                int(line.split()[1])
                for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                if line.startswith("VmRSS")
            )
            / 1024
        )
        return rss, cpu_pct
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def check_cost(n: int = 200_000) -> None:
    """``KillSwitch.check()`` per call on an unchanged file: a live document (the fast path) and a dead guard."""
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "killswitch.json"
        for label, beat in (("live guard", now), ("dead guard, allowing", now - timedelta(hours=1))):
            path.write_text(
                json.dumps(
                    {
                        "schema": 1,
                        "tripped": False,
                        "heartbeat_at": beat.isoformat(),
                        "expires_at": (beat + timedelta(minutes=30)).isoformat(),
                        "scopes": {f"b{i}": {"tripped": False, "headroom": "1.00"} for i in range(5)},
                    }
                )
            )
            switch = KillSwitch(path, budgets=["b1"])
            switch.check()
            runs = []
            for _ in range(5):
                t0 = time.perf_counter()
                for _ in range(n):
                    switch.check()
                runs.append((time.perf_counter() - t0) / n * 1e6)
            print(
                f"KillSwitch.check() on an unchanged file, {label}: median {statistics.median(runs):.2f} µs per call "
                f"(5 runs of {n}: {', '.join(f'{r:.2f}' for r in runs)})"
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--check-only", action="store_true", help="only the cost of KillSwitch.check()")
    args = ap.parse_args()
    if args.check_only:
        logging.disable(logging.WARNING)  # the dead-guard warning, once, is not what is measured
        check_cost()
        return
    latencies = []
    for _ in range(args.trials):
        with tempfile.TemporaryDirectory() as tmp:
            latencies.append(trial(Path(tmp)))
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"append -> switch tripped: p50 {statistics.median(latencies):.1f} ms, p99 {p99:.1f} ms "
        f"(n={len(latencies)}, max {latencies[-1]:.1f} ms)"
    )
    logging.disable(logging.WARNING)
    check_cost()
    with tempfile.TemporaryDirectory() as tmp:
        rss, cpu_pct = idle_rss(Path(tmp))
        print(f"idle daemon with 10 ledgers: RSS {rss:.0f} MB, CPU {cpu_pct:.2f} %")


if __name__ == "__main__":
    main()
