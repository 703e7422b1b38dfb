"""Where `guardd ingest` spends its CPU, per line and per stage, on a generated ledger (no subprocesses).

    python bench/ingest_cpu.py LEDGER [--mb 150] [--range-mb 2]

Parses the first ``--mb`` MiB of ``LEDGER`` (see bench/genledger.py) in ranges as a worker does (parse, then pack),
then writes the packed ranges into a fresh SQLite store one transaction each, and prints the CPU time
(``time.process_time()``, all threads) per line of each stage. CPU time holds better than wall time on a shared
machine, but not perfectly: compare figures taken in one sitting.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import tempfile
import time
from pathlib import Path

from guardd.core.batch import Parsed
from guardd.ledger.parse import LineParser, read_batch
from guardd.store.sqlite.db import Store
from guardd.store.sqlite.events import EventStore

MAX_EVENT_COST = 1000 * 10**12


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("ledger")
    ap.add_argument("--mb", type=float, default=150)
    ap.add_argument("--range-mb", type=float, default=2)
    args = ap.parse_args()
    gc.disable()  # as in the workers and the writer
    step = int(args.range_mb * (1 << 20))
    fd = os.open(args.ledger, os.O_RDONLY)
    parser = LineParser("auto", {}, MAX_EVENT_COST)
    packs: list[bytes] = []
    position, lines, parsing, packing = 0, 0, 0.0, 0.0
    while position < args.mb * (1 << 20):
        began = time.process_time()
        parsed = read_batch(fd, "bench", args.ledger, parser, position, position + step, limit=step)
        parsed_at = time.process_time()
        if parsed.end == position:
            break
        packs.append(parsed.pack())
        parsing += parsed_at - began
        packing += time.process_time() - parsed_at
        position, lines = parsed.end, lines + parsed.lines
    os.close(fd)
    writing = asyncio.run(write(packs))
    for stage, seconds in (("parse", parsing), ("pack", packing), ("write", writing)):
        print(f"{stage}: {seconds / lines * 1e6:.2f} µs of CPU per line")
    print(f"{lines:,} lines, {sum(map(len, packs)) / lines:.0f} packed bytes per line")


async def write(packs: list[bytes]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        async with Store.open(Path(tmp) / "guardd.db") as store:
            events = EventStore(store)
            await events.load_series()
            await store.pragma("wal_autocheckpoint = 16384")  # as guardd ingest does
            began = time.process_time()
            for packed in packs:
                await events.write_batch(Parsed.unpack(packed))
            return time.process_time() - began


if __name__ == "__main__":
    main()
