"""Ledger discovery: glob's answers on an ordinary tree, and a bounded walk on a tree with symlink loops."""

from __future__ import annotations

import glob
import os
import time
from pathlib import Path

import pytest

from guardd.core.money import parse_money
from guardd.ledger import tailer as ledger
from guardd.ledger.discovery import find
from guardd.store.sqlite.db import Store
from guardd.store.sqlite.events import EventStore

FILES = [
    "a/one.jsonl",
    "a/x/two.jsonl",
    "b/c/x/three.jsonl",
    "b/four.jsonl",
    ".hidden/h.jsonl",
    ".dot.jsonl",
    "d/o.txt",
]
PATTERNS = [
    "ledgers/**/*.jsonl",
    "ledgers/*/*.jsonl",
    "ledgers/**",
    "**/*.jsonl",
    "ledgers/a/*.jsonl",
    "ledgers/.h*/*",
    "ledgers/**/x/*.jsonl",
    "ledgers/a/one.jsonl",
    "ledgers/[ab]/*.json?",
    "nowhere/**/*.jsonl",
]


def tree(root: Path) -> None:
    for name in FILES:
        (root / "ledgers" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "ledgers" / name).write_text("{}\n")


def files(paths: list[str]) -> list[str]:
    return sorted(p for p in paths if os.path.isfile(p))


@pytest.mark.parametrize("pattern", PATTERNS)
def test_a_tree_without_loops_gives_what_glob_gives(tmp_path, monkeypatch, pattern):
    tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert files(find(pattern).paths) == files(glob.glob(pattern, recursive=True))
    absolute = str(tmp_path / pattern)
    assert files(find(absolute).paths) == files(glob.glob(absolute, recursive=True))


def two_loops(root: Path) -> None:
    tree(root)
    (root / "ledgers" / "a" / "up").symlink_to("..")  # ledgers/a/up -> ledgers
    (root / "ledgers" / "b" / "c" / "back").symlink_to("../../a")  # ledgers/b/c/back -> ledgers/a


def test_two_symlink_loops_are_each_walked_once(tmp_path):
    two_loops(tmp_path)
    started = time.monotonic()
    found = find(str(tmp_path / "ledgers" / "**" / "*.jsonl"))
    assert time.monotonic() - started < 5
    real = {os.path.realpath(p) for p in found.paths}
    assert len(real) == len(found.paths) == 4
    assert found.loops >= 2


def test_a_folder_deeper_than_the_limit_is_not_walked(tmp_path):
    deep = tmp_path.joinpath(*["d"] * 12)
    deep.mkdir(parents=True)
    (deep / "far.jsonl").write_text("{}\n")
    (tmp_path / "near.jsonl").write_text("{}\n")
    found = find(str(tmp_path / "**" / "*.jsonl"), max_depth=10)
    assert [Path(p).name for p in found.paths] == ["near.jsonl"] and found.too_deep
    assert len(find(str(tmp_path / "**" / "*.jsonl"), max_depth=12).paths) == 2


async def test_the_tailer_logs_a_slow_search_and_a_loop_once(tmp_path, monkeypatch, caplog):
    two_loops(tmp_path)
    monkeypatch.setattr(ledger, "SLOW_DISCOVERY", 0.0)  # every search counts as slow
    caplog.set_level("INFO", logger="guardd.ledger")
    async with Store.open(tmp_path / "db.sqlite") as store:
        tailer = ledger.Tailer(
            [ledger.LedgerSpec(str(tmp_path / "ledgers/**/*.jsonl"))], EventStore(store), parse_money(1)
        )
        await tailer.poll()
        await tailer.poll()
        tailer.close()
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if m.startswith("finding ledger files took")]) == 2
    assert len([m for m in messages if "symlink loop" in m]) == 1
