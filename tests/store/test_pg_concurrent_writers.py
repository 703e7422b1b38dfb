"""Several instances write overlapping batches into one shared store at the same moment, without a global lock:
each id is stored once, the rollups stay the exact sum of the stored events, and when two hosts hold different
lines for one id, the cost and time of the transaction that committed last are the ones stored (and counted), in
the series of the one that committed first (who spent is fixed by the first arrival)."""

from __future__ import annotations

import asyncio
import random

import psycopg
import pytest

from guardd.core.batch import DAY_MS, HOUR_MS, Parsed, series_id
from guardd.store.postgres.db import PgStore, pico
from guardd.store.postgres.events import PgEventStore
from guardd.store.postgres.ingest import deadlock_retried
from tests.store.backends import T0_MS, USD, sig

WRITERS = 4
IDS = 1200


def line(writer: int, i: int) -> tuple[str, int, str, int | None]:
    """Writer ``writer``'s line for id ``i``: a third of the ids have the same line on every host; a third have
    each host's own cost, hour and series (a later snapshot seen on another host); a third are unpriced on some
    hosts and priced on the others."""
    if i % 3 == 0:
        return f"g:{i}", T0_MS + i * 60_000, "m", USD + i
    if i % 3 == 1:
        return f"g:{i}", T0_MS + i * 60_000 + writer * 5 * HOUR_MS, f"m{writer % 2}", USD * (writer + 1) + i
    return f"g:{i}", T0_MS + i * 60_000, "m", None if writer % 2 else 7 * USD + i


def batch(writer: int, ids: list[int]) -> Parsed:
    out = Parsed(0, 0, lines=len(ids))
    for i in ids:
        k, ts, model, cost = line(writer, i)
        sid = series_id(sig(model))
        out.series[sid] = sig(model)
        out.add((k, ts, sid, cost, 3, 2, 0, 0), (k, 3, 2, 0, 0))
    out.close()
    return out


async def write_all(url: str, writer: int) -> None:
    """Every id, in batches of 150 taken in an order of this writer's own, so that the writers meet mid-batch."""
    ids = list(range(IDS))
    random.Random(writer).shuffle(ids)
    async with PgStore.open(url, f"host-{writer}") as pg:
        events = PgEventStore(pg)
        for start in range(0, IDS, 150):
            await events.write_batch(batch(writer, ids[start : start + 150]))


@pytest.mark.usefixtures("copy_builder")  # with each builder of the COPY text: C and the Python reference
async def test_concurrent_writers_with_overlapping_ids_keep_each_id_once_and_rollups_exact(pg_url):
    async with PgStore.open(pg_url, "setup"):
        pass  # the schema, before the race
    await asyncio.gather(*(write_all(pg_url, w) for w in range(WRITERS)))
    with psycopg.connect(pg_url) as conn:
        stored = {k: (ts, s, c) for k, ts, s, c in conn.execute("SELECT k, ts, series, cost FROM events")}
        events_by_bucket = {
            (level, bucket, series): (pico(cost), n, unpriced)
            for level, bucket, series, cost, n, unpriced in conn.execute(
                f"SELECT 0, ts / {HOUR_MS}, series, sum(cost), count(*), count(*) - count(cost) FROM events"
                f" GROUP BY 2, 3 UNION ALL SELECT 1, ts / {DAY_MS}, series, sum(cost), count(*),"
                " count(*) - count(cost) FROM events GROUP BY 2, 3"
            )
        }
        rollups = {
            (level, bucket, series): (pico(cost), n, unpriced)
            for level, bucket, series, cost, n, unpriced in conn.execute(
                "SELECT level, bucket, series, cost, events, unpriced FROM rollups"
                " WHERE events <> 0 OR cost <> 0 OR unpriced <> 0"
            )
        }
        waiting = {k for (k,) in conn.execute("SELECT k FROM unpriced")}
    assert len(stored) == IDS
    for i in range(IDS):
        ts, sid, cost = stored[f"g:{i}"]
        lines = [line(w, i) for w in range(WRITERS)]
        assert (ts, None if cost is None else pico(cost)) in {(t, c) for _, t, _, c in lines}, i
        assert sid in {series_id(sig(m)) for _, _, m, _ in lines}, i
    assert rollups == events_by_bucket
    assert waiting == {k for k, (_, _, cost) in stored.items() if cost is None}


async def test_a_transaction_chosen_as_a_deadlock_victim_is_run_again_whole(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE pair (id integer PRIMARY KEY, v integer NOT NULL)")
        conn.execute("INSERT INTO pair VALUES (1, 0), (2, 0)")
    locked = {1: asyncio.Event(), 2: asyncio.Event()}
    tries = {1: 0, 2: 0}

    async def crosswise(pg: PgStore, first: int, second: int) -> None:
        """Lock row ``first``, wait until the other transaction holds ``second``, then want it too."""
        tries[first] += 1
        async with pg.transaction("test") as conn:
            await conn.execute("UPDATE pair SET v = v + 1 WHERE id = %s", (first,))
            locked[first].set()
            await locked[second].wait()
            await conn.execute("UPDATE pair SET v = v + 1 WHERE id = %s", (second,))

    async with PgStore.open(pg_url, "host-a") as a, PgStore.open(pg_url, "host-b") as b:
        await asyncio.gather(deadlock_retried(lambda: crosswise(a, 1, 2)), deadlock_retried(lambda: crosswise(b, 2, 1)))
    with psycopg.connect(pg_url) as conn:
        values = conn.execute("SELECT v FROM pair ORDER BY id").fetchall()
    assert (values, sorted(tries.values())) == ([(2,), (2,)], [1, 2])
