"""A manual trip/release whose leader's term ends after its overrides are committed but before the switch is
decided: the overrides are recorded once, and what the next leader must apply is known without recording again.

Recording again was the bug: a release of a budget tripped by hand first removed the manual trip; the retry, finding
no manual trip left, recorded a ``released`` override with no end — the switch held open until removed by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from guardd.app import open_app
from guardd.config import load_config
from guardd.errors import NotLeader
from guardd.services.overrides import ManualNotApplied, apply_manual, requested

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def config(tmp_path: Path):
    path = tmp_path / "guardd.toml"
    path.write_text('[guardd]\nstate_dir = "state"\n[[budgets]]\nname = "b"\ndaily = 10\n')
    return load_config(str(path))


async def test_a_release_whose_term_ends_before_the_switch_is_decided_is_recorded_once(tmp_path, monkeypatch):
    async with open_app(config(tmp_path)) as app:
        engine = app.engine
        await apply_manual(engine, "trip", "b", None, "incident", "alice", NOW)

        async def term_over(*args: object, **kwargs: object) -> None:
            raise NotLeader("the lease was lost")

        monkeypatch.setattr(engine, "cycle", term_over)
        with pytest.raises(ManualNotApplied) as lost:
            await apply_manual(engine, "release", "b", None, "fixed", "bob", NOW)
        assert isinstance(lost.value, NotLeader)  # callers that only know NotLeader still see the term's end
        monkeypatch.undo()

        request = await requested(engine, lost.value.recorded, NOW)  # what the daemon does next, recording nothing
        assert await app.stores.state.overrides() == []  # the manual trip is gone; no endless release was added
        assert request.expected == {"b": None}
        assert request.applied(await engine.cycle(NOW))  # the next decision shows the release


def test_a_repeated_release_with_a_new_end_is_not_taken_as_applied_by_the_old_switch():
    from datetime import timedelta

    from guardd.core.switch import Override, Scope, SwitchDoc
    from guardd.services.overrides import ManualRequest

    old = Override("b", "released", "alice", "fixed", NOW + timedelta(hours=1), created_at=NOW)
    new = Override("b", "released", "alice", "fixed", NOW + timedelta(hours=3), created_at=NOW)  # a new --for
    shown = Override("b", "released", "alice", "fixed", old.until)  # a switch document carries no created_at
    doc = SwitchDoc(NOW, NOW, {"b": Scope(False, None, None, old.until, "manual", None, None, 0, shown)})
    assert ManualRequest({"b": old}).applied(doc)
    assert not ManualRequest({"b": new}).applied(doc)


async def test_a_release_asked_again_before_the_first_is_applied_adds_no_endless_release(tmp_path):
    """A follower's release waits for the leader (503, exit 75 when none applies it in time); asking again
    meanwhile found the manual trip gone and recorded a ``released`` override with no end: the budget could
    never trip again until someone removed it by hand."""
    from guardd.services.overrides import request_manual

    async with open_app(config(tmp_path)) as app:
        await apply_manual(app.engine, "trip", "b", None, "incident", "alice", NOW)
        await request_manual(app.engine, "release", "b", None, "fixed", "bob", NOW)  # recorded, not applied

        again = await request_manual(app.engine, "release", "b", None, "fixed", "bob", NOW)

        assert await app.stores.state.overrides() == []
        assert again.expected == {"b": None}
        assert again.applied(await app.engine.cycle(NOW))
