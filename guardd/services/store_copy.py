"""Moving this host's state into a shared store (contract §9, ``guardd store copy --to URL``): the state's lock
around the store layer's copy (:mod:`guardd.store.copy`).

The lock is the daemon's own (``state_dir/guardd.lock``, contract §7): while the copy holds it no ``guardd run``
can start on the state, and a daemon that runs on it already makes the copy refuse at once
(:class:`~guardd.errors.AlreadyRunning`, exit 1), before the target is touched.
"""

from __future__ import annotations

from pathlib import Path

from guardd.adapters.instance_lock import InstanceLock
from guardd.errors import AlreadyRunning
from guardd.store.copy import CopyResult, Progress, copy_sqlite_file, dollars, redacted

__all__ = ["CopyResult", "copy_state_dir", "dollars", "redacted"]


async def copy_state_dir(
    state_dir: Path, db_path: Path, url: str, instance: str, progress: Progress | None = None
) -> CopyResult:
    """Take the lock of ``state_dir``, copy the SQLite state at ``db_path`` into the empty shared store at
    ``url`` for ``instance``, and give the lock back; see :func:`guardd.store.copy.copy_sqlite_file`."""
    try:
        lock = InstanceLock.acquire(state_dir)
    except AlreadyRunning as exc:
        raise AlreadyRunning(f"{exc}; stop it first: store copy needs a state that nothing changes") from None
    try:
        return await copy_sqlite_file(db_path, url, instance, progress=progress)
    finally:
        lock.release()
