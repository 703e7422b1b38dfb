"""Reading a switch document: what is malformed, and when the guard that wrote it is dead."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from guardd.core.switch_read import Malformed, SwitchView, liveness, read_document

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def doc(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "schema": 1,
        "heartbeat_at": "2026-11-21T09:59:00Z",
        "expires_at": "2026-11-21T10:04:00Z",
        "tripped": False,
        "scopes": {"team": {"tripped": False, "headroom": "1.50"}},
    }
    return {**base, **fields}


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param([], id="not-an-object"),
        pytest.param(doc(schema=2), id="another-schema"),
        pytest.param(doc(scopes=[]), id="scopes-as-a-list"),
        pytest.param(doc(scopes={"team": {"headroom": "abc"}}), id="headroom-not-a-decimal"),
        pytest.param(doc(scopes={"team": {"tripped": "yes"}}), id="tripped-not-a-boolean"),
        pytest.param(doc(scopes={"team": "tripped"}), id="scope-not-an-object"),
        pytest.param(doc(heartbeat_at="yesterday"), id="heartbeat-not-a-time"),
        pytest.param(doc(tripped=1), id="top-tripped-not-a-boolean"),
    ],
)
def test_a_malformed_document_is_named_as_such(raw):
    assert isinstance(read_document(raw), Malformed)


def test_a_valid_document_keeps_its_scopes_and_headroom():
    view = read_document(doc())
    assert isinstance(view, SwitchView) and view.scopes["team"].headroom == Decimal("1.50")


@pytest.mark.parametrize(
    ("now", "alive"),
    [
        pytest.param(NOW, True, id="before-expiry"),
        pytest.param(NOW + timedelta(minutes=4), False, id="at-expiry"),
        pytest.param(NOW - timedelta(minutes=3), False, id="heartbeat-over-a-minute-ahead"),
        pytest.param(NOW - timedelta(seconds=110), True, id="heartbeat-under-a-minute-ahead"),
    ],
)
def test_the_guard_lives_until_expires_at_and_not_with_a_heartbeat_from_the_future(now, alive):
    assert liveness(read_document(doc()), now).alive is alive


def test_max_age_expires_a_document_earlier_and_stands_in_for_a_missing_expires_at():
    assert not liveness(read_document(doc()), NOW, max_age=timedelta(seconds=30)).alive
    old = doc()
    del old["expires_at"]
    assert not liveness(read_document(old), NOW).alive
    assert liveness(read_document(old), NOW, max_age=timedelta(minutes=2)).alive


def test_a_missing_document_is_a_dead_guard_with_its_reason():
    guard = liveness(None, NOW, missing="no file at /x")
    assert (guard.alive, guard.heartbeat_at, guard.reason) == (False, None, "no file at /x")


def test_why_the_guard_is_dead_gives_its_times_in_the_zone_asked_for():
    guard = liveness(read_document(doc()), NOW + timedelta(minutes=5), tz=ZoneInfo("Europe/Berlin"))
    assert guard.reason == "the kill-switch file expired at 2026-11-21T11:04:00+01:00"
