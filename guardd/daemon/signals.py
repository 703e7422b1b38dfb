"""The daemon's signal handlers: they only set flags and request work, never do it (uvicorn's shape).

:func:`install` makes SIGTERM and SIGINT call ``on_stop(sig)``, except that a second SIGINT exits at once
(``SystemExit(130)``), and SIGHUP call ``on_reload()``. The callbacks run on the event loop and must return at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

log = logging.getLogger("guardd.daemon.server")


def install(
    loop: asyncio.AbstractEventLoop, on_stop: Callable[[signal.Signals], None], on_reload: Callable[[], None]
) -> None:
    """Add the stop (SIGTERM, SIGINT) and reload (SIGHUP) handlers to ``loop``."""
    interrupts = 0

    def stop(sig: signal.Signals) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts > 1 and sig == signal.SIGINT:
            log.warning("second interrupt: exiting now")
            raise SystemExit(130)
        on_stop(sig)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop, sig)
    loop.add_signal_handler(signal.SIGHUP, on_reload)
