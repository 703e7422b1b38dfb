"""Cold `guardd ingest` of a generated canonical ledger: lines/s, peak RSS, and an exact-total check.

    python bench/ingest.py [--shape steady|mixed|sequential] [--lines 1000000] [--runs 5] [--seed 7]
                           [--ids sequential|random] [--workers N]

Generates the ledger with bench/genledger.py (seeded; shapes described there), ingests it into a fresh state
folder with the real command, prints lines/s, then checks that `guardd report --json` equals the generator's exact
decimal total. With ``--runs N`` it does that N times on the same file and prints every run and the median.

When ``jq`` is installed, each run also times jq merely summing the same file's costs, and prints guardd's rate
as a ratio of jq's: ratios hold on a noisy machine where absolute figures do not.

Memory: the RSS of the ingesting process and of its parsing workers is sampled every 100 ms from /proc (PSS
every second); the figures are the peak of the largest single process, the peak of their sum, and the peak of
their summed PSS (the workers fork from one server and share the interpreter's pages; PSS counts those once).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root: tests.support

from tests.support.processes import descendants

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--shape", choices=["steady", "mixed", "sequential"], default="sequential")
    ap.add_argument("--ids", choices=["sequential", "random"], default=None)
    ap.add_argument("--runs", type=int, default=1)
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
                "--shape",
                args.shape,
                *(["--ids", args.ids] if args.ids else []),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        expected = Decimal(gen.stderr.strip().split("=", 1)[1])
        rates: list[float] = []
        ratios: list[float] = []
        for run in range(1, args.runs + 1):
            result = ingest_once(work / f"run{run}", ledger, args.workers)
            jq = jq_rate(ledger, args.lines)
            exact = result.total == expected
            ratio = f"; jq {jq:,.0f} lines/s, guardd/jq {result.rate / jq:.2f}" if jq else ""
            print(
                f"run {run} ({args.shape}): {result.lines:,} lines in {result.seconds:.1f} s, "
                f"{result.rate:,.0f} lines/s{ratio}; peak RSS {result.largest / 1024:.0f} MB (largest process), "
                f"{result.total_rss / 1024:.0f} MB (all processes; {result.pss / 1024:.0f} MB PSS, shared pages "
                f"counted once); total {result.total} {'== exact' if exact else f'!= {expected}'}",
                flush=True,
            )
            if not exact:
                sys.exit(1)
            rates.append(result.rate)
            if jq:
                ratios.append(result.rate / jq)
        if args.runs > 1:
            tail = f", guardd/jq median {statistics.median(ratios):.2f}" if ratios else ""
            print(
                f"median of {args.runs} runs: {statistics.median(rates):,.0f} lines/s "
                f"(min {min(rates):,.0f}, max {max(rates):,.0f}){tail}"
            )


@dataclass(frozen=True)
class Result:
    lines: int
    seconds: float
    rate: float
    largest: int
    total_rss: int
    pss: int
    total: Decimal


def ingest_once(state: Path, ledger: Path, workers: int | None) -> Result:
    """Ingest ``ledger`` cold into a fresh state folder; sample the process tree's memory while it runs."""
    state.mkdir()
    cfg = state / "guardd.toml"
    cfg.write_text('[guardd]\nstate_dir = "state"\n')
    extra = [] if workers is None else ["--workers", str(workers)]
    command = [sys.executable, "-m", "guardd", "ingest", str(ledger), "--json", *extra, "-c", str(cfg)]
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
    cfg_arg = ["-c", str(cfg)]
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
                *cfg_arg,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    shutil.rmtree(state / "state")
    seconds = summary["seconds"]
    return Result(summary["read"], seconds, summary["read"] / seconds, largest, total, shared, Decimal(report["total"]))


def jq_rate(ledger: Path, lines: int) -> float | None:
    """jq merely summing the costs of ``ledger`` (numbers or decimal strings), in lines/s; None without jq."""
    jq = shutil.which("jq")
    if jq is None:
        return None
    began = time.perf_counter()
    subprocess.run(
        [jq, "-n", "reduce inputs as $l (0; . + ($l.cost | tonumber))", str(ledger)],
        capture_output=True,
        check=True,
    )
    return lines / (time.perf_counter() - began)


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
