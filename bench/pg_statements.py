"""Where one instance's PostgreSQL backend spends its CPU, per statement of ``PgEventStore.write_batch``.

    python bench/pg_statements.py [--lines 200000] [--shape steady] [--span-days 30] [--instances 1]

Writes seeded ledgers (``bench/genledger.py``; ``--instances`` of them, ``--lines`` each, seeds 100, 101, … as
``bench/cluster.py``), then stores each batch by batch into a fresh database as ``bench/cluster.py ingest``'s
workers do — the instances at once, each on its own connection — reading each backend's CPU time
(``/proc/PID/schedstat``: nanoseconds on a CPU, not wall time, so the machine's other tenants barely move it)
before and after every statement and COPY. Prints the backends' µs per line per statement (named by their first
words, and a number when two statements share them), and the client's CPU per line building the COPY text. The
backends must run on this machine (a local server).

``--span-days`` sets how many days a ledger covers: 30 (the default) gives about one line per (hour, series) in a
batch, every hour rollup row about one line (the worst case); a small span (``--span-days 0.5``) is a live
ledger's shape, where a batch adds to few hour rows.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
DEFAULT_URL = os.environ.get("GUARDD_TEST_PG_URL") or "postgresql://postgres@127.0.0.1:5432/test"

SPENT: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
COUNTING = [False]  # not while the schema is made


def on_cpu(pid: int) -> float:
    """Seconds the process ``pid`` has run on a CPU."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e9


NAMES: dict[str, str] = {}


def name_of(query: object) -> str:
    """The first words of ``query``; when another statement begins with them, also the words where it departs
    from the statement it shares most with."""
    text = re.sub(r"\s+", " ", str(query)).strip()
    text = re.sub(r"\(.*", "", text) if text.startswith("CREATE") else text
    if text not in NAMES:
        NAMES[text] = text[:70]
        shared = max((_shared(other, text) for other in NAMES if other != text), default=0)
        if shared >= 70:
            at = max(shared - 10, 50)
            NAMES[text] = f"{text[:50]} … {text[at : at + 40]}"
    return NAMES[text]


def _shared(a: str, b: str) -> int:
    """How many characters ``a`` and ``b`` begin with alike."""
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def instrument() -> None:
    """Wrap the async connection's ``execute`` and the async cursor's ``copy`` to count the backend's CPU."""
    execute: Callable[..., Any] = psycopg.AsyncConnection.execute
    copy: Callable[..., Any] = psycopg.AsyncCursor.copy

    async def timed_execute(self: psycopg.AsyncConnection[Any], query: Any, *args: Any, **kw: Any) -> Any:
        pid = self.info.backend_pid
        before = on_cpu(pid)
        try:
            return await execute(self, query, *args, **kw)
        finally:
            if COUNTING[0]:
                spent = SPENT[name_of(query)]
                spent[0] += on_cpu(pid) - before
                spent[1] += 1

    @asynccontextmanager
    async def timed_copy(self: psycopg.AsyncCursor[Any], statement: Any, *args: Any, **kw: Any) -> AsyncIterator[Any]:
        pid = self.connection.info.backend_pid
        before = on_cpu(pid)
        try:
            async with copy(self, statement, *args, **kw) as c:
                yield c
        finally:
            if COUNTING[0]:
                spent = SPENT[name_of(statement)]
                spent[0] += on_cpu(pid) - before
                spent[1] += 1

    psycopg.AsyncConnection.execute = timed_execute  # type: ignore[method-assign]
    psycopg.AsyncCursor.copy = timed_copy  # type: ignore[method-assign]


BUILD = [0.0]


def time_copy_text() -> None:
    """Count the client's CPU building the COPY text (in a worker thread: that thread's CPU)."""
    from guardd.store.postgres import ingest

    copy_text = ingest.copy_text

    def timed_copy_text(*args: Any) -> Any:
        started = time.thread_time()
        try:
            return copy_text(*args)
        finally:
            BUILD[0] += time.thread_time() - started

    ingest.copy_text = timed_copy_text  # type: ignore[assignment]


