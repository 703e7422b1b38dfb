"""Where the client's CPU goes when guardd writes a parsed batch into PostgreSQL, per line and per stage.

    python bench/pg_client_cpu.py [--lines 300000] [--shape steady] [--url URL] [--repeat 3]

Writes a seeded ledger (``bench/genledger.py``) and parses it all first, as ``bench/cluster.py ingest``'s workers
do (parsing is not measured), then stores the batches through ``PgEventStore.write_batch`` into a fresh database,
one at a time. The client's CPU (``time.process_time()``: this process, all threads; the backend is another
process) is counted around ``write_batch`` as a whole and around its stages, by wrapping them: building the COPY
text (``copy_text``, in a thread), the rest of ``asyncio.to_thread``, the COPY into ``events`` (``Writer._insert``:
psycopg's ``copy.write`` and the savepoint), the rollups (``rollup_text`` and their COPY and upserts), the series,
the checkpoint, ``count_new``. Nothing else runs in the process meanwhile, so a stage's CPU is its own; the
stages' sum falls short of the whole by the asyncio and psycopg work between them ("other").

Then, on the same batches and without the database, the parts of the Python ``py_copy_text`` one by one (each a
loop doing one more step than the one before, best of ``--repeat``), and the C builder's ``copy_text`` when it is
used. ``GUARDD_NO_C_PARSE=1`` makes ``write_batch`` build its text in Python.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
DEFAULT_URL = os.environ.get("GUARDD_TEST_PG_URL") or "postgresql://postgres@127.0.0.1:5432/test"

SPENT: dict[str, float] = defaultdict(float)


def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kw: Any) -> Any:
        began = time.process_time()
        try:
            return fn(*args, **kw)
        finally:
            SPENT[name] += time.process_time() - began

    return wrapper


def timed_async(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kw: Any) -> Any:
        began = time.process_time()
        try:
            return await fn(*args, **kw)
        finally:
            SPENT[name] += time.process_time() - began

    return wrapper


def instrument() -> None:
    from guardd.store import batch_writes
    from guardd.store.postgres import events, ingest

    ingest.copy_text = timed("copy_text (in the thread)", ingest.copy_text)  # type: ignore[assignment]
    ingest.rollup_text = timed("  rollup_text", ingest.rollup_text)  # type: ignore[assignment]
    ingest.count_new = timed("count_new", ingest.count_new)  # type: ignore[assignment]
    ingest.apply_rollups = timed_async("apply_rollups (COPY + 2 upserts)", ingest.apply_rollups)  # type: ignore[assignment]
    ingest.Writer._insert = timed_async("Writer._insert (COPY events: copy.write, savepoint)", ingest.Writer._insert)  # type: ignore[method-assign]
    batch_writes.save_checkpoint = timed_async("save_checkpoint", batch_writes.save_checkpoint)  # type: ignore[assignment]
    events.PgEventStore._add_series = timed_async("_add_series", events.PgEventStore._add_series)  # type: ignore[method-assign]
    events.PgEventStore._summarize = timed_async("_summarize (after commit)", events.PgEventStore._summarize)  # type: ignore[method-assign]
    to_thread = asyncio.to_thread
    events.asyncio.to_thread = timed_async("asyncio.to_thread (with copy_text)", to_thread)  # type: ignore[attr-defined]


def parse_all(ledger: str) -> list[Any]:
    from guardd.ledger.lines import fingerprint
    from guardd.ledger.parse import LineParser, read_batch

    fd = os.open(ledger, os.O_RDONLY)
    fp = fingerprint(fd) or ""
    parser = LineParser("auto", {}, 1000 * 10**12)
    batches, offset = [], 0
    while True:
        parsed = read_batch(fd, fp, ledger, parser, offset)
        if parsed.end == offset:
            break
        batches.append(parsed)
        offset = parsed.end
    os.close(fd)
    return batches


async def store_all(url: str, ledger: str, batches: list[Any]) -> float:
    from guardd.store.api import Checkpoint
    from guardd.store.postgres.db import PgStore
    from guardd.store.postgres.events import PgEventStore

    st = os.stat(ledger)
    async with PgStore.open(url, "host-0", max_size=1) as store:
        events = PgEventStore(store)
        spent = 0.0
        for parsed in batches:
            cp = Checkpoint("bench", ledger, st.st_dev, st.st_ino, "fp", parsed.end, st.st_size, "", 0, 0, None)
            began = time.process_time()
            await events.write_batch(parsed, cp)
            spent += time.process_time() - began
    return spent


def parts(batches: list[Any], instance: str, repeat: int) -> list[tuple[str, float]]:
    """CPU seconds of ever longer prefixes of copy_text's loop over ``batches`` (best of ``repeat``)."""
    from guardd.store.postgres.copytext import GLOBAL_KINDS, _escaped

    md5, from_bytes = hashlib.md5, int.from_bytes
    prefix = f"h:{instance}:"
    tail = f"\t{_escaped(instance)}\n"

    def iterate(rows: Any) -> None:
        for _k, _ts, _series, _cost, _p, _c, _r, _x in rows:
            pass

    def keyed(rows: Any) -> None:
        for k, _ts, _series, _cost, _p, _c, _r, _x in rows:
            _sk = k if k.startswith(GLOBAL_KINDS) else prefix + k[2:]

    def hashed(rows: Any) -> None:
        for k, _ts, _series, _cost, _p, _c, _r, _x in rows:
            sk = k if k.startswith(GLOBAL_KINDS) else prefix + k[2:]
            from_bytes(md5(sk.encode(), usedforsecurity=False).digest()[:8], "big", signed=True)

    def formatted(rows: Any) -> None:
        lines, hashes = [], []
        for k, ts, series, cost, _p, _c, _r, _x in rows:
            sk = k if k.startswith(GLOBAL_KINDS) else prefix + k[2:]
            h = from_bytes(md5(sk.encode(), usedforsecurity=False).digest()[:8], "big", signed=True)
            if "\\" in sk or not sk.isprintable():
                sk = _escaped(sk)
            hashes.append(h)
            if cost is None:
                lines.append(f"{h}\t{sk}\t{ts}\t{series}\t\\N{tail}")
            else:
                lines.append(f"{h}\t{sk}\t{ts}\t{series}\t{cost}e-12{tail}")

    from guardd.store.postgres.copytext import c_copy_text, copy_text, py_copy_text

    steps: list[tuple[str, Callable[[Any], Any]]] = [
        ("iterate row_iter()", iterate),
        ("+ stored key", keyed),
        ("+ md5 key hash", hashed),
        ("+ escape check, format, append", formatted),
        ("+ sort, join, encode (= py_copy_text)", lambda rows: py_copy_text(rows, instance)),
    ]
    if c_copy_text():
        steps.append(("copy_text by the C builder", lambda rows: copy_text(rows, instance)))
    out = []
    for name, step in steps:
        best = float("inf")
        for _ in range(repeat):
            began = time.process_time()
            for parsed in batches:
                step(parsed.row_iter())
            best = min(best, time.process_time() - began)
        out.append((name, best))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=DEFAULT_URL)
    ap.add_argument("--lines", type=int, default=300_000)
    ap.add_argument("--shape", default="steady")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    name = f"guardd_client_{uuid.uuid4().hex[:12]}"
    with tempfile.TemporaryDirectory() as tmp:
        ledger = str(Path(tmp) / "ledger.jsonl")
        gen = [sys.executable, str(HERE / "genledger.py"), ledger, "--lines", str(args.lines), "--shape", args.shape]
        subprocess.run(gen, check=True, capture_output=True)
        batches = parse_all(ledger)
        lines = sum(p.count for p in batches)
        gc.collect()
        with psycopg.connect(args.url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = args.url.split("?", 1)[0].rsplit("/", 1)[0] + "/" + name
            instrument()
            whole = asyncio.run(store_all(url, ledger, batches))
        finally:
            with psycopg.connect(args.url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"{lines:,} rows in {len(batches)} batches ({args.shape}); client CPU per line in write_batch:")
    print(f"  {whole / lines * 1e6:6.2f} µs  write_batch in all")
    for stage, seconds in sorted(SPENT.items(), key=lambda item: -item[1]):
        print(f"  {seconds / lines * 1e6:6.2f} µs  {stage}")
    print("building the events' text step by step (cumulative, best of --repeat, no database):")
    for step, seconds in parts(batches, "host-0", args.repeat):
        print(f"  {seconds / lines * 1e6:6.2f} µs  {step}")


if __name__ == "__main__":
    main()
