"""A kill-switch file that cannot be written is a failed write (contract §8, tryout #3), with a real daemon."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import wait_for
from tests.http.conftest import Served, serve

BUDGETS = """
[[budgets]]
name = "team"
daily = 1.00
forecast = false
[killswitch]
path = "sw/killswitch.json"
"""


@pytest.fixture
def switch_served(tmp_path: Path) -> Iterator[Served]:
    yield from serve(tmp_path, budgets=BUDGETS)


def heartbeat_metric(served: Served) -> float:
    text = served.client.get("/metrics").text
    line = next(x for x in text.splitlines() if x.startswith("guardd_heartbeat_timestamp_seconds "))
    return float(line.split()[1])


def test_a_switch_file_that_cannot_be_written_fails_healthz_status_check_and_stops_the_heartbeat(switch_served):
    folder = switch_served.folder / "state" / "sw"
    wait_for(lambda: (folder / "killswitch.json").exists(), timeout=60)
    assert wait_for(lambda: switch_served.client.get("/healthz").status_code == 200, timeout=60)
    shutil.rmtree(folder)
    folder.write_text("not a folder: the switch file cannot be written under it\n")  # fails for root too
    broken_at = time.time()

    assert wait_for(lambda: switch_served.client.get("/healthz").status_code == 503, timeout=60)
    assert "kill-switch file" in switch_served.client.get("/healthz").json()["reason"]
    store = switch_served.client.get("/v1/status").json()["store"]
    assert store["ok"] is False and "kill-switch file" in store["error"], store
    time.sleep(3)  # evaluations (every 1 s) keep running and failing meanwhile
    # The heartbeat metric is the last heartbeat written to the file, from before it broke; it does not move.
    assert heartbeat_metric(switch_served) <= broken_at
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUARDD_", "OPENROUTER_"))}
    check = subprocess.run(
        [sys.executable, "-m", "guardd", "check", "-c", str(switch_served.folder / "guardd.toml")],
        capture_output=True,
        text=True,
        cwd=switch_served.folder,
        env=env,
        timeout=120,
    )
    assert check.returncode == 2 and "kill-switch file" in check.stdout, check.stdout + check.stderr
