"""Real parts for end-to-end tests: an SMTP server (aiosmtpd), a webhook receiver, the daemon as a subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {getattr(predicate, '__name__', 'condition')}")


class SMTP:
    """aiosmtpd on 127.0.0.1 that can be stopped and started again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[str] = []
        self.controller = None

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                outer.messages.append(envelope.content.decode("utf-8", "replace"))
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def url(self) -> str:
        return f"mailto://127.0.0.1:{self.port}?from=guardd@example.com&to=ops@example.com&user=&pass="


class Webhook:
    """A local HTTP server collecting the JSON bodies POSTed to it (apprise json://, Slack-style webhooks)."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length)
                try:
                    outer.bodies.append(json.loads(body))
                except ValueError:
                    outer.bodies.append({"raw": body.decode("utf-8", "replace")})
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    def titles(self) -> list[str]:
        return [b.get("title", "") for b in self.bodies]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def smtp():
    server = SMTP()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def webhook():
    server = Webhook()
    yield server
    server.close()


class DaemonProcess:
    """``guardd run`` as a subprocess, ready when it sent READY=1 to our NOTIFY_SOCKET."""

    def __init__(self, config: Path, cwd: Path) -> None:
        self.config, self.cwd = config, cwd
        self.proc: subprocess.Popen[str] | None = None
        self.log = cwd / "daemon.log"
        self._log_handle = None
        self.prefix: list[str] = []
        """Put before the command (e.g. ``setpriv`` dropping capabilities so that root obeys file modes)."""

    def start(self, timeout: float = 30.0) -> None:
        sock_path = str(self.cwd / f"notify-{time.monotonic_ns()}.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(sock_path)
        sock.settimeout(0.2)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GUARDD_", "OPENROUTER_"))}
        env["NOTIFY_SOCKET"] = sock_path
        if self._log_handle is not None:
            self._log_handle.close()
        log = self._log_handle = self.log.open("a")
        self.proc = subprocess.Popen(
            [*self.prefix, sys.executable, "-m", "guardd", "run", "-c", str(self.config)],
            cwd=self.cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    if "READY=1" in sock.recv(4096).decode():
                        break
                except TimeoutError:
                    if self.proc.poll() is not None:  # it stopped before becoming ready: leave its exit code
                        self.close_log()
                        raise AssertionError(f"daemon exited before ready:\n{self.log.read_text()}") from None
                    if time.monotonic() > deadline:
                        self.kill()
                        raise AssertionError(f"daemon did not become ready:\n{self.log.read_text()}") from None
        finally:
            sock.close()
            os.unlink(sock_path)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(30)
        self.close_log()
        return code

    def close_log(self) -> None:
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self.close_log()


@pytest.fixture
def daemon_factory(tmp_path: Path):
    started: list[DaemonProcess] = []

    def make(config: Path) -> DaemonProcess:
        d = DaemonProcess(config, tmp_path)
        started.append(d)
        return d

    yield make
    for d in started:
        d.kill()
