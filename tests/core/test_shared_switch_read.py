"""A shared store's switch (contract §9): the guard's liveness from its leader, and this host's file against it."""

from datetime import UTC, datetime, timedelta

import pytest

from guardd.core.switch_read import Liveness, Malformed, SwitchView, leader_liveness, local_agreement, read_document

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
FIVE_MINUTES = timedelta(minutes=5)


def view(*tripped: str) -> SwitchView:
    raw = {"schema": 1, "tripped": bool(tripped), "scopes": {name: {"tripped": True} for name in tripped}}
    parsed = read_document(raw)
    assert isinstance(parsed, SwitchView)
    return parsed


ALIVE = Liveness(True, NOW, NOW + FIVE_MINUTES, None)


def test_a_leader_in_its_term_is_a_live_guard_whose_heartbeat_is_its_last_visit():
    seen = NOW - timedelta(seconds=1)
    assert leader_liveness("web-1", "web-1", seen, NOW, FIVE_MINUTES) == Liveness(True, seen, seen + FIVE_MINUTES, None)


def test_without_a_leader_the_last_decision_holds_until_its_expiry():
    assert leader_liveness(None, "web-1", NOW - timedelta(minutes=4), NOW, FIVE_MINUTES).alive


def test_without_a_leader_past_the_last_ones_expiry_the_guard_is_dead():
    guard = leader_liveness(None, "web-1", NOW - timedelta(minutes=6), NOW, FIVE_MINUTES)
    assert not guard.alive and "web-1" in (guard.reason or "")


def test_a_store_no_instance_ever_led_has_no_live_guard():
    assert not leader_liveness(None, None, None, NOW, FIVE_MINUTES).alive


@pytest.mark.parametrize(
    ("local", "guard", "shared", "state"),
    [
        pytest.param(view("team"), ALIVE, view("team"), "agrees", id="same-trips"),
        pytest.param(view(), ALIVE, view("team"), "disagrees", id="file-open-store-tripped"),
        pytest.param(view("team"), ALIVE, None, "disagrees", id="file-tripped-store-empty"),
        pytest.param(None, Liveness(False, None, None, "no file"), view(), "missing", id="missing"),
        pytest.param(view(), Liveness(False, NOW, NOW, "expired"), view(), "stale", id="expired"),
        pytest.param(Malformed("schema 2"), Liveness(False, None, None, "bad"), view(), "unreadable", id="malformed"),
    ],
)
def test_this_hosts_file_is_compared_with_the_stores_decision(local, guard, shared, state):
    assert local_agreement(local, guard, shared).state == state
