"""``/v1/killswitch``: ETag and If-None-Match, ``?wait`` long-polls, and trip/release over HTTP."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import closing

import httpx

from tests.e2e.conftest import wait_for
from tests.http.conftest import Served


def test_the_document_carries_an_etag_and_if_none_match_answers_304(served: Served):
    first = served.client.get("/v1/killswitch")
    assert first.status_code == 200 and first.json()["schema"] == 1
    again = served.client.get("/v1/killswitch", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == first.headers["etag"]


def test_the_etag_stays_while_only_the_heartbeat_moves(served: Served):
    first = served.client.get("/v1/killswitch")
    later = wait_for(
        lambda: (r := served.client.get("/v1/killswitch")).json()["heartbeat_at"] != first.json()["heartbeat_at"] and r
    )
    assert later.headers["etag"] == first.headers["etag"]
    assert later.headers["guardd-heartbeat-at"] == later.json()["heartbeat_at"]


def test_the_etag_changes_when_the_decision_changes(served: Served):
    before = served.client.get("/v1/killswitch").headers["etag"]
    assert served.post("/v1/killswitch/trip", json={"budget": "team", "reason": "test"}).status_code == 200
    after = served.client.get("/v1/killswitch")
    assert after.headers["etag"] != before and after.json()["scopes"]["team"]["tripped"] is True


def test_a_waiting_request_is_answered_at_the_trip(served: Served):
    etag = served.client.get("/v1/killswitch").headers["etag"]
    answers: list[httpx.Response] = []
    waiter = threading.Thread(
        target=lambda: answers.append(
            served.client.get("/v1/killswitch", params={"wait": 30}, headers={"If-None-Match": etag})
        )
    )
    started = time.monotonic()
    waiter.start()
    time.sleep(0.3)
    assert not answers  # still held
    served.post("/v1/killswitch/trip", json={"budget": None, "reason": "all stop"})
    waiter.join(30)
    assert answers[0].status_code == 200 and answers[0].json()["scopes"]["*"]["tripped"] is True
    assert answers[0].headers["etag"] != etag
    assert time.monotonic() - started < 20


def test_a_wait_without_a_change_answers_304_when_if_none_match_was_sent(served: Served):
    etag = served.client.get("/v1/killswitch").headers["etag"]
    answer = served.client.get("/v1/killswitch", params={"wait": "1.5"}, headers={"If-None-Match": etag})
    assert answer.status_code == 304


def test_a_wait_without_a_change_and_without_if_none_match_answers_the_document(served: Served):
    etag = served.client.get("/v1/killswitch").headers["etag"]
    started = time.monotonic()
    answer = served.client.get("/v1/killswitch", params={"wait": "1.5"})
    assert time.monotonic() - started >= 1.4
    assert answer.status_code == 200 and answer.headers["etag"] == etag


def test_a_stale_if_none_match_with_wait_answers_at_once(served: Served):
    started = time.monotonic()
    answer = served.client.get("/v1/killswitch", params={"wait": 30}, headers={"If-None-Match": '"old"'})
    assert answer.status_code == 200 and time.monotonic() - started < 10


def test_a_bad_wait_is_400(served: Served):
    for value in ("soon", "-1", "nan"):
        assert served.client.get("/v1/killswitch", params={"wait": value}).status_code == 400


def test_trip_records_who_and_why_like_the_command(served: Served):
    answer = served.post("/v1/killswitch/trip", json={"budget": "team", "reason": "runaway job", "for": "1h"})
    scope = answer.json()["scopes"]["team"]
    assert scope["tripped"] is True
    assert scope["override"]["by"] == "http:127.0.0.1" and scope["override"]["reason"] == "runaway job"
    assert scope["override"]["until"] is not None
    switch_file = json.loads((served.folder / "state" / "killswitch.json").read_text())
    assert switch_file["scopes"]["team"]["tripped"] is True
    with closing(sqlite3.connect(served.folder / "state" / "guardd.db")) as db:
        kinds = {row[0] for row in db.execute("SELECT kind FROM history WHERE detail LIKE '%http:127.0.0.1%'")}
    assert kinds


def test_release_without_a_budget_releases_every_tripped_scope(served: Served):
    served.post("/v1/killswitch/trip", json={"budget": "team", "reason": "a"})
    served.post("/v1/killswitch/trip", json={"budget": "claude", "reason": "b"})
    doc = served.post("/v1/killswitch/release", json={"budget": None, "reason": "done"}).json()
    assert doc["tripped"] is False
    assert not any(s["tripped"] for s in doc["scopes"].values())


def test_an_unknown_budget_is_400(served: Served):
    answer = served.post("/v1/killswitch/trip", json={"budget": "nope", "reason": "x"})
    assert answer.status_code == 400 and "nope" in answer.json()["error"]


def test_a_bad_duration_or_field_is_400(served: Served):
    for body in ({"budget": "team", "for": "10"}, {"budget": "team", "for": "0s"}, {"budget": "team", "x": 1}, []):
        assert served.post("/v1/killswitch/trip", json=body).status_code == 400, body
