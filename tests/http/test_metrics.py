"""``/metrics`` passes ``promtool check metrics`` and keeps the label sets of contract §8."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime

import pytest

from tests.e2e.conftest import wait_for
from tests.http.conftest import Served

LABELS = {
    "guardd_up": set(),
    "guardd_heartbeat_timestamp_seconds": set(),
    "guardd_budget_spend_usd": {"budget", "window"},
    "guardd_budget_limit_usd": {"budget", "window"},
    "guardd_budget_window_end_timestamp_seconds": {"budget", "window"},
    "guardd_budget_state": {"budget", "state"},
    "guardd_killswitch_tripped": {"scope"},
    "guardd_ledger_events_total": {"ledger"},
    "guardd_ledger_quarantined_total": {"ledger"},
    "guardd_source_stale": {"source"},
    "guardd_outbox_pending": set(),
}
SAMPLE = re.compile(r"^(\w+)(?:\{(.*)\})? \S+$")


def samples(text: str) -> dict[str, set[frozenset[str]]]:
    found: dict[str, set[frozenset[str]]] = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match:
            names = frozenset(re.findall(r'(\w+)="', match.group(2) or ""))
            found.setdefault(match.group(1), set()).add(names)
    return found


def test_metrics_pass_promtool(shared: Served):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is missing (Debian package prometheus: apt-get install -y prometheus)")
    shared.post("/v1/killswitch/trip", json={"budget": "claude", "reason": "for the metrics"})
    text = shared.client.get("/metrics").text
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), (
        result.stdout + result.stderr
    )


def test_every_metric_has_exactly_its_contract_labels(shared: Served):
    found = samples(shared.client.get("/metrics").text)
    for name, labels in LABELS.items():
        assert found.get(name) == {frozenset(labels)}, name


def test_the_state_gauge_is_one_for_exactly_one_state_per_budget(shared: Served):
    text = shared.client.get("/metrics").text
    ones = re.findall(r'guardd_budget_state\{budget="(\w+)",state="\w+"\} 1\.0', text)
    assert sorted(ones) == ["claude", "team"]


def test_a_budget_released_by_hand_over_its_limit_is_critical_in_the_state_gauge(served: Served):
    now = datetime.now(UTC).isoformat()
    served.ledger(json.dumps({"ts": now, "id": "g1", "model": "m", "cost": 2}))
    wait_for(lambda: 'guardd_budget_state{budget="team",state="tripped"} 1.0' in served.client.get("/metrics").text)
    assert served.post("/v1/killswitch/release", json={"budget": "team", "reason": "ok"}).status_code == 200
    text = served.client.get("/metrics").text
    assert 'guardd_budget_state{budget="team",state="critical"} 1.0' in text
    assert 'guardd_budget_state{budget="team",state="tripped"} 0.0' in text
