"""The state lock in-process: one holder, a readable record, and guardd's own errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from guardd.adapters.instance_lock import InstanceLock, read_record
from guardd.errors import AlreadyRunning, StoreError


def test_a_held_lock_refuses_a_second_holder_and_names_the_first_pid(tmp_path: Path):
    lock = InstanceLock.acquire(tmp_path)
    try:
        with pytest.raises(AlreadyRunning, match=rf"another guardd \(pid \d+\) is running on {tmp_path}"):
            InstanceLock.acquire(tmp_path)
    finally:
        lock.release()
    InstanceLock.acquire(tmp_path).release()


def test_the_record_says_what_the_holder_last_recorded_and_nothing_once_released(tmp_path: Path):
    lock = InstanceLock.acquire(tmp_path)
    lock.record("cannot write the state database: database or disk is full")
    record = read_record(tmp_path)
    assert (record.running, record.store_ok) == (True, False)
    assert record.store_error is not None and "disk is full" in record.store_error
    lock.release()
    assert read_record(tmp_path).store_ok is None


def test_a_lock_file_that_cannot_be_created_is_a_store_error(tmp_path: Path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(StoreError, match="lock file"):
        InstanceLock.acquire(tmp_path / "a-file")


def test_a_released_daemon_lock_says_the_daemon_is_gone_another_holder_does_not(tmp_path: Path):
    daemon = InstanceLock.acquire(tmp_path, daemon=True)
    assert read_record(tmp_path).daemon_gone is False  # held: running
    daemon.release()
    assert read_record(tmp_path).daemon_gone is True
    InstanceLock.acquire(tmp_path).release()  # run --once, store copy: not a guard
    assert read_record(tmp_path).daemon_gone is False
    assert read_record(tmp_path / "nowhere").daemon_gone is False  # no lock file: nothing is known


def test_ledger_errors_are_recorded_and_never_make_the_record_unreadable(tmp_path: Path):
    lock = InstanceLock.acquire(tmp_path)
    try:
        lock.record(None, ledger_errors={"/var/log/llm/a.jsonl": "Permission denied"})
        record = read_record(tmp_path)
        assert record.ledger_errors == {"/var/log/llm/a.jsonl": "Permission denied"} and record.store_ok is True
        many = {f"/var/log/llm/{'x' * 80}-{i}.jsonl": "Permission denied" for i in range(200)}
        lock.record("cannot write the state database: disk full", ledger_errors=many)
        record = read_record(tmp_path)
        assert record.store_ok is False and "disk full" in (record.store_error or "")  # still parses
        shown = {k: v for k, v in record.ledger_errors.items() if k != "…"}
        assert shown and len(shown) < 200
        assert record.ledger_errors["…"] == f"{200 - len(shown)} more ledger file(s) cannot be read"
        lock.record(None)  # None keeps the last ledger errors (more fit beside a shorter store record)
        assert "…" in read_record(tmp_path).ledger_errors
        lock.record(None, ledger_errors={})
        assert read_record(tmp_path).ledger_errors == {}
    finally:
        lock.release()
    assert read_record(tmp_path).ledger_errors == {}  # nobody holds it: nothing is known


def test_rotated_files_that_may_hold_lines_never_counted_are_recorded_beside_the_errors(tmp_path: Path):
    lock = InstanceLock.acquire(tmp_path)
    try:
        lock.record(None, ledger_errors={"/l/a.jsonl": "Permission denied"}, ledger_warnings={"/l/a.jsonl.1.gz": "x"})
        record = read_record(tmp_path)
        assert record.ledger_warnings == {"/l/a.jsonl.1.gz": "x"} and record.ledger_errors == {
            "/l/a.jsonl": "Permission denied"
        }
        many = {f"/var/log/llm/{'x' * 80}-{i}.jsonl.gz": "compressed" for i in range(200)}
        lock.record(None, ledger_warnings=many)
        record = read_record(tmp_path)
        assert record.store_ok is True and "…" in record.ledger_warnings  # still parses
        assert record.ledger_errors == {"/l/a.jsonl": "Permission denied"}  # None keeps the last errors
    finally:
        lock.release()
    assert read_record(tmp_path).ledger_warnings == {}  # nobody holds it: nothing is known


def test_the_record_holds_the_digest_of_the_configuration_the_daemon_runs(tmp_path: Path):
    lock = InstanceLock.acquire(tmp_path, daemon=True)
    try:
        lock.configured("0123456789abcdef")
        record = read_record(tmp_path)
        assert record.config_digest == "0123456789abcdef" and record.config_loaded_at is not None
        lock.record("disk full")  # a later record keeps it
        assert read_record(tmp_path).config_digest == "0123456789abcdef"
    finally:
        lock.release()
    assert read_record(tmp_path).config_digest is None  # nobody runs it now
