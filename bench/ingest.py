"""Cold `guardd ingest` of a generated canonical ledger: lines/s, peak RSS, and an exact-total check.

    python bench/ingest.py [--lines 1000000] [--seed 7] [--keep DIR]

Generates the ledger with bench/genledger.py (seeded), ingests it into a fresh state folder with the real
command, prints lines/s and the peak RSS of the ingesting process, then checks that `guardd report --json`
equals the generator's exact decimal total.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
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
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        expected = Decimal(gen.stderr.strip().split("=", 1)[1])
        cfg = work / "guardd.toml"
        cfg.write_text('[guardd]\nstate_dir = "state"\n')
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        run = subprocess.run(
            [sys.executable, "-m", "guardd", "ingest", str(ledger), "--json", "-c", str(cfg)],
            capture_output=True,
            text=True,
            check=True,
        )
        peak_mb = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
        summary = json.loads(run.stdout)
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
        f"peak RSS {peak_mb:.0f} MB; total {report['total']} {'== exact' if exact else f'!= {expected}'}"
    )
    if not exact:
        sys.exit(1)


if __name__ == "__main__":
    main()
