"""File notifications for the ledgers' folders: new lines wake the worker within milliseconds.

:func:`watch` calls ``wake()`` after every change inotify (through watchfiles) reports below the folders that exist,
until it is cancelled. When notifications are unavailable it logs so once and returns: the worker's stat backstop
(every ``backstop`` seconds) still finds every change. It reads nothing itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

log = logging.getLogger("guardd.daemon.server")


async def watch(folders: list[str], wake: Callable[[], None], backstop: float) -> None:
    """Call ``wake()`` on every change below ``folders`` (those that exist) until cancelled."""
    folders = [f for f in folders if os.path.isdir(f)]
    if not folders:
        return
    from watchfiles import awatch

    # awatch sets its stop_event when cancelled (to stop its watcher thread): give it its own, or cancelling
    # this watch on a reload would stop the whole daemon.
    own_stop = asyncio.Event()
    try:
        async for _changes in awatch(
            *folders, debounce=20, step=20, recursive=True, watch_filter=None, stop_event=own_stop
        ):
            wake()
    except (OSError, RuntimeError) as exc:
        log.warning("file notifications unavailable (%s); polling every %ss", exc, backstop)
