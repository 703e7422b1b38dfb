"""A side effect and its record commit together: a write that fails between the two loses nothing and repeats
nothing (faults injected at the state store's seam; OpenRouter is the stand-in over real sockets)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from guardd.core.batch import Parsed
from guardd.core.money import parse_money
from guardd.core.switch import ScopeChange
from guardd.errors import StoreError
from guardd.services.digest import send_digest
from guardd.services.openrouter.keys import KeySwitch
from guardd.store.api import SwitchDecision
from guardd.store.state import StateStore  # both backends' state rows: faults reach SQLite and PostgreSQL
from tests.adapters import test_openrouter as openrouter_tests
from tests.adapters.test_openrouter import BERLIN_EVENING, KEY, KEYS_ON, TRIP

fake = openrouter_tests.fake  # the stand-in server and the rig around it, as fixtures here too
rig = openrouter_tests.rig
store_url = openrouter_tests.store_url


def fail_once(monkeypatch, cls: type, name: str) -> list[int]:
    """Make ``cls.name`` raise StoreError on its first call (a failed write), then work; return the call log."""
    calls: list[int] = []
    real = getattr(cls, name)

    async def flaky(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise StoreError("disk I/O error (injected)")
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(cls, name, flaky)
    return calls


async def attempt(coro) -> None:
    try:
        await coro
    except StoreError:
        pass  # the failed step; the daemon logs it and runs the job again


@pytest.mark.parametrize("rig", [("", 'low_balance = 10\nrunway_warn = "3d"\n')], indirect=True)
async def test_a_low_balance_alert_whose_queueing_failed_is_sent_on_the_next_check(rig, fake, monkeypatch):
    key = fake.add_key(KEY, usage="80")
    await rig.poller.poll(BERLIN_EVENING - timedelta(hours=6))
    key.add(Decimal("15"))
    await rig.poller.poll(BERLIN_EVENING)
    fail_once(monkeypatch, StateStore, "_enqueue")
    await attempt(rig.checks.run(BERLIN_EVENING))
    await rig.checks.run(BERLIN_EVENING + timedelta(minutes=1))
    await rig.checks.run(BERLIN_EVENING + timedelta(minutes=2))
    titles = await rig.outbox()
    assert len([t for t in titles if "balance is low" in t]) == 1
    assert len([t for t in titles if "run out in about" in t]) == 1


@pytest.mark.parametrize("rig", [("", "reconcile_tolerance = 1\n")], indirect=True)
async def test_a_drift_alert_whose_queueing_failed_is_sent_on_the_next_check(rig, fake, monkeypatch):
    key = fake.add_key(KEY, usage="10")
    await rig.poller.poll(datetime(2026, 11, 20, 22, 59, tzinfo=UTC))  # before local midnight: a whole day
    key.add(Decimal("4.10"))
    await rig.poller.poll(BERLIN_EVENING)
    fail_once(monkeypatch, StateStore, "_enqueue")
    await attempt(rig.checks.run(BERLIN_EVENING))
    await rig.checks.run(BERLIN_EVENING + timedelta(minutes=1))
    assert len([t for t in await rig.outbox() if "no ledger recorded" in t]) == 1


async def test_a_digest_whose_queueing_failed_is_sent_when_the_job_runs_again(rig, monkeypatch):
    fail_once(monkeypatch, StateStore, "_enqueue")
    await attempt(send_digest(rig.config, rig.engine, rig.state, BERLIN_EVENING))
    await send_digest(rig.config, rig.engine, rig.state, BERLIN_EVENING + timedelta(minutes=1))
    await send_digest(rig.config, rig.engine, rig.state, BERLIN_EVENING + timedelta(minutes=2))
    assert len([t for t in await rig.outbox() if "daily summary" in t]) == 1


async def test_a_delivered_message_whose_mark_failed_is_neither_lost_nor_sent_again(rig, webhook, monkeypatch):
    rig.engine.channels = [rig.engine.channels[0].__class__.build(0, webhook.url, (), "info")]
    await rig.engine.notify_system("guardd: hello", "body", "warning", BERLIN_EVENING)
    rows = await rig.store.fetchall("SELECT id FROM outbox")
    async with rig.store.transaction() as conn:  # either backend's raw connection: no placeholders, a plain URL
        await conn.execute(f"UPDATE outbox SET notifier_url = '{rig.engine.channels[0].display}'")
    fail_once(monkeypatch, StateStore, "delivered")
    await attempt(rig.engine.deliver(BERLIN_EVENING))
    later = BERLIN_EVENING + timedelta(minutes=10)  # past the lease: the row could be claimed again
    await rig.engine.deliver(later)
    await rig.engine.deliver(later + timedelta(minutes=1))
    assert len(webhook.bodies) == 1
    assert await rig.store.fetchall("SELECT id FROM outbox WHERE delivered_at IS NOT NULL") == rows


async def trip_and_release(rig, monkeypatch, fail: str | None, at_release: bool) -> None:
    await rig.poller.poll(BERLIN_EVENING)
    sig = '["m","prod-api",null,[]]'
    ts = int((BERLIN_EVENING - timedelta(minutes=5)).timestamp() * 1000)
    await rig.events.write_batch(Parsed.of([("g:1", ts, sig, parse_money(2), 0, 0)]))
    await rig.evaluator.refresh_series()
    if fail and not at_release:
        fail_once(monkeypatch, *FAULTS[fail])
    await attempt(rig.engine.cycle(BERLIN_EVENING))
    await rig.engine.cycle(BERLIN_EVENING + timedelta(seconds=30))
    tomorrow = BERLIN_EVENING + timedelta(hours=1)  # 00:30 Berlin: the daily window reset
    if fail and at_release:
        fail_once(monkeypatch, *FAULTS[fail])
    await attempt(rig.engine.cycle(tomorrow))
    await rig.engine.cycle(tomorrow + timedelta(seconds=30))


FAULTS = {"record": (StateStore, "record_key"), "decision": (StateStore, "update_switch")}


@pytest.mark.parametrize("rig", [(TRIP + KEYS_ON, "")], indirect=True)
@pytest.mark.parametrize("fail", ["record", "decision"])
@pytest.mark.parametrize("at_release", [False, True], ids=["at-trip", "at-release"])
async def test_a_key_switch_whose_record_failed_is_retried_and_announced(rig, fake, monkeypatch, fail, at_release):
    ours = fake.add_key(KEY, name="prod-api")
    await trip_and_release(rig, monkeypatch, fail, at_release)
    assert not ours.disabled
    titles = await rig.outbox()
    assert len([t for t in titles if "disabled OpenRouter key prod-api" in t]) == 1
    assert len([t for t in titles if "re-enabled OpenRouter key prod-api" in t]) == 1
    history = [h.detail for h in await rig.state.history(None) if h.kind == "switch"]
    assert [d.split(":")[0] for d in history] == ["released", "tripped"]  # newest first


@pytest.mark.parametrize("rig", [(TRIP + KEYS_ON, "")], indirect=True)
async def test_a_re_enabled_key_whose_record_failed_is_disabled_again_at_the_next_trip(rig, fake, monkeypatch):
    ours = fake.add_key(KEY, name="prod-api")
    await trip_and_release(rig, monkeypatch, "record", at_release=True)
    day_after = BERLIN_EVENING + timedelta(days=1)
    ts = int((day_after - timedelta(minutes=5)).timestamp() * 1000)
    await rig.events.write_batch(Parsed.of([("g:2", ts, '["m","prod-api",null,[]]', parse_money(2), 0, 0)]))
    assert (await rig.engine.cycle(day_after)).tripped
    assert ours.disabled


@pytest.mark.parametrize("rig", [(TRIP + KEYS_ON, "")], indirect=True)
async def test_a_trip_an_older_guardd_queued_switches_no_key_once_its_scope_is_released(rig, fake):
    ours = fake.add_key(KEY, name="prod-api")
    await rig.poller.poll(BERLIN_EVENING)
    doc = await rig.engine.cycle(BERLIN_EVENING)  # nothing spent: the scope is not tripped
    old = [ScopeChange("prod", True, "an old decision", "daily")]
    await rig.state.update_switch(lambda *_: SwitchDecision(doc, [], False, old), BERLIN_EVENING)
    restarted = KeySwitch(rig.app.full, rig.state, rig.app.stores.remote, rig.poller.client)  # a newer guardd
    assert await restarted.reconcile(doc, BERLIN_EVENING, rig.engine._system_messages) == []
    assert not ours.disabled and await rig.state.pending_key_changes() == []


@pytest.mark.parametrize("rig", [(TRIP + KEYS_ON, "")], indirect=True)
async def test_a_disable_openrouter_refused_is_tried_again_at_the_next_evaluation(rig, fake):
    ours = fake.add_key(KEY, name="prod-api")
    await rig.poller.poll(BERLIN_EVENING)
    ts = int((BERLIN_EVENING - timedelta(minutes=5)).timestamp() * 1000)
    await rig.events.write_batch(Parsed.of([("g:1", ts, '["m","prod-api",null,[]]', parse_money(2), 0, 0)]))
    await rig.evaluator.refresh_series()
    fake.fail(f"/keys/{ours.hash}", status=502, times=100, message="Bad Gateway")  # past the client's own retries
    assert (await rig.engine.cycle(BERLIN_EVENING)).tripped
    assert not ours.disabled  # refused: nothing recorded, nothing announced

    fake.state.faults.clear()
    await rig.engine.cycle(BERLIN_EVENING + timedelta(seconds=30))

    assert ours.disabled
    assert len([t for t in await rig.outbox() if "disabled OpenRouter key prod-api" in t]) == 1
