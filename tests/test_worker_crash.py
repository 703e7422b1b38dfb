"""A daemon whose worker dies does not go on pretending to run: it stops, and `guardd run` fails."""

from __future__ import annotations

import asyncio

import pytest

from guardd.config import load_config
from guardd.daemon.server import run
from guardd.errors import GuarddError
from guardd.services.worker import Worker


async def test_the_daemon_stops_with_an_error_when_its_worker_dies(tmp_path, monkeypatch):
    (tmp_path / "guardd.toml").write_text('[guardd]\nstate_dir = "state"\n')
    config = load_config(str(tmp_path / "guardd.toml"))
    turns = 0
    real_turn = Worker.turn

    async def turn_then_break(self: Worker) -> None:
        nonlocal turns
        turns += 1
        if turns > 1:
            raise RuntimeError("a bug in a step's bookkeeping")
        await real_turn(self)

    monkeypatch.setattr(Worker, "turn", turn_then_break)
    with pytest.raises(GuarddError, match="worker stopped unexpectedly"):
        await asyncio.wait_for(run(config), timeout=30)
