"""Three real ``guardd run`` processes on one PostgreSQL schema: separate state dirs, ledgers and switch files,
one webhook receiver (apprise ``json://`` to a local HTTP server)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import DaemonProcess, Webhook, free_port, wait_for

__all__ = ["Host", "Webhook", "wait_for"]

DAY = "2026-01-01T00:00:00Z"
HTTP_TOKEN = "cluster-token-0123456789abcdef"


@dataclass
class Host:
    """One instance: its folder, configuration, ledger and daemon."""

    name: str
    folder: Path
    config: Path
    daemon: DaemonProcess
    lines: int = field(default=0)
    http: int | None = None
    """The port of its HTTP service on 127.0.0.1 (None: it has none)."""

    @property
    def ledger(self) -> Path:
        return self.folder / "ledger.jsonl"

    @property
    def switch(self) -> Path:
        return self.folder / "state" / "killswitch.json"

    def append(self, *events: tuple[str, str], team: str | None = None) -> None:
        """Append ``(id, cost)`` events stamped now (the daily window's), labelled ``team`` when given."""
        from datetime import UTC, datetime

        now = datetime.now(UTC).isoformat()
        labels = {"team": team} if team else {}
        with self.ledger.open("a") as handle:
            for key, cost in events:
                line = {"ts": now, "id": key, "model": "m/x", "cost": cost, "labels": labels}
                handle.write(json.dumps(line) + "\n")

    def switch_doc(self) -> dict[str, Any] | None:
        try:
            return dict(json.loads(self.switch.read_text()))
        except (OSError, ValueError):
            return None

    def tripped(self) -> bool:
        doc = self.switch_doc()
        return bool(doc and doc.get("tripped"))

    def guardd(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GUARDD_", "OPENROUTER_"))}
        return subprocess.run(
            [sys.executable, "-m", "guardd", *args, "-c", str(self.config)],
            capture_output=True,
            text=True,
            cwd=self.folder,
            env=env,
            timeout=60,
        )

    def status(self) -> dict[str, Any]:
        done = self.guardd("status", "--json")
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        """POST ``body`` (JSON) to this host's HTTP service with its token."""
        assert self.http is not None
        headers = {"Authorization": f"Bearer {HTTP_TOKEN}"}
        return httpx.post(f"http://127.0.0.1:{self.http}{path}", json=body, headers=headers, timeout=30)

    def kill9(self) -> None:
        proc = self.daemon.proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        self.daemon.close_log()


def write_config(
    folder: Path, name: str, url: str, hook: str, daily: str, every: str = "2s", http: int | None = None
) -> Path:
    """The configuration of host ``name``; with ``http``, its HTTP service on that port of 127.0.0.1."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ledger.jsonl").touch()
    path = folder / "guardd.toml"
    path.write_text(
        f"""[guardd]
instance = "{name}"
state_dir = "state"
evaluate_every = "{every}"
stale_after = "5m"

[store]
url = "{url}"

[[ledgers]]
path = "ledger.jsonl"

[[budgets]]
name = "all"
daily = {daily}
warn_at = []

[[budgets]]
name = "search"
match = {{ team = "search" }}
daily = 1
warn_at = []

[[notifiers]]
url = "{hook}"
min_severity = "info"

[alerts]
send_resolved = false
repeat_every = "0"
"""
        + (f'\n[http]\nlisten = "127.0.0.1:{http}"\ntoken = "{HTTP_TOKEN}"\n' if http else "")
    )
    path.chmod(0o600)
    return path


@pytest.fixture
def cluster(pg_url: str, tmp_path: Path) -> Iterator[Any]:
    """A factory: ``cluster(3)`` starts three hosts (web-1 … web-3) and returns them with the webhook."""
    hook = Webhook()
    hosts: list[Host] = []

    def start(
        count: int = 3, daily: str | list[str] = "10", every: str = "2s", http: bool = False
    ) -> tuple[list[Host], Webhook]:
        for index in range(1, count + 1):
            name = f"web-{index}"
            folder = tmp_path / name
            limit = daily if isinstance(daily, str) else daily[index - 1]
            port = free_port() if http else None
            config = write_config(folder, name, pg_url, hook.url, limit, every, port)
            host = Host(name, folder, config, DaemonProcess(config, folder), http=port)
            hosts.append(host)
        with ThreadPoolExecutor(count) as pool:  # started side by side: each waits for its READY=1
            list(pool.map(lambda h: h.daemon.start(), hosts))
        return hosts, hook

    yield start
    for host in hosts:
        host.daemon.kill()
    hook.close()


def leader_of(hosts: list[Host]) -> Host:
    """The host whose daemon leads now (as the shared store says)."""

    def named() -> str | None:
        return hosts[0].status().get("cluster", {}).get("leader")

    name = wait_for(named, timeout=30, interval=0.3)
    return next(h for h in hosts if h.name == name)
