"""Rotations while guardd is down, more than one: every generation in between is read, once (review F6).

Real files, renamed and truncated by hand as in the review's repro and by the real logrotate; the watched glob
``*.jsonl`` never matches the rotated names.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest

from guardd.core.money import parse_money
from guardd.ledger.siblings import rotated_from
from guardd.ledger.tailer import LedgerSpec, Tailer
from guardd.store.sqlite.db import Store
from guardd.store.sqlite.events import EventStore
from tests.adapters.test_ledger_robustness import logrotate


class Ledger:
    """``folder/app.jsonl`` written a line at a time (every line costs $0.001; ``ids``: each carries an id)."""

    def __init__(self, folder: Path, ids: bool) -> None:
        self.folder, self.path, self.ids, self.n = folder, folder / "app.jsonl", ids, 0

    def write(self, count: int) -> None:
        with self.path.open("a") as f:
            for _ in range(count):
                ident = f'"id": "gen-{self.n}", ' if self.ids else ""
                f.write(f'{{"ts": "2026-11-02T10:00:00Z", {ident}"model": "m", "cost": "0.001", "n": {self.n}}}\n')
                self.n += 1

    def rename(self, old: str, new: str) -> None:
        os.rename(self.folder / old, self.folder / new)

    def copytruncate(self, to: str) -> None:
        shutil.copyfile(self.path, self.folder / to)
        os.truncate(self.path, 0)


async def run_tailer(store: Store, folder: Path) -> Tailer:
    """One start of guardd's tailer on ``folder/*.jsonl``: two polls, then closed (guardd is down again)."""
    tailer = Tailer([LedgerSpec(str(folder / "*.jsonl"))], EventStore(store), parse_money(1000))
    await tailer.poll()
    await tailer.poll()
    tailer.close()
    return tailer


async def counted(store: Store) -> tuple[int, int]:
    row = await store.fetchone("SELECT count(*), coalesce(sum(cost), 0) FROM events")
    return row[0], row[1]


def each_line_once(ledger: Ledger) -> tuple[int, int]:
    return ledger.n, parse_money("0.001") * ledger.n


@pytest.mark.parametrize("ids", [True, False], ids=["ids", "no-ids"])
async def test_two_renames_while_down_lose_and_double_nothing(tmp_path: Path, ids: bool):
    ledger = Ledger(tmp_path, ids)
    async with Store.open(tmp_path / "db.sqlite") as store:
        ledger.write(100)
        await run_tailer(store, tmp_path)
        ledger.write(50)  # unread when guardd stops
        ledger.rename("app.jsonl", "app.jsonl.1")
        ledger.write(70)  # the generation in between: an inode guardd never saw
        ledger.rename("app.jsonl.1", "app.jsonl.2")
        ledger.rename("app.jsonl", "app.jsonl.1")
        ledger.write(200)
        for _ in range(2):  # and a later restart reads nothing again
            await run_tailer(store, tmp_path)
            assert await counted(store) == each_line_once(ledger)


@pytest.mark.parametrize("ids", [True, False], ids=["ids", "no-ids"])
async def test_two_copytruncates_while_down_lose_and_double_nothing(tmp_path: Path, ids: bool):
    ledger = Ledger(tmp_path, ids)
    async with Store.open(tmp_path / "db.sqlite") as store:
        ledger.write(100)
        await run_tailer(store, tmp_path)
        ledger.write(50)
        ledger.copytruncate("app.jsonl.1")
        ledger.write(70)
        ledger.rename("app.jsonl.1", "app.jsonl.2")
        ledger.copytruncate("app.jsonl.1")
        ledger.write(200)
        for _ in range(2):
            await run_tailer(store, tmp_path)
            assert await counted(store) == each_line_once(ledger)


@pytest.mark.parametrize("mode", ["create", "copytruncate", "create dateext"])
async def test_the_real_logrotate_run_three_times_while_down_loses_and_doubles_nothing(tmp_path: Path, mode: str):
    tool = logrotate()
    ledger = Ledger(tmp_path, ids=False)
    conf = tmp_path / "rotate.conf"
    directives = "\n  ".join(mode.split()).replace("dateext", "dateext\n  dateformat -%Y%m%d-%s")
    conf.write_text(f"{ledger.path} {{\n  rotate 9\n  {directives}\n  missingok\n}}\n")
    async with Store.open(tmp_path / "db.sqlite") as store:
        ledger.write(300)
        await run_tailer(store, tmp_path)
        for _ in range(3):
            ledger.write(200)
            rotated = subprocess.run(  # noqa: ASYNC221 - the test wants logrotate to finish first
                [tool, "-f", "-s", str(tmp_path / "state"), str(conf)], capture_output=True, text=True
            )
            assert rotated.returncode == 0, rotated.stderr
            await asyncio.sleep(1.1)  # dateext names its files by the second
        ledger.write(100)
        await run_tailer(store, tmp_path)
        assert await counted(store) == each_line_once(ledger)


