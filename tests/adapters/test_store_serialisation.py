"""The store is one serialised writer: no nested transactions, no reads of another task's uncommitted rows, and no
foreign exception (sqlite3, OSError) past the adapter boundary."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from guardd.adapters import killswitch
from guardd.errors import GuarddError, StoreError
from guardd.store.sqlite.db import Store


async def test_a_nested_transaction_is_refused_with_a_store_error(tmp_path: Path):
    async with Store.open(tmp_path / "db.sqlite") as store, store.transaction():
        with pytest.raises(StoreError, match="nest"):
            async with store.transaction():
                pass


async def test_the_store_is_usable_after_a_refused_nested_transaction(tmp_path: Path):
    async with Store.open(tmp_path / "db.sqlite") as store:
        with pytest.raises(StoreError):
            async with store.transaction(), store.transaction():
                pass
        async with store.transaction() as conn:
            await conn.execute("INSERT INTO markers(name, value, at) VALUES ('a', 'b', 'c')")
        assert await store.fetchone("SELECT value FROM markers") == ("b",)


async def test_a_sqlite_error_inside_a_transaction_becomes_a_store_error(tmp_path: Path):
    async with Store.open(tmp_path / "db.sqlite") as store:
        with pytest.raises(StoreError, match="no such table"):
            async with store.transaction() as conn:
                await conn.execute("INSERT INTO nowhere VALUES (1)")


async def test_a_sqlite_error_in_a_read_becomes_a_store_error(tmp_path: Path):
    async with Store.open(tmp_path / "db.sqlite") as store:
        with pytest.raises(StoreError, match="no such table"):
            await store.fetchall("SELECT * FROM nowhere")


async def test_a_read_never_sees_another_tasks_uncommitted_rows(tmp_path: Path):
    async with Store.open(tmp_path / "db.sqlite") as store:
        inside, release = asyncio.Event(), asyncio.Event()

        async def writer() -> None:
            async with store.transaction() as conn:
                await conn.execute("INSERT INTO markers(name, value, at) VALUES ('a', 'b', 'c')")
                inside.set()
                await release.wait()
                await conn.execute("DELETE FROM markers")

        task = asyncio.create_task(writer())
        await inside.wait()
        read = asyncio.create_task(store.fetchall("SELECT * FROM markers"))
        await asyncio.sleep(0.05)
        release.set()
        await task
        assert await read == []


async def test_two_tasks_transactions_take_turns_instead_of_failing(tmp_path: Path):
    async with Store.open(tmp_path / "db.sqlite") as store:

        async def write(name: str) -> None:
            async with store.transaction() as conn:
                await conn.execute("INSERT INTO markers(name, value, at) VALUES (?, 'v', 'at')", (name,))
                await asyncio.sleep(0.01)

        await asyncio.gather(*(write(f"m{i}") for i in range(5)))
        assert (await store.fetchone("SELECT count(*) FROM markers"))[0] == 5


def test_a_switch_file_that_cannot_be_written_raises_a_guardd_error(tmp_path: Path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(GuarddError, match="kill-switch file"):
        killswitch.write_atomic(tmp_path / "a-file" / "killswitch.json", {"schema": 1})
