"""sd_notify: ``READY=1``, ``WATCHDOG=1``, ``STATUS=…`` and ``STOPPING=1`` to ``$NOTIFY_SOCKET``.

A datagram on an ``AF_UNIX`` socket (a leading ``@`` means the abstract namespace). A few lines, so no dependency
(the ``sdnotify`` package has been unmaintained since 2017). Without ``$NOTIFY_SOCKET`` every call does nothing.
"""

from __future__ import annotations

import os
import socket


class Notifier:
    def __init__(self, address: str | None = None) -> None:
        self.address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")

    def send(self, *lines: str) -> bool:
        """Send ``lines`` as one notification; return False when there is no socket or the send failed."""
        if not self.address:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(target)
                sock.sendall("\n".join(lines).encode())
        except OSError:
            return False
        return True

    def watchdog_interval(self) -> float | None:
        """Return how often to ping the watchdog (half of ``$WATCHDOG_USEC``), or None when it is off."""
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        if not usec or (pid and pid != str(os.getpid())):
            return None
        try:
            return int(usec) / 2_000_000
        except ValueError:
            return None
