"""The HTTP service starts and stops with the daemon, and leaves the daemon's signals alone."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from tests.e2e.conftest import DaemonProcess, free_port
from tests.http.conftest import Served, http_config


def test_sigterm_stops_the_daemon_at_once_even_with_a_long_poll_waiting(served: Served):
    answers: list[int] = []

    def poll() -> None:
        try:
            answers.append(served.client.get("/v1/killswitch", params={"wait": 60}).status_code)
        except httpx.HTTPError:
            answers.append(-1)

    waiter = threading.Thread(target=poll)
    waiter.start()
    time.sleep(0.3)
    started = time.monotonic()
    assert served.daemon.stop() == 0
    assert time.monotonic() - started < 10
    waiter.join(10)
    assert answers and answers[0] in (200, -1)


def test_the_service_listens_on_a_unix_socket(tmp_path: Path):
    config = http_config(tmp_path, free_port())
    socket_path = tmp_path / "run" / "http.sock"
    config.write_text(config.read_text().replace('listen = "127.0.0.1:', f'listen = "unix:{socket_path}"\n# '))
    daemon = DaemonProcess(config, tmp_path)
    daemon.start()
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(socket_path)), base_url="http://guardd") as client:
            assert client.get("/healthz").json()["ok"] is True
        assert oct(socket_path.stat().st_mode & 0o777) == "0o660"
        assert daemon.stop() == 0
        assert not socket_path.exists()
    finally:
        daemon.kill()


def test_a_port_in_use_stops_the_daemon_with_a_clear_error(tmp_path: Path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        daemon = DaemonProcess(http_config(tmp_path, port), tmp_path)
        try:
            daemon.start()
        except AssertionError:
            pass
        assert daemon.proc is not None and daemon.proc.wait(30) == 1
        daemon.close_log()
        assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in daemon.log.read_text()
