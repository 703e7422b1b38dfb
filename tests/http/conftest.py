"""The daemon with its HTTP service, as a subprocess on 127.0.0.1, and an httpx client for it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from tests.e2e.conftest import DaemonProcess, free_port

TOKEN = "test-token-0123456789abcdef"


def http_config(
    folder: Path,
    port: int,
    token: str | None = TOKEN,
    budgets: str | None = None,
    timing: str = 'evaluate_every = "1s"',
) -> Path:
    (folder / "ledgers").mkdir(exist_ok=True)
    token_line = f'token = "{token}"' if token else ""
    budgets = (
        budgets
        or """
[[budgets]]
name = "team"
daily = 1.00
forecast = false
[[budgets]]
name = "claude"
match = { model = "anthropic/*" }
daily = 5
monthly = 50
"""
    )
    path = folder / "guardd.toml"
    path.write_text(f"""
[guardd]
state_dir = "state"
{timing}
[[ledgers]]
path = "ledgers/*.jsonl"
{budgets}
[http]
listen = "127.0.0.1:{port}"
{token_line}
""")
    path.chmod(0o600)
    return path


@dataclass
class Served:
    """A running daemon with HTTP: ``client`` carries no token, ``auth`` is the header that does."""

    folder: Path
    url: str
    client: httpx.Client
    daemon: DaemonProcess
    auth: ClassVar[dict[str, str]] = {"Authorization": f"Bearer {TOKEN}"}

    def post(self, path: str, **kwargs: object) -> httpx.Response:
        headers = {**self.auth, **kwargs.pop("headers", {})}  # type: ignore[dict-item]
        return self.client.post(path, headers=headers, **kwargs)  # type: ignore[arg-type]

    def ledger(self, line: str) -> None:
        with (self.folder / "ledgers" / "app.jsonl").open("a") as handle:
            handle.write(line + "\n")


def serve(
    folder: Path, token: str | None = TOKEN, budgets: str | None = None, timing: str = 'evaluate_every = "1s"'
) -> Iterator[Served]:
    port = free_port()
    daemon = DaemonProcess(http_config(folder, port, token, budgets, timing), folder)
    daemon.start()
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url, timeout=30) as client:
        try:
            yield Served(folder, url, client, daemon)
        finally:
            daemon.kill()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """A fresh daemon for one test (for tests that change the switch or the spend)."""
    yield from serve(tmp_path)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One daemon for a whole test module (for tests that only read, or write what no other test reads)."""
    yield from serve(tmp_path_factory.mktemp("shared"))
