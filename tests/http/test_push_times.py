"""Pushed events whose time is not plausible (review F19) are quarantined, never stored outside every window, and
never fail the request: ``POST /v1/events`` and ``POST /v1/openrouter/broadcast``."""

from __future__ import annotations

import json
import time

from tests.http import payloads
from tests.http.conftest import Served

NDJSON = {"content-type": "application/x-ndjson"}


def test_a_pushed_line_with_a_time_in_microseconds_is_quarantined_and_the_others_stored(served: Served):
    micros = time.time_ns() // 1000
    lines = [{"ts": micros, "id": "us", "cost": "4"}, {"ts": micros // 1_000_000, "id": "s", "cost": "1"}]
    body = "\n".join(json.dumps(line) for line in lines) + "\n"
    answer = served.post("/v1/events", content=body, headers=NDJSON)
    assert answer.status_code == 200, answer.text
    assert answer.json() | {"seconds": 0} == answer.json() | {"read": 2, "stored": 1, "quarantined": 1, "seconds": 0}
    assert served.client.get("/v1/status").status_code == 200


def test_a_broadcast_span_timed_in_microseconds_instead_of_nanoseconds_is_quarantined(served: Served):
    body = payloads.captured(end_ns=time.time_ns() // 1000)  # read as ns: January 1970
    answer = served.post("/v1/openrouter/broadcast", content=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["stored"] == 0 and answer.json()["quarantined"] == 1


def test_a_broadcast_span_time_beyond_any_date_is_quarantined_not_a_server_error(served: Served):
    body = payloads.captured(end_ns=time.time_ns() * 10**6)  # past the year 9999: no datetime holds it
    answer = served.post("/v1/openrouter/broadcast", content=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["stored"] == 0 and answer.json()["quarantined"] == 1
