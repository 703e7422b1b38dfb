"""With an ``[openrouter]`` section, /metrics adds the balance, each key's usage per window and the source's
staleness (and only then: the ``openrouter`` source is absent without the section)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import wait_for
from tests.http.conftest import Served, serve
from tests.support.fake_openrouter import FakeOpenRouter

KEY = "sk-or-v1-" + "ab" * 32
MANAGEMENT = "sk-or-v1-" + "cd" * 32


def test_openrouter_figures_are_exported_per_key_and_window(tmp_path: Path):
    with FakeOpenRouter() as fake:
        fake.state.management_key = MANAGEMENT
        fake.add_key(KEY, name="prod", usage_daily="1.25", usage="40")
        budgets = f"""
[openrouter]
api_key = "{KEY}"
management_key = "{MANAGEMENT}"
base_url = "{fake.base_url}"
[[budgets]]
name = "team"
daily = 5
"""
        for served in serve(tmp_path, budgets=budgets):
            text = wait_for(
                lambda s=served: "guardd_openrouter_balance_usd" in (t := s.client.get("/metrics").text) and t
            )
            assert "guardd_openrouter_balance_usd 60.0" in text
            assert 'guardd_openrouter_key_usage_usd{key="…abab",window="daily"} 1.25' in text
            assert 'guardd_openrouter_key_usage_usd{key="…abab",window="total"} 40.0' in text
            assert 'guardd_source_stale{source="openrouter"} 0.0' in text


def test_without_openrouter_there_is_no_openrouter_source(shared: Served):
    text = shared.client.get("/metrics").text
    assert 'source="openrouter"' not in text and "guardd_openrouter_balance_usd" not in text
