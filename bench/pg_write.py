"""Where the PostgreSQL backend spends its CPU when guardd writes a batch, per line and per statement.

    python bench/pg_write.py [--instances 3] [--lines 300000] [--shape steady] [--url URL]

Writes ``--instances`` seeded ledgers (``bench/genledger.py``), parses them all first (parsing is not measured),
then stores their batches, taking the instances in turn, through ``PgEventStore.write_batch`` into a fresh database
on the server of ``--url`` — one batch at a time, so that the backend's CPU is guardd's alone. Each statement's
backend CPU comes from the backend's ``/proc/PID/schedstat`` (nanoseconds on CPU) read before and after it; the
figures are µs of backend CPU per line, by statement, then the total, and the stored total is checked against the
ledgers' exact Decimal total. The server must run on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.cluster import DEFAULT_URL, fresh_database, make_ledgers, prepare  # noqa: E402

SPENT: dict[str, float] = defaultdict(float)


def on_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e9


def label(sql: Any) -> str:
    text = " ".join(str(sql.as_string(None) if hasattr(sql, "as_string") else sql).split())
    for word in ("INSERT INTO ", "UPDATE ", "DELETE FROM ", "COPY ", "CREATE TEMP TABLE IF NOT EXISTS "):
        if text.startswith(word):
            return word.split()[0].lower() + " " + text[len(word) :].split()[0].split("(")[0]
    return text[:40]


def patch(pids: dict[int, int]) -> None:
    """Attribute the backend CPU of every statement, COPY and commit to its label in :data:`SPENT`."""
    cur_cls = psycopg.AsyncCursor  # AsyncConnection.execute runs a cursor's

    def pid_of(conn: Any) -> int:
        return pids[id(conn)]

    def timed(original: Callable[..., Any], conn_of: Callable[[Any], Any]) -> Callable[..., Any]:
        async def run(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            pid = pid_of(conn_of(self))
            began = on_cpu(pid)
            try:
                return await original(self, query, *args, **kwargs)
            finally:
                SPENT[label(query)] += on_cpu(pid) - began

        return run

    cur_cls.execute = timed(cur_cls.execute, lambda c: c.connection)  # type: ignore[method-assign]
    cur_cls.executemany = timed(cur_cls.executemany, lambda c: c.connection)  # type: ignore[method-assign]
    copy = cur_cls.copy

    @asynccontextmanager
    async def copy_timed(self: Any, statement: Any, *args: Any, **kwargs: Any) -> Any:
        pid = pid_of(self.connection)
        began = on_cpu(pid)
        async with copy(self, statement, *args, **kwargs) as c:
            yield c
        SPENT[label(statement)] += on_cpu(pid) - began

    cur_cls.copy = copy_timed  # type: ignore[method-assign,assignment]


async def write_all(url: str, batches: list[list[Any]]) -> tuple[float, float]:
    from guardd.store.postgres.db import PgStore
    from guardd.store.postgres.events import PgEventStore

    pids: dict[int, int] = {}
    async with PgStore.open(url, "bench") as first:
        del first  # the schema, once
    stores = []
    for i in range(len(batches)):
        cm = PgStore.open(url, f"host-{i}", max_size=1)
        store = await cm.__aenter__()
        async with store.pool.connection() as conn:
            row = await (await conn.execute("SELECT pg_backend_pid()")).fetchone()
            assert row is not None
            pids[id(conn)] = row[0]
        events = PgEventStore(store)
        await events.load_series()
        stores.append((cm, events, row[0]))
    patch(pids)
    SPENT.clear()
    wall = time.perf_counter()
    server = 0.0
    for turn in range(max(map(len, batches))):
        for (_, events, pid), mine in zip(stores, batches, strict=True):
            if turn < len(mine):
                began = on_cpu(pid)
                await events.write_batch(mine[turn])
                server += on_cpu(pid) - began
    wall = time.perf_counter() - wall
    for cm, _, _ in stores:
        await cm.__aexit__(None, None, None)
    SPENT["BEGIN, COMMIT and the rest"] = server - sum(SPENT.values())
    return server, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=DEFAULT_URL)
    ap.add_argument("--instances", type=int, default=3)
    ap.add_argument("--lines", type=int, default=300_000)
    ap.add_argument("--shape", default="steady")
    args = ap.parse_args()
    from guardd.ledger.lines import fingerprint
    from guardd.ledger.parse import LineParser, read_batch

    batches, lines = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        ledgers, total = make_ledgers(tmp, args.instances, args.lines, args.shape)
        for path in ledgers:
            fd = os.open(path, os.O_RDONLY)
            parser, offset, mine = LineParser("auto", {}, 1000 * 10**12), 0, []
            fp = fingerprint(fd) or ""
            while (parsed := read_batch(fd, fp, str(path), parser, offset)).end != offset:
                mine.append(parsed)
                offset, lines = parsed.end, lines + parsed.lines
            os.close(fd)
            batches.append(mine)
    with fresh_database(args.url) as url:
        asyncio.run(prepare(url))
        server, wall = asyncio.run(write_all(url, batches))
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT coalesce(sum(cost), 0), count(*) FROM events").fetchone()
            assert row is not None
            sizes = conn.execute(
                "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relname IN ('events', 'rollups')"
            ).fetchall()
    exact = "exact" if row[0] == total else f"WRONG: stored {row[0]}, ledgers {total}"
    count = sum(map(len, batches))
    print(f"{lines:,} lines, {row[1]:,} events, total {exact}; {count} batches in {wall:.1f} s wall")
    for name, seconds in sorted(SPENT.items(), key=lambda kv: -kv[1]):
        if seconds / lines * 1e6 >= 0.05:
            print(f"  {seconds / lines * 1e6:6.2f} µs/line  {name}")
    print(f"  {server / lines * 1e6:6.2f} µs/line  PostgreSQL backend in all; sizes {dict(sizes)}")
    print("load average " + " ".join(f"{x:.1f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
