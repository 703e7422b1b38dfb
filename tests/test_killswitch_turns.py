"""One host (SQLite): the daemon and a ``guardd killswitch`` command both decide the switch, taking turns on the
stored document (one transaction each). A manual trip committed by the command while the daemon is deciding must
be in the daemon's decision: the daemon read the overrides before its turn, decided from that older list and
released the trip the command had just made (a flap in the switch file, a false "ended" in history and a release
message) until its next evaluation tripped it again."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from guardd.app import open_app
from guardd.config import load_config
from guardd.services.jobs import Engine
from guardd.services.overrides import apply_manual

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class CommandInBetween:
    """The daemon's state, but the command's trip commits right after the daemon reads the overrides."""

    def __init__(self, state: Any, command: Any) -> None:
        self.state, self.command, self.done = state, command, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.state, name)

    async def overrides(self) -> Any:
        read = await self.state.overrides()
        if not self.done:
            self.done = True
            await self.command()
        return read


async def test_a_manual_trip_made_while_the_daemon_decides_stays_tripped(tmp_path: Path):
    path = tmp_path / "guardd.toml"
    path.write_text('[guardd]\nstate_dir = "state"\n[[budgets]]\nname = "b"\ndaily = 10\n')
    config = load_config(str(path))
    async with open_app(config) as daemon, open_app(config) as command:
        await daemon.engine.cycle(NOW)  # the daemon has decided once: nothing tripped

        async def trip() -> None:
            command.engine.keeps_heartbeat = True
            await apply_manual(command.engine, "trip", "b", None, "incident", "alice", NOW)

        engine = Engine(config, CommandInBetween(daemon.stores.state, trip), daemon.evaluator)  # type: ignore[arg-type]
        doc = await engine.cycle(NOW)

        assert doc.scopes["b"].tripped
        switch = [h.detail for h in await daemon.stores.state.history(None) if h.kind == "switch"]
        assert not [line for line in switch if "ended" in line or "released" in line], switch
