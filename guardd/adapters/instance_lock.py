"""One daemon per state (contract §7), and the daemon's record of its store's health.

``state_dir/guardd.lock`` is ``flock``-ed (exclusive) by ``guardd run`` for its whole life; a second ``guardd run``
on the same ``state_dir`` finds it held and stops at once with :class:`AlreadyRunning`. The kernel drops the lock
when the process ends, ``kill -9`` included, so a stale file never blocks a restart.

The same file carries a small JSON record — pid, start time, whether the state database can be written, and the
digest of the configuration the daemon enforces (so that an edited file it has not reloaded is said) — that
``guardd status``/``check`` (other processes) read. It lives here, not in the database, because it must be readable
when the database cannot be written: the file is sized to :data:`RECORD_BYTES` once at start, and every update
rewrites those bytes in place, which needs no new disk blocks (it works on a full disk). A reader that catches a
half-written record reads again. The record is trusted only while the lock is held: a record left by a daemon
that is gone says nothing about now — except that it is gone. The record says whether its holder was a daemon
(``guardd run``) or not (``run --once``, ``store copy``): a daemon's record in a lock nobody holds means the guard
stopped (``kill -9``, a crash, SIGTERM), which ``status`` and ``check`` say at once instead of waiting for the
switch file's ``expires_at``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from guardd.errors import AlreadyRunning, StoreError

LOCK_NAME = "guardd.lock"
RECORD_BYTES = 4096
_ATTEMPTS = 6  # a reader holds a shared lock for microseconds: retry briefly before calling the state taken


@dataclass(frozen=True, slots=True)
class DaemonRecord:
    """What a reader learns from the lock file."""

    running: bool
    pid: int | None
    store_ok: bool | None
    store_error: str | None
    store_since: str | None
    ledger_errors: dict[str, str] = field(default_factory=dict)
    """The ledger files the running daemon cannot read (path -> why); empty when no daemon runs."""
    ledger_warnings: dict[str, str] = field(default_factory=dict)
    """Rotated ledger files the running daemon found at start, cannot read, and that may hold lines it never
    counted (path -> why); empty when no daemon runs."""
    daemon_gone: bool = False
    """True when the lock file is readable, nobody holds it, and its last holder was a daemon (``guardd run``):
    the guard that wrote the switch file has stopped."""
    config_digest: str | None = None
    """The digest of the configuration the running daemon enforces (:func:`guardd.config.digest.shared_digest`),
    as of its start or last reload; None when no daemon runs (or one too old to record it)."""
    config_loaded_at: str | None = None
    """When the running daemon loaded that configuration (RFC 3339, UTC)."""


class InstanceLock:
    """The held lock of one running daemon. :meth:`acquire` it, :meth:`record` store health, :meth:`release`."""

    def __init__(self, path: Path, fd: int, daemon: bool = False) -> None:
        self.path = path
        self._fd = fd
        self.daemon = daemon
        self._since: str | None = None
        self._started_at = datetime.now(UTC).isoformat()
        self._last: tuple[str | None, dict[str, str], dict[str, str]] | None = None
        self._config: dict[str, str] | None = None

    @classmethod
    def acquire(cls, state_dir: Path, daemon: bool = False) -> InstanceLock:
        """Take the lock of ``state_dir`` (``daemon``: for ``guardd run``, the guard itself); raise
        :class:`AlreadyRunning` naming the holder's pid when it is held, and :class:`StoreError` (one line naming
        the folder and the user) when the lock file cannot be opened."""
        path = state_dir / LOCK_NAME
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            from guardd.errors import not_writable

            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise not_writable("state folder", state_dir) from None
            raise StoreError(f"cannot open the lock file {path}: {exc.strerror or exc}") from exc
        for attempt in range(_ATTEMPTS):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == _ATTEMPTS - 1:
                    record = _parse(os.pread(fd, RECORD_BYTES, 0))
                    os.close(fd)
                    pid = record.get("pid", "unknown") if record else "unknown"
                    raise AlreadyRunning(f"another guardd (pid {pid}) is running on {state_dir}") from None
                time.sleep(0.05)
        lock = cls(path, fd, daemon)
        try:
            os.posix_fallocate(fd, 0, RECORD_BYTES)
        except OSError:
            pass  # the record is then best effort on a full disk; the lock itself holds
        lock.record(None, force=True)
        return lock

    def configured(self, digest: str) -> None:
        """Record that the daemon now enforces the configuration whose digest is ``digest`` (at start and after
        each reload), so that ``status`` and ``check`` can tell an edited file it has not loaded (review F11)."""
        self._config = {"digest": digest, "loaded_at": datetime.now(UTC).isoformat()}
        self.record(None if self._last is None else self._last[0], force=True)

    def record(
        self,
        store_error: str | None,
        force: bool = False,
        ledger_errors: Mapping[str, str] | None = None,
        ledger_warnings: Mapping[str, str] | None = None,
    ) -> None:
        """Record whether the store can be written (``store_error`` None), which ledger files cannot be read
        (``ledger_errors``: path -> why) and which rotated ones may hold lines never counted (``ledger_warnings``)
        — None keeps the last ones; a no-op when nothing changed.

        The record always fits :data:`RECORD_BYTES`: ledger errors and warnings that would not fit are left out
        and counted under the key ``"…"`` (a truncated record would not parse, and would hide the store's health
        too)."""
        last = self._last or (None, {}, {})
        ledgers = dict(ledger_errors) if ledger_errors is not None else last[1]
        warnings = dict(ledger_warnings) if ledger_warnings is not None else last[2]
        state = (store_error, ledgers, warnings)
        if state == self._last and not force:
            return
        if self._last is not None and self._last[0] == store_error and self._since is not None:
            since = self._since  # only the ledgers changed: the store's "since" stays
        else:
            since = self._since = datetime.now(UTC).isoformat()
        doc: dict[str, Any] = {
            "pid": os.getpid(),
            "started_at": self._started_at,
            "daemon": self.daemon,
            "store": {"ok": store_error is None, "error": store_error, "since": since},
            **({} if self._config is None else {"config": self._config}),
        }
        for key, found, what in (
            ("ledgers", ledgers, "cannot be read"),
            ("missed", warnings, "may hold lines never counted"),
        ):
            items = sorted(found.items())
            for kept in range(len(items), -1, -1):
                doc[key] = dict(items[:kept])
                if kept < len(items):
                    doc[key]["…"] = f"{len(items) - kept} more ledger file(s) {what}"
                if len(json.dumps(doc).encode()) <= RECORD_BYTES - 1:
                    break
        data = json.dumps(doc).encode()[: RECORD_BYTES - 1]
        with contextlib.suppress(OSError):  # nothing better to do than keep the previous record
            os.pwrite(self._fd, data.ljust(RECORD_BYTES - 1) + b"\n", 0)
            self._last = state

    def release(self) -> None:
        """Give the lock up (the file stays: removing it would race with the next daemon taking it)."""
        with contextlib.suppress(OSError):
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        with contextlib.suppress(OSError):
            os.close(self._fd)


def read_record(state_dir: Path) -> DaemonRecord:
    """Return what the lock file of ``state_dir`` says (``running`` False when no daemon holds it)."""
    try:
        fd = os.open(state_dir / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return DaemonRecord(False, None, None, None, None)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            running = True
        else:
            running = False
            fcntl.flock(fd, fcntl.LOCK_UN)
        record = _parse(os.pread(fd, RECORD_BYTES, 0)) or _parse(os.pread(fd, RECORD_BYTES, 0))
    finally:
        os.close(fd)
    store = (record or {}).get("store") or {}
    loaded = (record or {}).get("config") if running else None
    loaded = loaded if isinstance(loaded, dict) else {}
    pid = (record or {}).get("pid")
    return DaemonRecord(
        running,
        pid if isinstance(pid, int) else None,
        store.get("ok") if running else None,
        store.get("error") if running else None,
        store.get("since") if running else None,
        ledger_errors=_errors((record or {}).get("ledgers")) if running else {},
        ledger_warnings=_errors((record or {}).get("missed")) if running else {},
        daemon_gone=not running and (record or {}).get("daemon") is True,
        config_digest=_text(loaded.get("digest")),
        config_loaded_at=_text(loaded.get("loaded_at")),
    )


def _parse(data: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(data.decode("utf-8").strip() or "null")
    except (UnicodeDecodeError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _text(raw: object) -> str | None:
    return raw if isinstance(raw, str) else None


def _errors(raw: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def pid_space() -> str:
    """Where this process's pid numbers mean something: this boot of this machine (``boot_id``) and this pid
    namespace (its inode) — two containers may share a host name and pid numbers, never both. A process can tell
    whether a pid of the same space runs (``kill(pid, 0)``); a pid of another space says nothing here. When
    ``/proc`` cannot tell, a random value: then no other process is ever taken to be in this space."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return os.urandom(8).hex()
    return f"{boot}:{namespace}"
