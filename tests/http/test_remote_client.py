"""``guardd.client.KillSwitch`` given the URL of the HTTP service instead of a file path."""

from __future__ import annotations

import pytest

from guardd.client import BudgetExceeded, KillSwitch
from tests.e2e.conftest import free_port, wait_for
from tests.http.conftest import Served


def blocked(switch: KillSwitch) -> bool:
    try:
        switch.check()
    except BudgetExceeded:
        return True
    return False


def test_a_remote_switch_allows_while_open_and_refuses_after_a_trip(served: Served):
    with KillSwitch(served.url, budgets=["team"]) as switch:
        switch.check()
        served.post("/v1/killswitch/trip", json={"budget": "team", "reason": "remote test"})
        wait_for(lambda: blocked(switch), timeout=10)
        with pytest.raises(BudgetExceeded, match="remote test"):
            switch.check()


def test_other_budgets_trips_do_not_block_a_remote_switch(served: Served):
    with KillSwitch(served.url + "/v1/killswitch", budgets=["team"], refresh=0) as switch:
        served.post("/v1/killswitch/trip", json={"budget": "claude", "reason": "not mine"})
        doc = switch.status()
        assert doc is not None and doc["scopes"]["claude"]["tripped"] is True
        switch.check()


def test_an_unchanged_document_is_revalidated_and_its_heartbeat_follows(served: Served):
    with KillSwitch(served.url, refresh=0) as switch:
        first = switch.status()
        assert first is not None
        etag = switch._remote.etag  # type: ignore[union-attr]
        later = wait_for(lambda: (doc := switch.status()) and doc["heartbeat_at"] != first["heartbeat_at"] and doc)
        assert switch._remote.etag == etag  # type: ignore[union-attr]
        assert later["scopes"] == first["scopes"]


def test_an_unreachable_guard_refuses_only_when_failing_closed():
    url = f"http://127.0.0.1:{free_port()}"
    with KillSwitch(url, timeout=0.5) as open_switch:
        open_switch.check()
    with KillSwitch(url, fail_closed=True, timeout=0.5) as closed, pytest.raises(BudgetExceeded, match="reach"):
        closed.check()