async def test_a_rotated_file_older_than_the_last_checkpoint_is_not_read(tmp_path: Path):
    ledger = Ledger(tmp_path, ids=True)
    async with Store.open(tmp_path / "db.sqlite") as store:
        (tmp_path / "app.jsonl.7").write_text(
            '{"ts": "2026-10-01T10:00:00Z", "id": "old", "model": "m", "cost": "5"}\n'
        )
        os.utime(tmp_path / "app.jsonl.7", (time.time() - 86400, time.time() - 86400))  # from before guardd ran
        ledger.write(10)
        await run_tailer(store, tmp_path)
        ledger.rename("app.jsonl", "app.jsonl.1")
        ledger.write(5)
        await run_tailer(store, tmp_path)
        assert await counted(store) == each_line_once(ledger)


async def test_a_compressed_rotated_file_that_may_hold_unread_lines_is_named_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    ledger = Ledger(tmp_path, ids=True)
    async with Store.open(tmp_path / "db.sqlite") as store:
        ledger.write(100)
        await run_tailer(store, tmp_path)
        ledger.write(50)
        ledger.rename("app.jsonl", "app.jsonl.1")
        ledger.write(70)
        subprocess.run(["gzip", str(tmp_path / "app.jsonl.1")], check=True)  # noqa: ASYNC221
        ledger.rename("app.jsonl", "app.jsonl.1")
        ledger.write(200)
        with caplog.at_level(logging.WARNING, logger="guardd.ledger"):
            tailer = await run_tailer(store, tmp_path)
    gz = str(tmp_path / "app.jsonl.1.gz")
    assert list(tailer.missed) == [gz] and "compressed" in tailer.missed[gz]
    assert any(getattr(r, "ctx", {}).get("ledger") == gz for r in caplog.records if r.levelno == logging.WARNING)


async def test_a_compressed_rotated_file_that_was_read_to_its_end_is_not_reported(tmp_path: Path):
    ledger = Ledger(tmp_path, ids=False)
    async with Store.open(tmp_path / "db.sqlite") as store:
        ledger.write(100)
        await run_tailer(store, tmp_path)
        ledger.rename("app.jsonl", "app.jsonl.1")
        ledger.write(70)
        subprocess.run(["gzip", str(tmp_path / "app.jsonl.1")], check=True)  # noqa: ASYNC221
        ledger.rename("app.jsonl", "app.jsonl.1")
        ledger.write(200)
        tailer = await run_tailer(store, tmp_path)
        assert tailer.missed == {}
        assert await counted(store) == each_line_once(ledger)


async def test_the_shipped_policy_run_twice_while_down_reports_the_compressed_file_with_unread_lines(tmp_path: Path):
    tool = logrotate()
    ledger = Ledger(tmp_path, ids=True)
    conf = tmp_path / "rotate.conf"
    policy = (Path(__file__).parents[2] / "systemd" / "logrotate.guardd-ledgers").read_text()
    conf.write_text(policy.replace("/var/log/llm/*.jsonl", str(ledger.path)).replace("create 0660 root llm", "create"))
    async with Store.open(tmp_path / "db.sqlite") as store:
        ledger.write(100)
        await run_tailer(store, tmp_path)
        for day in range(2):
            ledger.write(50)  # the first day's 50 are unread, and compressed at the second rotation
            rotated = subprocess.run(  # noqa: ASYNC221 - the test wants logrotate to finish first
                [tool, "-f", "-s", str(tmp_path / "state"), str(conf)], capture_output=True, text=True
            )
            assert rotated.returncode == 0, rotated.stderr
            if day == 0:  # a day passes: today's name is free for the second rotation
                today = datetime.now().strftime("%Y%m%d")  # logrotate names by the local date
                ledger.rename(f"app.jsonl-{today}", "app.jsonl-20000101")
        ledger.write(20)
        tailer = await run_tailer(store, tmp_path)
        assert list(tailer.missed) == [str(tmp_path / "app.jsonl-20000101.gz")]
        missing = 50  # the first day's unread lines, inside the .gz
        assert await counted(store) == (ledger.n - missing, parse_money("0.001") * (ledger.n - missing))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("app.jsonl.1", ""),
        ("app.jsonl.12", ""),
        ("app.jsonl-20261201", ""),
        ("app.jsonl-20261201-1733000000", ""),
        ("app.jsonl.2026-12-01", ""),
        ("app.jsonl.1.gz", ".gz"),
        ("app.jsonl-20261201.xz", ".xz"),
        ("app.jsonl", None),
        ("app.jsonl.bak", None),
        ("app.jsonl.1.tmp", None),
        ("app.jsonlx.1", None),
        ("app.jsonl.gz", None),
    ],
)
def test_logrotates_names_are_told_from_other_files(name: str, expected: str | None):
    assert rotated_from(name, "app.jsonl") == expected