async def store_ledger(url: str, ledger: str, instance: str) -> tuple[int, float]:
    """Store ``ledger`` batch by batch as ``instance``; return the lines and the backend's CPU seconds in all
    (commits included: psycopg commits outside ``execute``)."""
    from guardd.ledger.lines import fingerprint
    from guardd.ledger.parse import LineParser, read_batch
    from guardd.store.api import Checkpoint
    from guardd.store.postgres.db import PgStore
    from guardd.store.postgres.events import PgEventStore

    fd = os.open(ledger, os.O_RDONLY)
    fp = fingerprint(fd) or ""
    st = os.fstat(fd)
    parser = LineParser("auto", {}, 1000 * 10**12)
    lines = 0
    async with PgStore.open(url, instance, max_size=1) as store:
        events = PgEventStore(store)
        pid = (await store.fetchall("SELECT pg_backend_pid()"))[0][0]
        total_before = on_cpu(pid)
        offset = 0
        while True:
            parsed = read_batch(fd, fp, ledger, parser, offset)
            if parsed.end == offset:
                break
            lines += parsed.count
            cp = Checkpoint("bench", ledger, st.st_dev, st.st_ino, fp, parsed.end, st.st_size, "", 0, 0, None)
            await events.write_batch(parsed, cp)
            offset = parsed.end
            await asyncio.sleep(0)  # the other instances' turn
        backend_total = on_cpu(pid) - total_before
    os.close(fd)
    return lines, backend_total


async def store_all(url: str, ledgers: list[str]) -> tuple[int, float]:
    """Store every ledger as its own instance, at once (the schema made first, by one of them)."""
    from guardd.store.postgres.db import PgStore

    async with PgStore.open(url, "bench-setup", max_size=1):
        pass
    COUNTING[0] = True
    done = await asyncio.gather(*(store_ledger(url, ledger, f"host-{i}") for i, ledger in enumerate(ledgers)))
    return sum(lines for lines, _ in done), sum(backend for _, backend in done)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=DEFAULT_URL)
    ap.add_argument("--lines", type=int, default=200_000, help="lines per instance")
    ap.add_argument("--shape", default="steady")
    ap.add_argument("--span-days", type=float, default=30.0)
    ap.add_argument("--instances", type=int, default=1)
    args = ap.parse_args()
    name = f"guardd_stmts_{uuid.uuid4().hex[:12]}"
    with tempfile.TemporaryDirectory() as tmp:
        ledgers = []
        for i in range(args.instances):
            ledger = str(Path(tmp) / f"ledger-{i}.jsonl")
            gen = [sys.executable, str(HERE / "genledger.py"), ledger, "--lines", str(args.lines)]
            gen += ["--shape", args.shape, "--span-days", str(args.span_days), "--seed", str(100 + i)]
            subprocess.run(gen, check=True, capture_output=True)
            ledgers.append(ledger)
        with psycopg.connect(args.url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = args.url.split("?", 1)[0].rsplit("/", 1)[0] + "/" + name
            instrument()
            time_copy_text()
            lines, backend = asyncio.run(store_all(url, ledgers))
        finally:
            with psycopg.connect(args.url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    counted = 0.0
    shape = f"{args.shape}, {args.span_days:g} days, {args.instances} instance(s)"
    print(f"{lines:,} lines ({shape}); backend CPU per line by statement (calls):")
    for query, (seconds, calls) in sorted(SPENT.items(), key=lambda item: -item[1][0]):
        counted += seconds
        if seconds / lines * 1e6 >= 0.01:
            print(f"  {seconds / lines * 1e6:6.2f} µs  ({int(calls):4d})  {query}")
    print(f"  {(backend - counted) / lines * 1e6:6.2f} µs  other (commits, migrations, connection)")
    copying = f"client building the COPY text {BUILD[0] / lines * 1e6:.2f} µs"
    print(f"backend in all {backend / lines * 1e6:.2f} µs a line; {copying}")


if __name__ == "__main__":
    main()
