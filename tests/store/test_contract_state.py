"""The state half of the storage contract (alerts, outbox, channels, overrides, silences, history, switch,
markers), run over both backends: SQLite and PostgreSQL must behave the same."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta

import pytest

from guardd.core.alerts import AlertState
from guardd.core.switch import Override, Scope, ScopeChange, SwitchDoc
from guardd.errors import StoreError
from guardd.store.api import (
    ChannelCount,
    ChannelHealth,
    Checkpoint,
    HistoryLine,
    ListedKey,
    Message,
    Silence,
    SwitchDecision,
)
from tests.store.backends import BACKENDS, USD, Backend, batch, make_backend

NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
LEASE = timedelta(minutes=1)


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path) -> Backend:
    pg_url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    return make_backend(request.param, tmp_path, pg_url)


def message(title: str = "over budget", budget: str | None = "b") -> Message:
    return Message(budget, "warning", title, "body text", 0, "json://127.0.0.1/…")


async def test_alert_states_are_saved_with_their_messages_and_history(backend):
    states = {"daily": AlertState("daily", "2026-11-02", 80.0, False, True, False, NOW)}
    async with backend.state() as state:
        await state.save_alerts("b", states, [message(), message("two")], [("alert", "b passed 80%")], NOW)
        assert await state.alert_states("b") == states
        assert await state.pending_count() == 2
        assert await state.history(None) == [HistoryLine(NOW, "alert", "b", "b passed 80%")]


async def test_a_claimed_message_is_not_claimed_again_until_its_lease_expires(backend):
    async with backend.state() as state:
        await state.enqueue([message()], NOW)
        [row] = await state.claim("me:1", NOW, LEASE)
        assert (row.title, row.attempts, row.created_at) == ("over budget", 0, NOW)
        assert await state.claim("other:2", NOW + LEASE / 2, LEASE) == []
        assert [r.id for r in await state.claim("other:2", NOW + 2 * LEASE, LEASE)] == [row.id]


async def test_two_deliverers_claiming_at_once_never_share_a_message(backend):
    async with backend.state() as state:
        await state.enqueue([message(f"m{i}") for i in range(40)], NOW)

    async def claim_all(owner: str) -> list[int]:
        async with backend.state(owner) as state:
            got: list[int] = []
            while rows := await state.claim(owner, NOW, LEASE, limit=3):
                got += [r.id for r in rows]
            return got

    first, second = await asyncio.gather(claim_all("a:1"), claim_all("b:2"))
    assert sorted(first + second) == sorted(set(first + second)) and len(first + second) == 40


async def test_a_delivered_message_is_no_longer_pending_and_is_in_the_history(backend):
    async with backend.state() as state:
        await state.enqueue([message()], NOW)
        [row] = await state.claim("me:1", NOW, LEASE)
        await state.delivered(row, NOW)
        assert await state.pending_count() == 0
        assert await state.claim("me:1", NOW + 2 * LEASE, LEASE) == []
        [line] = await state.history(None)
        kind, detail = line.kind, line.detail
        assert (kind, detail) == ("delivery", "delivered to json://127.0.0.1/…: over budget")


async def test_a_failed_message_is_due_again_at_its_retry_time_and_given_up_without_one(backend):
    async with backend.state() as state:
        await state.enqueue([message()], NOW)
        [row] = await state.claim("me:1", NOW, LEASE)
        await state.failed(row, NOW, "HTTP 500", NOW + timedelta(seconds=30))
        assert await state.claim("me:1", NOW + timedelta(seconds=29), LEASE) == []
        [again] = await state.claim("me:1", NOW + timedelta(seconds=30), LEASE)
        assert again.attempts == 1
        await state.failed(again, NOW, "HTTP 404", None)
        assert await state.pending_count() == 0


async def test_the_notifiers_a_message_was_queued_for_are_those_of_the_rows_queued_with_it(backend):
    async with backend.state() as state:
        both = [message(), Message("b", "warning", "over budget", "body text", 1, "slack://…")]
        await state.enqueue(both, NOW)
        await state.enqueue([Message("b", "warning", "later", "body", 2, "mailto://…")], NOW)
        await state.enqueue([Message("b", "warning", "over budget", "body", 2, "mailto://…")], NOW + LEASE)
        first, _, _, _ = await state.claim("me:1", NOW + LEASE, LEASE)
        assert await state.addressed(first) == {"json://127.0.0.1/…", "slack://…"}


async def test_a_rerouted_message_is_sent_and_counted_under_its_new_notifier_with_a_history_line(backend):
    async with backend.state() as state:
        await state.enqueue([message()], NOW)
        [row] = await state.claim("me:1", NOW, LEASE)
        await state.failed(row, NOW, "refused", NOW)
        [row] = await state.claim("me:1", NOW, LEASE)
        await state.reroute(row, 3, "slack://…", "its URL changed", NOW)
        [line] = await state.history(None)
        assert line.detail == "re-routed from json://127.0.0.1/… to slack://…: its URL changed"
        [again] = await state.claim("me:1", NOW + 2 * LEASE, LEASE)
        assert (again.notifier, again.notifier_url, again.attempts) == (3, "slack://…", 1)


async def test_messages_waiting_for_a_notifier_no_longer_configured_are_made_due_at_once(backend):
    later = NOW + timedelta(hours=1)
    async with backend.state() as state:
        await state.enqueue([message("old"), Message("b", "warning", "kept", "body", 1, "slack://…")], NOW)
        for row in await state.claim("me:1", NOW, LEASE):
            await state.failed(row, NOW, "refused", later)
        assert await state.hasten(["slack://…"], NOW) == 1
        assert [r.title for r in await state.claim("me:1", NOW, LEASE)] == ["old"]
        assert await state.hasten([], NOW) == 1  # no notifier at all: every waiting row
        assert [r.title for r in await state.claim("me:1", NOW, LEASE)] == ["kept"]


async def test_messages_given_up_for_one_reason_are_listed_since_a_time(backend):
    async with backend.state() as state:
        await state.enqueue([message("one"), message("two", None), message("three")], NOW)
        one, two, three = await state.claim("me:1", NOW, LEASE)
        await state.failed(one, NOW, "gone", None)
        await state.failed(two, NOW + LEASE, "gone", None)
        await state.failed(three, NOW + LEASE, "HTTP 404", None)
        assert await state.given_up(NOW + LEASE, "gone") == [(None, "json://127.0.0.1/…", "two", NOW + LEASE)]
        assert [r[2] for r in await state.given_up(NOW, "gone")] == ["one", "two"]


async def test_a_channel_reports_when_it_starts_failing_and_since_when_keeping_its_last_error(backend):
    url = "slack://…"
    async with backend.state() as state:
        assert await state.channel_result(url, False, "HTTP 404", NOW) is True
        assert await state.channel_result(url, False, "HTTP 404", NOW + LEASE) is False
        assert await state.channel_health() == {url: ChannelHealth(False, "HTTP 404", NOW)}
        assert await state.channel_result(url, True, None, NOW + 2 * LEASE) is False
        assert await state.channel_health() == {url: ChannelHealth(True, "HTTP 404", None)}


async def test_an_override_replaces_the_previous_one_of_its_scope_and_can_be_removed(backend):
    async with backend.state() as state:
        await state.set_override(Override("b", "tripped", "ann", "test", NOW + LEASE), NOW)
        await state.set_override(Override("b", "released", "bob", "fine"), NOW)
        assert await state.overrides() == [Override("b", "released", "bob", "fine", None, NOW)]
        await state.remove_override("b", NOW, "released by window reset")
        assert await state.overrides() == []
        assert len(await state.history(None)) == 3


async def test_an_override_removed_twice_is_recorded_once(backend):
    async with backend.state("host-a") as a, backend.state("host-b") as b:
        await a.set_override(Override("b", "tripped", "ann", "test"), NOW)
        await asyncio.gather(a.remove_override("b", NOW, "released by ann"), b.remove_override("b", NOW, "by bob"))
        removed = [h.detail for h in await a.history(None) if h.kind == "override"][:-1]
        assert removed in (["released by ann"], ["by bob"])  # the newest line first; the set_override line last


async def test_silences_are_listed_while_active_and_removed_by_id(backend):
    async with backend.state() as state:
        first = await state.add_silence("b", NOW + LEASE, "deploy", "ann", NOW)
        await state.add_silence("c", NOW - LEASE, "old", "ann", NOW - 2 * LEASE)
        assert await state.silences(NOW) == [Silence(first, "b", NOW + LEASE, "deploy", "ann")]
        assert await state.remove_silence(first, "bob", NOW) is True
        assert await state.remove_silence(first, "bob", NOW) is False
        assert await state.silences(NOW) == []


async def test_history_is_newest_first_from_a_time_with_a_limit(backend):
    async with backend.state() as state:
        for minute in range(5):
            await state.add_history("alert", None, f"m{minute}", NOW + timedelta(minutes=minute))
        since = await state.history(NOW + timedelta(minutes=2))
        limited = await state.history(None, limit=2)
    assert [h.detail for h in since] == ["m4", "m3", "m2"]
    assert [h.detail for h in limited] == ["m4", "m3"]


async def test_the_switch_document_comes_back_as_it_was_saved(backend):
    scope = Scope(True, "daily limit reached", NOW, None, "daily", 5 * 10**12, 5 * 10**12, 0, None)
    doc = SwitchDoc(NOW, NOW, {"b": scope})
    async with backend.state() as state:
        assert await state.switch_doc() is None
        await state.update_switch(lambda *_: SwitchDecision(doc, [("b", "tripped")], True), NOW)
        saved = await state.switch_doc()
    assert saved is not None and saved.to_json() == doc.to_json()


async def test_a_switch_decision_is_given_the_overrides_stored_when_its_turn_comes(backend):
    seen: list[list[Override]] = []

    def step(previous: SwitchDoc | None, overrides: list[Override]) -> SwitchDecision:
        seen.append(overrides)
        return SwitchDecision(SwitchDoc(NOW, NOW, {}), [], False)

    async with backend.state() as state:
        await state.set_override(Override("b", "tripped", "ann", "incident"), NOW)
        await state.update_switch(step, NOW)
    assert [(o.scope, o.state, o.by) for o in seen[0]] == [("b", "tripped", "ann")]


async def test_a_switch_decision_is_taken_from_the_stored_document_and_recorded_once(backend):
    scope = Scope(True, "daily limit reached", NOW, None, "daily", 5 * 10**12, 5 * 10**12, 0, None)
    tripped = SwitchDoc(NOW, NOW, {"b": scope})
    seen: list[SwitchDoc | None] = []

    def step(previous: SwitchDoc | None, overrides: object) -> SwitchDecision:
        seen.append(previous)
        changed = previous is None
        return SwitchDecision(tripped, [("b", "tripped")] if changed else [], changed)

    async with backend.state() as state:
        await state.update_switch(step, NOW)
        await state.update_switch(step, NOW)
        history = [h.detail for h in await state.history(None) if h.kind == "switch"]
    assert seen[0] is None and seen[1] is not None and seen[1].to_json() == tripped.to_json()
    assert history == ["tripped"]


async def test_a_marker_set_to_the_value_it_has_reports_that_the_job_already_ran(backend):
    async with backend.state() as state:
        assert await state.set_marker("digest", "2026-11-02", NOW) is True
        assert await state.set_marker("digest", "2026-11-02", NOW) is False
        assert await state.set_marker("digest", "2026-11-03", NOW) is True
        assert await state.marker("digest") == "2026-11-03"


async def test_a_lease_held_by_a_process_that_no_longer_runs_is_freed(backend):
    gone = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await gone.wait()
    async with backend.state() as state:
        await state.enqueue([message()], NOW)
        await state.claim(f"host-x:{gone.pid}", NOW, LEASE)
        assert await state.release_dead_leases("host-x") == 1
        assert len(await state.claim("host-x:1", NOW, LEASE)) == 1


async def test_a_lease_of_another_instance_is_kept_though_a_process_of_that_number_is_gone_here(backend):
    gone = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await gone.wait()
    async with backend.state() as state:
        await state.enqueue([message()], NOW)
        await state.claim(f"web-2:{gone.pid}", NOW, LEASE)  # its pid lives in web-2's container, not here
        assert await state.release_dead_leases("web-1") == 0
        assert await state.claim("web-1:1", NOW, LEASE) == []


async def test_an_underscore_in_an_instance_name_matches_only_an_underscore(backend):
    gone = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await gone.wait()
    async with backend.state() as state:
        await state.enqueue([message()], NOW)
        await state.claim(f"webx1:{gone.pid}", NOW, LEASE)
        assert await state.release_dead_leases("web_1") == 0
        assert await state.release_dead_leases("web%") == 0


async def test_a_message_is_stored_with_the_secrets_in_its_text_redacted(backend):
    key = "sk-or-v1-" + "ab" * 32
    async with backend.state() as state:
        await state.enqueue([Message("b", "warning", f"key {key} failed", f"Bearer {key}", 0, "json://…")], NOW)
        [row] = await state.claim("me:1", NOW, LEASE)
    assert key not in row.title + row.body and "…abab" in row.title


async def test_notification_counts_are_delivered_messages_and_failed_attempts_per_channel(backend):
    async with backend.state() as state:
        await state.enqueue([message("one"), message("two")], NOW)
        first, second = await state.claim("me:1", NOW, LEASE)
        await state.delivered(first, NOW)
        await state.failed(second, NOW, "HTTP 500", NOW)
        assert await state.notification_counts() == [ChannelCount("json://127.0.0.1/…", 1, 1)]


async def test_notify_once_queues_its_messages_only_the_first_time_for_a_value(backend):
    async with backend.state() as state:
        assert await state.notify_once("low-balance", "2026-11-02", [message()], "balance low", NOW) is True
        assert await state.notify_once("low-balance", "2026-11-02", [message()], "balance low", NOW) is False
        assert await state.pending_count() == 1
        assert [h.detail for h in await state.history(None)] == ["balance low"]


async def test_key_changes_saved_with_a_switch_decision_stay_pending_until_done(backend):
    doc = SwitchDoc(NOW, NOW, {})
    trip, release = ScopeChange("b", True, "daily", "daily"), ScopeChange("b", False, "reset", None)
    async with backend.state() as state:
        await state.update_switch(lambda *_: SwitchDecision(doc, [("b", "tripped")], True, [trip]), NOW)
        await state.update_switch(lambda *_: SwitchDecision(doc, [("b", "released")], True, [release]), NOW)
        assert await state.pending_key_changes() == [trip, release]
        await state.key_change_done(trip, NOW)
        assert await state.pending_key_changes() == [release]


async def test_a_key_switch_record_commits_with_its_notice_once(backend):
    async with backend.stores() as stores:
        state = stores.state
        await stores.remote.save_keys([ListedKey("hash-1")], NOW)
        await state.record_key("hash-1", True, [message("key disabled")], "disabled key …abc1", NOW)
        # the same switch recorded again (two processes switched the key at once): nothing new to announce
        await state.record_key("hash-1", True, [message("key disabled")], "disabled key …abc1", NOW)
        assert await state.pending_count() == 1
        assert [(h.kind, h.detail) for h in await state.history(None)] == [("keys", "disabled key …abc1")]


async def test_messages_queued_with_a_history_line_commit_together(backend):
    async with backend.state() as state:
        await state.enqueue([message()], NOW, ("b", "b passed 80%"))
        assert await state.pending_count() == 1
        assert await state.history(None) == [HistoryLine(NOW, "alert", "b", "b passed 80%")]


def test_two_first_switch_decisions_at_once_are_taken_in_turns(backend):
    """Two processes (the daemon and ``guardd killswitch trip``, or two instances) decide the FIRST switch document
    of a store at the same moment: the second must decide from the first's result, or the first's trip is lost
    (overwritten) though it was recorded and reported. Each decides in its own thread and event loop; a step waits
    (bounded) until the other has read too, so that both read before either writes when the backend lets them."""
    import threading

    read = {"a": threading.Event(), "b": threading.Event()}

    def decide(me: str, other: str) -> None:
        def step(previous: SwitchDoc | None, overrides: object) -> SwitchDecision:
            read[me].set()
            read[other].wait(3)  # a backend that takes turns keeps the other waiting: no deadlock, only this bound
            scopes = dict(previous.scopes) if previous else {}
            scopes[me] = Scope(True, "manual", NOW, None, None, None, None, 0, None)
            return SwitchDecision(SwitchDoc(NOW, NOW, scopes), [(me, "tripped")], True)

        async def run() -> None:
            async with backend.state(f"host-{me}") as state:
                await state.update_switch(step, NOW)

        asyncio.run(run())

    async def create() -> None:
        async with backend.state() as state:  # the schema exists before the race; no switch document yet
            assert await state.switch_doc() is None

    asyncio.run(create())
    threads = [threading.Thread(target=decide, args=pair) for pair in (("a", "b"), ("b", "a"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    async def check() -> tuple[SwitchDoc | None, list[str]]:
        async with backend.state() as state:
            return await state.switch_doc(), [str(h.budget) for h in await state.history(None) if h.kind == "switch"]

    doc, history = asyncio.run(check())
    assert doc is not None and sorted(doc.scopes) == ["a", "b"]
    assert sorted(history) == ["a", "b"]


async def test_a_failing_write_stays_the_store_health_until_that_kind_of_write_commits(backend):
    broken = Checkpoint(None, "/l", 1, 2, "fp", 9, 9, "", 0, 0, None)  # type: ignore[arg-type]
    async with backend.stores() as stores:
        with pytest.raises(StoreError):
            await stores.events.write_batch(batch(("g:a", 5, USD)), broken)
        await stores.state.set_override(Override("b", "tripped", "alice", "deploy"), NOW)  # another kind commits
        assert stores.health.write_error is not None  # the ledger's writes still fail, as far as anyone knows
        await stores.events.write_batch(batch(("g:a", 5, USD)))
        assert stores.health.write_error is None
