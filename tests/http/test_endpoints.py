"""Every endpoint of contract §8 answers through real HTTP from the running daemon."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.http.conftest import Served

ROUTES = {
    "/": "get",
    "/healthz": "get",
    "/metrics": "get",
    "/openapi.json": "get",
    "/v1/status": "get",
    "/v1/killswitch": "get",
    "/v1/killswitch/trip": "post",
    "/v1/killswitch/release": "post",
    "/v1/events": "post",
    "/v1/openrouter/broadcast": "post",
}


def test_healthz_is_ok_while_the_cycle_runs(shared: Served):
    answer = shared.client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json()["ok"] is True and answer.json()["heartbeat_at"]


def test_status_is_the_same_document_as_the_command(shared: Served):
    answer = shared.client.get("/v1/status")
    assert answer.status_code == 200
    command = subprocess.run(
        [sys.executable, "-m", "guardd", "status", "--json", "-c", str(shared.folder / "guardd.toml")],
        capture_output=True,
        text=True,
        check=True,
    )
    expected = json.loads(command.stdout)
    got = answer.json()
    assert got["schema"] == 1
    assert [b["name"] for b in got["budgets"]] == [b["name"] for b in expected["budgets"]] == ["team", "claude"]
    assert set(got) == set(expected)


def test_the_openapi_document_is_3_1_and_describes_every_endpoint(shared: Served):
    doc = shared.client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert {path: next(iter(ops)) for path, ops in doc["paths"].items()} == ROUTES


def test_an_unknown_path_is_a_json_404(shared: Served):
    answer = shared.client.get("/nowhere")
    assert answer.status_code == 404 and "error" in answer.json()


def test_a_wrong_method_is_a_json_405(shared: Served):
    answer = shared.client.post("/v1/status")
    assert answer.status_code == 405 and "error" in answer.json()


def test_the_page_names_every_budget_and_loads_nothing_from_elsewhere(shared: Served):
    answer = shared.client.get("/")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    assert 'data-budget="team"' in answer.text and 'data-budget="claude"' in answer.text
    for external in ("<script", "src=", "@import", "url("):
        assert external not in answer.text


def test_metrics_are_prometheus_text_with_every_budget_window(shared: Served):
    answer = shared.client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    assert 'guardd_budget_limit_usd{budget="team",window="daily"} 1.0' in text
    assert 'guardd_budget_limit_usd{budget="claude",window="monthly"} 50.0' in text
    assert 'guardd_budget_state{budget="team",state="ok"} 1.0' in text
    assert 'guardd_ledger_events_total{ledger="ledgers/*.jsonl"}' in text
    assert "guardd_up 1.0" in text
