"""uvicorn inside the daemon's event loop.

Why uvicorn + Starlette: both are mature ASGI pieces that run as a task of an existing asyncio loop
(``Server.serve()``), so the HTTP routes share the daemon's loop and its single writer instead of a thread or a
second process; Starlette's request streaming lets the body limit count bytes as they arrive; they were already
the test suite's server. (aiohttp would do too, but would add a second HTTP stack next to httpx.)

uvicorn 0.29+ wraps ``serve()`` in ``capture_signals()``, which installs SIGINT/SIGTERM handlers with
``signal.signal`` and re-raises the signal after shutdown: that would steal the daemon's own handlers (which only
set its stop flag). :class:`_EmbeddedServer` replaces ``capture_signals`` with a no-op; the daemon stops the
server by setting ``should_exit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette

from guardd.config import HttpSection

log = logging.getLogger("guardd.http")

GRACEFUL_SHUTDOWN = 3.0


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the daemon owns the signals


class HttpServer:
    """The HTTP service as a task of the running loop: :meth:`start`, then :meth:`stop`.

    guardd binds the socket itself and hands it to uvicorn, so a port in use is an OSError here (uvicorn would
    call ``sys.exit`` inside the daemon's loop). A unix socket is made mode 0660: its group may connect.
    """

    def __init__(self, app: Starlette, http: HttpSection) -> None:
        config: dict[str, Any] = {
            "log_config": None,
            "access_log": False,  # guardd logs what matters itself; never a request's headers
            "lifespan": "off",
            "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN,
            "server_header": False,
            "http": "httptools",  # the C parser; h11 (pure Python) parses at a third of the speed
        }
        self.listen = http.listen
        self.address = http.address
        self.server = _EmbeddedServer(uvicorn.Config(app, **config))
        self.task: asyncio.Task[None] | None = None
        self.sock: socket.socket | None = None

    def bind(self) -> socket.socket:
        """Create the listening socket; raise OSError (address in use, no permission)."""
        if isinstance(self.address, str):
            if os.path.exists(self.address):
                os.unlink(self.address)  # a stale socket of a previous run (one daemon per state is enforced)
            os.makedirs(os.path.dirname(self.address), exist_ok=True)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.bind(self.address)
                os.chmod(self.address, 0o660)
                sock.listen(2048)
            except OSError:
                sock.close()
                raise
            return sock
        host, port = self.address
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP. Without it
        # a response written in two parts waits for the client's delayed ACK: 40 ms per request (measured).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(2048)
        except OSError:
            sock.close()
            raise
        return sock

    async def start(self) -> None:
        """Start serving; return once the socket listens. Raise OSError when it cannot be bound."""
        try:
            self.sock = self.bind()
        except OSError as exc:
            raise OSError(f"the HTTP service cannot listen on {self.listen}: {exc.strerror or exc}") from exc
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]), name="http")
        while not self.server.started:
            if self.task.done():
                failure = self.task.exception()
                raise OSError(f"the HTTP service did not start on {self.listen}: {failure or 'it stopped'}")
            await asyncio.sleep(0.01)
        log.info("HTTP service listening on %s", self.listen)

    async def stop(self) -> None:
        """Stop accepting, let running requests finish (up to a few seconds), close the socket."""
        if self.task is None:
            return
        self.server.should_exit = True
        try:
            await asyncio.wait_for(self.task, GRACEFUL_SHUTDOWN + 2)
        except TimeoutError:
            log.warning("HTTP service did not stop in time; cancelled")
        except Exception as exc:
            log.warning("HTTP service stopped with an error: %s", exc)
        if self.sock is not None:
            self.sock.close()
        if isinstance(self.address, str):
            with contextlib.suppress(OSError):
                os.unlink(self.address)
