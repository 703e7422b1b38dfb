"""Cold `guardd ingest` of a generated canonical ledger: lines/s, peak RSS, and an exact-total check.

    python bench/ingest.py [--lines 1000000] [--seed 7] [--ids sequential|random] [--workers N]

Generates the ledger with bench/genledger.py (seeded), ingests it into a fresh state folder with the real
command, prints lines/s, then checks that `guardd report --json` equals the generator's exact decimal total.

Memory: the RSS of the ingesting process and of its parsing workers is sampled every 100 ms from /proc (PSS
every second); the figures are the peak of the largest single process, the peak of their sum, and the peak of
their summed PSS (the workers fork from one server and share the interpreter's pages; PSS counts those once).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from guardd.testing.processes import descendants

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--ids", choices=["sequential", "random"], default="sequential")
    ap.add_argument("--workers", type=int, default=None, help="passed to guardd ingest --workers")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ledger = work / "ledger.jsonl"
        gen = subprocess.run(
            [
                sys.executable,
                str(HERE / "genledger.py"),
                str(ledger),
                "--lines",
                str(args.lines),
                "--seed",
                str(args.seed),
                "--ids",
                args.ids,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        expected = Decimal(gen.stderr.strip().split("=", 1)[1])
        cfg = work / "guardd.toml"
        cfg.write_text('[guardd]\nstate_dir = "state"\n')
        workers = [] if args.workers is None else ["--workers", str(args.workers)]
        command = [sys.executable, "-m", "guardd", "ingest", str(ledger), "--json", *workers, "-c", str(cfg)]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        largest = total = shared = 0
        samples = 0
        while proc.poll() is None:
            pids = tree(proc.pid)
            sizes = [memory_kb(pid, "VmRSS:", "status") for pid in pids]
            largest, total = max(largest, *sizes, 0), max(total, sum(sizes))
            if samples % 10 == 5:  # reading PSS walks the page tables and slows the process: once a second
                shared = max(shared, sum(memory_kb(pid, "Pss:", "smaps_rollup") for pid in pids))
            samples += 1
            time.sleep(0.1)
        out, err = proc.communicate()
        if proc.returncode:
            sys.exit(f"guardd ingest failed: {err}")
        summary = json.loads(out)
        report = json.loads(
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "guardd",
                    "report",
                    "--json",
                    "--since",
                    "2000-01-01",
                    "--until",
                    "2100-01-01",
                    "-c",
                    str(cfg),
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
    rate = summary["read"] / summary["seconds"]
    exact = Decimal(report["total"]) == expected
    print(
        f"ingest of {summary['read']:,} lines: {summary['seconds']:.1f} s, {rate:,.0f} lines/s, "
        f"peak RSS {largest / 1024:.0f} MB (largest process), {total / 1024:.0f} MB (all processes; "
        f"{shared / 1024:.0f} MB PSS, shared pages counted once); "
        f"total {report['total']} {'== exact' if exact else f'!= {expected}'}"
    )
    if not exact:
        sys.exit(1)


def tree(root: int) -> list[int]:
    """``root`` and all its descendants (the forkserver, the parsing workers, the resource tracker)."""
    return [root, *(pid for generation in descendants(root) for pid in generation)]


def memory_kb(pid: int, field: str, source: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/{source}").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    main()
