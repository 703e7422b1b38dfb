"""The window sums behind ``guardd status`` over 10 million events in the shared PostgreSQL store.

    python bench/pg_status.py [--url postgresql://postgres@127.0.0.1:5432/test] [--events 10000000]
                              [--series 200] [--runs 5]

Builds a fresh database (dropped afterwards) in SQL: events over the last 90 days across many series, with the
hour and day rollups guardd keeps; then times, per run, what ``status`` asks of the store for budgets in
Europe/Berlin — the daily, weekly and monthly windows and a 10-minute rolling window, each summed per series
once (the evaluator shares one sum per distinct window among all budgets) — on a freshly opened store. The
daemon and ``guardd status`` do not run on PostgreSQL yet, so interpreter start and configuration (≈ 300–380 ms
measured for the SQLite ``status`` command) are not in this figure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg

from guardd.core.batch import DAY_MS, HOUR_MS, series_sig
from guardd.core.periods import window_at
from guardd.store.postgres.db import PgStore
from guardd.store.postgres.events import PgEventStore

DEFAULT_URL = os.environ.get("GUARDD_TEST_PG_URL") or "postgresql://postgres@127.0.0.1:5432/test"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default=DEFAULT_URL)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--series", type=int, default=200)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    name = f"guardd_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(args.url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = args.url.rsplit("/", 1)[0] + "/" + name
    try:
        started = time.perf_counter()
        now = datetime.now(UTC)
        asyncio.run(build(url, args.events, args.series, now))
        print(f"built {args.events:,} events in {time.perf_counter() - started:.0f} s")
        times = [asyncio.run(status_sums(url, now)) for _ in range(args.runs)]
        print(
            f"status window sums over {args.events:,} events: median {statistics.median(times) * 1000:.0f} ms, "
            f"max {max(times) * 1000:.0f} ms ({args.runs} runs)"
        )
    finally:
        with psycopg.connect(args.url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def build(url: str, events: int, series: int, now: datetime) -> None:
    async with PgStore.open(url, "bench"):
        pass  # the schema
    now_ms = int(now.timestamp() * 1000)
    span = 90 * DAY_MS
    with psycopg.connect(url, autocommit=True) as conn:
        sigs = [series_sig(f"model-{i % 20}", f"key-{i % 8}", "P", {"svc": f"s{i}"}) for i in range(1, series + 1)]
        conn.cursor().executemany(
            "INSERT INTO series(id, sig, model, key, provider, labels) VALUES (%s, %s, %s, %s, 'P', '{}')",
            [(i, sig, f"model-{i % 20}", f"key-{i % 8}") for i, sig in enumerate(sigs, 1)],
        )
        conn.execute(
            "INSERT INTO events(k, ts, series, cost, instance) SELECT 'g:' || i, %s + i * %s, 1 + i %% %s,"
            " (1000000 + (i %% 997) * 1000) * 0.000000000001, 'bench' FROM generate_series(1::bigint, %s) i",
            (now_ms - span, span // events, series, events),
        )
        for level, size in ((0, HOUR_MS), (1, DAY_MS)):
            conn.execute(
                f"INSERT INTO rollups SELECT {level}, ts / {size}, series, sum(cost), count(*), 0 FROM events"
                " GROUP BY 2, 3"
            )
        conn.execute("VACUUM ANALYZE")


async def status_sums(url: str, now: datetime) -> float:
    zone = ZoneInfo("Europe/Berlin")
    windows = [window_at(kind, zone, now, 0) for kind in ("daily", "weekly", "monthly")]
    spans = [(w.start, w.end) for w in windows] + [(now - timedelta(minutes=10), now)]
    async with PgStore.open(url, "bench") as store:
        events = PgEventStore(store)
        started = time.perf_counter()
        await events.load_series()
        for start, end in spans:
            await events.grouped_sums(None, start, end)
        return time.perf_counter() - started


if __name__ == "__main__":
    main()
