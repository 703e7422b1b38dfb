"""Push ingestion over HTTP: ``POST /v1/events`` and ``POST /v1/openrouter/broadcast`` against the daemon."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.e2e.conftest import wait_for
from tests.http import payloads
from tests.http.conftest import Served, serve

NDJSON = {"content-type": "application/x-ndjson"}
TODAY = datetime.now(UTC).replace(microsecond=0).isoformat()


def now_ns() -> int:
    return time.time_ns()


def line(gen: str | None, cost: str, model: str = "openai/gpt-4o", **extra: object) -> str:
    record: dict[str, object] = {"ts": TODAY, "model": model, "cost": cost, **extra}
    if gen:
        record["id"] = gen
    return json.dumps(record)


def push(served: Served, *lines: str, headers: dict[str, str] | None = None, **params: object) -> dict:
    answer = served.post(
        "/v1/events", content="\n".join(lines) + "\n", headers={**NDJSON, **(headers or {})}, params=params
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def spent(served: Served, budget: str = "team") -> str:
    status = served.client.get("/v1/status").json()
    return next(b for b in status["budgets"] if b["name"] == budget)["windows"][0]["spent"]


def test_pushed_lines_are_committed_and_evaluated_before_the_answer(served: Served):
    summary = push(served, line("p1", "0.25"), line("p2", "0.50"))
    assert summary["read"] == 2 and summary["stored"] == 2 and summary["quarantined"] == 0
    assert spent(served) == "0.75"


def test_pushing_the_same_ids_again_counts_them_once(served: Served):
    push(served, line("p1", "0.25"))
    again = push(served, line("p1", "0.25"))
    assert again["stored"] == 0 and again["duplicates"] == 1
    assert spent(served) == "0.25"


def test_an_id_pushed_and_found_in_a_ledger_counts_once(served: Served):
    served.ledger(line("shared-1", "0.30"))
    wait_for(lambda: spent(served) == "0.30")
    assert push(served, line("shared-1", "0.30"))["duplicates"] == 1
    assert spent(served) == "0.30"


def test_id_less_lines_are_keyed_by_the_idempotency_key_and_line_number(served: Served):
    first = push(served, line(None, "0.10"), line(None, "0.20"), headers={"Idempotency-Key": "batch-7"})
    assert first["stored"] == 2
    # a retry that re-serialises the same events (other key order) still counts once
    retry = push(
        served,
        json.dumps({"cost": "0.10", "model": "openai/gpt-4o", "ts": TODAY}),
        line(None, "0.20"),
        headers={"Idempotency-Key": "batch-7"},
    )
    assert retry["stored"] == 0 and retry["duplicates"] == 2
    assert spent(served) == "0.30"


def test_id_less_lines_without_an_idempotency_key_are_quarantined(served: Served):
    summary = push(served, line(None, "0.10"), line("with-id", "0.20"))
    assert summary == {**summary, "read": 2, "stored": 1, "quarantined": 1}


def test_read_counts_every_non_empty_line_including_quarantined_ones(served: Served):
    summary = push(served, line("a", "0.01"), "", "not json", line("b", "-1"))
    assert summary["read"] == 3 and summary["stored"] == 1 and summary["quarantined"] == 2
    assert summary["stored"] + summary["duplicates"] + summary["quarantined"] == summary["read"]


def test_labels_and_format_apply_as_for_ingest(served: Served):
    record = {
        "sessionId": "s",
        "model": "anthropic/claude",
        "usage": {"totalCost": 0.4},
        "performance": {"timestamp": time.time_ns() // 1_000_000},
        "metadata": {"generationId": "rec-1"},
    }
    summary = push(served, json.dumps(record), format="record", label="team=search")
    assert summary["stored"] == 1
    assert spent(served, "claude") == "0.40"


def test_every_accepted_content_type_is_taken(served: Served):
    for i, media in enumerate(["application/x-ndjson", "application/jsonl", "text/plain; charset=utf-8"]):
        answer = served.post("/v1/events", content=line(f"ct{i}", "0.01") + "\n", headers={"content-type": media})
        assert answer.status_code == 200, media


def test_another_content_type_is_415(served: Served):
    answer = served.post("/v1/events", content=line("x", "0.01"), headers={"content-type": "application/json"})
    assert answer.status_code == 415


def test_a_malformed_body_is_400_and_stores_nothing(served: Served):
    for body, params in (
        (b"\xff\xfe", {}),
        (b'[{"id": "arr"}]', {}),
        (line("f", "0.1").encode(), {"format": "x"}),
        (line("l", "0.1").encode(), {"label": "novalue"}),
    ):
        answer = served.post("/v1/events", content=body, headers=NDJSON, params=params)
        assert answer.status_code == 400 and answer.json()["error"], body
    assert spent(served) == "0.00"


def test_a_captured_broadcast_counts_its_root_span_once_with_the_exact_cost(served: Served):
    answer = served.post(
        "/v1/openrouter/broadcast",
        content=payloads.captured(end_ns=now_ns()),
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 200
    assert answer.json()["generations"] == 1 and answer.json()["stored"] == 1 and answer.json()["skipped"] == 2
    assert spent(served) == "0.005334"
    assert spent(served, "claude") == "0.005334"


def test_a_root_span_nested_in_the_callers_trace_is_counted(served: Served):
    body = payloads.captured(end_ns=now_ns(), parent=payloads.CALLER_SPAN)
    answer = served.post("/v1/openrouter/broadcast", content=body).json()
    assert answer["generations"] == 1 and answer["stored"] == 1 and answer["skipped"] == 2
    assert spent(served) == "0.005334"


def test_a_child_carrying_the_roots_own_id_never_replaces_its_cost(served: Served):
    root = payloads.root_span(end_ns=now_ns(), parent=payloads.CALLER_SPAN)
    body = json.dumps(payloads.export(root, payloads.plain_id_child(root, cost=0.9))).encode()
    answer = served.post("/v1/openrouter/broadcast", content=body).json()
    assert answer["generations"] == 1 and answer["skipped_why"] == {"child of its generation": 1}
    assert spent(served) == "0.005334"


def test_a_span_that_may_be_spend_but_is_skipped_is_named_in_the_log(served: Served):
    span = payloads.root_span(gen="gen-renamed-1", end_ns=now_ns())
    span["name"] = "LLM Completion"
    answer = served.post("/v1/openrouter/broadcast", content=json.dumps(payloads.export(span)).encode()).json()
    assert answer["stored"] == 0 and answer["skipped_why"] == {"not a generation span": 1}
    assert "gen-renamed-1" in served.daemon.log.read_text()


def test_the_same_generation_from_a_ledger_and_a_broadcast_counts_once(served: Served):
    served.ledger(line(payloads.GEN, "0.005334", model="anthropic/claude-haiku-4.5"))
    wait_for(lambda: spent(served) == "0.005334")
    answer = served.post("/v1/openrouter/broadcast", content=payloads.captured(end_ns=now_ns()))
    assert answer.json()["stored"] == 0 and answer.json()["duplicates"] == 1
    assert spent(served) == "0.005334"


SEARCH = """
[[budgets]]
name = "search"
match = { team = "search" }
daily = 1.00
forecast = false
"""


@pytest.fixture
def search(tmp_path: Path) -> Iterator[Served]:
    """A fresh daemon whose budget ``search`` matches the label team=search."""
    yield from serve(tmp_path, budgets=SEARCH)


def test_a_broadcast_of_a_generation_a_ledger_stored_leaves_it_in_the_label_budget(search: Served):
    # F9: the span carries none of the ledger's labels; the event keeps the series it was counted in
    search.ledger(line(payloads.GEN, "0.005334", model="anthropic/claude-haiku-4.5", labels={"team": "search"}))
    wait_for(lambda: spent(search, "search") == "0.005334")
    span = payloads.root_span(end_ns=now_ns())
    span["attributes"] = [a for a in span["attributes"] if a["key"] != "trace.metadata.team"]
    answer = search.post("/v1/openrouter/broadcast", content=json.dumps(payloads.export(span)).encode()).json()
    assert (answer["stored"], answer["duplicates"]) == (0, 1)
    assert spent(search, "search") == "0.005334"


def test_the_connection_test_answers_200_and_stores_nothing(served: Served):
    answer = served.post("/v1/openrouter/broadcast", content=b"", headers={"X-Test-Connection": "true"})
    assert answer.status_code == 200 and answer.json()["test"] is True and answer.json()["stored"] == 0


def test_a_test_generation_stores_nothing(served: Served):
    answer = served.post("/v1/openrouter/broadcast", content=payloads.test_generation(end_ns=now_ns()))
    assert answer.status_code == 200 and answer.json()["stored"] == 0
    assert spent(served) == "0.00"


def test_the_official_example_shape_is_stored(served: Served):
    answer = served.post("/v1/openrouter/broadcast", content=payloads.official_example(end_ns=now_ns()))
    assert answer.json()["stored"] == 1
    assert spent(served) == "0.0015"


def test_an_error_span_without_cost_is_stored_at_zero(served: Served):
    answer = served.post("/v1/openrouter/broadcast", content=payloads.error_span(end_ns=now_ns()))
    assert answer.json()["stored"] == 1
    status = served.client.get("/v1/status").json()
    window = status["budgets"][0]["windows"][0]
    assert window["spent"] == "0.00" and window["unpriced_events"] == 0


def test_a_broadcast_that_is_not_otlp_json_is_400(served: Served):
    answer = served.post("/v1/openrouter/broadcast", content=b"\x0a\x0bprotobuf")
    assert answer.status_code == 400 and "OTLP" in answer.json()["error"]


def test_a_broadcast_to_a_tripping_budget_trips_the_switch_before_the_answer(served: Served):
    served.post("/v1/openrouter/broadcast", content=payloads.captured(gen="gen-big", cost=1.5, end_ns=now_ns()))
    assert served.client.get("/v1/killswitch").json()["scopes"]["team"]["tripped"] is True
