"""What only the shared PostgreSQL store does: several instances in one database, exact numeric money,
forward-only schema, and errors that never show the password."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest

from guardd.errors import SchemaTooNew, StoreError
from guardd.store.api import Checkpoint, Sum
from guardd.store.postgres.db import PgStore, pico
from guardd.store.postgres.events import PgEventStore
from guardd.store.postgres.schema import SCHEMA_VERSION
from tests.store.backends import T0, USD, Backend, batch

DAY = T0, T0.replace(day=T0.day + 1)


async def test_a_generation_id_counts_once_across_instances(pg_url):
    backend = Backend("postgresql", pg_url)
    async with backend.events("web-1") as one, backend.events("web-2") as two:
        await one.write_batch(batch(("g:gen-1", 5, USD)))
        second = await two.write_batch(batch(("g:gen-1", 5, USD)))
        assert (second.stored, second.duplicates) == (0, 1)
        assert await two.window_sum(None, *DAY) == Sum(USD, 1, 0)


async def test_lines_without_an_id_on_two_instances_are_two_events(pg_url):
    backend = Backend("postgresql", pg_url)
    async with backend.events("web-1") as one, backend.events("web-2") as two:
        await one.write_batch(batch(("h:samehash", 5, USD)))
        await two.write_batch(batch(("h:samehash", 5, USD)))
        assert await one.window_sum(None, *DAY) == Sum(2 * USD, 2, 0)


async def test_each_instance_reads_only_its_own_checkpoints(pg_url):
    cp = Checkpoint("main", "/l.jsonl", 1, 2, "fp", 100, 100, "t", 0, 0, None)
    backend = Backend("postgresql", pg_url)
    async with backend.events("web-1") as one, backend.events("web-2") as two:
        await one.write_batch(batch(("g:a", 5, USD)), cp)
        await two.write_batch(batch(("g:b", 5, USD)), cp)  # the same file identity on another host
        assert [c.events for c in await one.checkpoints()] == [1]
        assert [c.events for c in await two.checkpoints()] == [1]


async def test_money_is_stored_as_exact_numeric_dollars(pg_url):
    async with Backend("postgresql", pg_url).events() as events:
        await events.write_batch(batch(("g:a", 5, 123_456_789_012_345)))
    with psycopg.connect(pg_url) as conn:
        cost, kind = conn.execute("SELECT cost, pg_typeof(cost)::text FROM events").fetchone()
    assert (cost, kind) == (Decimal("123.456789012345"), "numeric")


def test_numeric_dollars_become_exact_pico_dollars_or_an_error():
    assert pico(Decimal("123.456789012345")) == 123_456_789_012_345
    assert pico(Decimal("-0.000000000001")) == -1
    assert pico(Decimal("1E+3")) == 1000 * USD
    with pytest.raises(StoreError, match="finer than a pico-dollar"):
        pico(Decimal("0.0000000000001"))


async def test_opening_again_does_not_migrate_again(pg_url):
    async with PgStore.open(pg_url, "a"), PgStore.open(pg_url, "b") as store:
        rows = await store.fetchall("SELECT version FROM guardd_schema ORDER BY version")
    assert [r[0] for r in rows] == list(range(1, SCHEMA_VERSION + 1))


async def test_a_database_from_a_newer_guardd_is_refused(pg_url):
    async with PgStore.open(pg_url, "a") as store, store.transaction() as conn:
        await conn.execute("INSERT INTO guardd_schema(version) VALUES (%s)", (SCHEMA_VERSION + 1,))
    with pytest.raises(SchemaTooNew, match="newer than this guardd"):
        async with PgStore.open(pg_url, "a"):
            pass


async def test_an_unreachable_store_is_a_store_error_without_the_password():
    url = "postgresql://guardd:hunter2-secret@127.0.0.1:9/guardd"
    with pytest.raises(StoreError) as raised:
        async with PgStore.open(url, "a", timeout=1):
            pass
    assert "hunter2-secret" not in str(raised.value)
    assert "guardd:…@127.0.0.1:9" in str(raised.value) and "refused" in str(raised.value)


@pytest.mark.parametrize(
    "url, secret",
    [
        ("postgresql://guardd:s%zzhunter2-secret@127.0.0.1:9/guardd", "hunter2-secret"),  # a bad %-escape
        ("postgresql://guardd:hunter2 secret@127.0.0.1:9/guardd", "hunter2"),  # an unescaped space
        ("postgresql://guardd@127.0.0.1:9/guardd?password=hunter2-secret&port=x", "hunter2-secret"),
        ("postgresql://guardd@127.0.0.1:9/guardd?sslpassword=hunter2-secret&sslmode=hunter2-secret", "hunter2-secret"),
        ("host=127.0.0.1 port=9 password=hunter2 secret-part dbname=guardd", "secret-part"),
    ],
)
async def test_a_malformed_store_url_is_a_store_error_without_any_piece_of_its_password(url, secret):
    """libpq quotes the token it could not parse, and that token can be (part of) the password."""
    with pytest.raises(StoreError) as raised:
        async with PgStore.open(url, "a", timeout=1):
            pass
    assert secret not in str(raised.value)


async def test_a_failed_write_is_kept_as_the_store_health_until_one_succeeds(pg_url):
    async with PgStore.open(pg_url, "a") as store:
        events = PgEventStore(store)
        broken = Checkpoint(None, "/l", 1, 2, "fp", 9, 9, "", 0, 0, None)  # type: ignore[arg-type]
        with pytest.raises(StoreError):
            await events.write_batch(batch(("g:a", 5, USD)), broken)
        assert store.write_error is not None
        await events.write_batch(batch(("g:a", 5, USD)))
        assert store.write_error is None


async def test_a_role_that_may_only_read_can_open_a_store_already_migrated(pg_url):
    """An instance (or a monitoring user) whose role may read but not create tables opens the store: a schema at
    this version is not migrated again, so nothing asks to create or lock anything."""
    import uuid
    from urllib.parse import unquote

    import psycopg
    from psycopg import sql

    async with PgStore.open(pg_url, "a"):
        pass
    schema = unquote(pg_url).split("search_path=")[1].split("&")[0]
    role = f"guardd_reader_{uuid.uuid4().hex[:12]}"
    who, where = sql.Identifier(role), sql.Identifier(schema)
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(who))
        admin.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(where, who))
        admin.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(where, who))
    try:
        async with PgStore.open(pg_url.replace("postgres@", f"{role}@", 1), "a") as store:
            assert await PgEventStore(store).checkpoints() == []
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP OWNED BY {}").format(who))
            admin.execute(sql.SQL("DROP ROLE {}").format(who))


def test_a_store_amount_that_is_not_finite_is_an_error():
    with pytest.raises(StoreError, match="not a finite amount"):
        pico(Decimal("NaN"))
