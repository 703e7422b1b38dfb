"""guardd advise and advice in messages, priced with the catalog the poller stored from the stand-in OpenRouter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guardd.client import LedgerWriter
from tests.support.fake_openrouter import FakeOpenRouter

KEY = "sk-or-v1-" + "b2" * 32


@pytest.fixture
def fake():
    with FakeOpenRouter() as server:
        server.add_key(KEY, name="prod")
        yield server


def setup(tmp_path: Path, fake: FakeOpenRouter, webhook_url: str) -> Path:
    (tmp_path / "ledgers").mkdir()
    path = tmp_path / "guardd.toml"
    path.write_text(
        '[guardd]\nstate_dir = "state"\n[[ledgers]]\npath = "ledgers/*.jsonl"\n'
        f'[openrouter]\napi_key = "{KEY}"\nbase_url = "{fake.base_url}"\n'
        '[[budgets]]\nname = "team"\ndaily = 5\nmonthly = 1000\nforecast = false\nwarn_at = [80]\n'
        'suggest = ["openai/gpt-4o-mini", "moonshotai/kimi-k2"]\n'
        f'[[notifiers]]\nurl = "{webhook_url}"\n'
    )
    writer = LedgerWriter(tmp_path / "ledgers" / "a.jsonl")
    writer.write(
        {
            "id": "s1",
            "model": "anthropic/claude-3.5-sonnet",
            "cost": "4.80",
            "prompt_tokens": 1_000_000,
            "completion_tokens": 100_000,
            "reasoning_tokens": 10_000,
            "cached_tokens": 200_000,
        }
    )
    writer.write(
        {"id": "m1", "model": "openai/gpt-4o-mini", "cost": "0.01", "prompt_tokens": 10_000, "completion_tokens": 1_000}
    )
    return path


def test_advise_prices_every_model_of_the_budget_exactly(run_guardd, tmp_path, fake, webhook):
    path = setup(tmp_path, fake, webhook.url)
    assert run_guardd("run", "--once", "-c", str(path)).returncode == 0
    result = run_guardd("advise", "--json", "-c", str(path))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["budget"] == "team" and [r["model"] for r in doc["rows"]] == [
        "anthropic/claude-3.5-sonnet",
        "openai/gpt-4o-mini",
    ]
    sonnet = doc["rows"][0]
    assert (sonnet["spent"], sonnet["prompt_tokens"], sonnet["completion_tokens"]) == ("4.80", 1_000_000, 100_000)
    assert sonnet["alternatives"] == [
        {"model": "openai/gpt-4o-mini", "cost": "0.21", "saving": "4.59", "saving_percent": 95.6, "unpriced": False},
        {"model": "moonshotai/kimi-k2", "cost": None, "saving": None, "saving_percent": None, "unpriced": True},
    ]
    table = run_guardd("advise", "-c", str(path)).stdout
    assert "unpriced: not in the OpenRouter catalog" in table and "$0.21 (-96%)" in table


def test_a_warning_message_of_a_budget_with_suggest_carries_the_top_models_line(run_guardd, tmp_path, fake, webhook):
    path = setup(tmp_path, fake, webhook.url)
    assert run_guardd("run", "--once", "-c", str(path)).returncode == 0
    (body,) = webhook.bodies
    assert body["title"].startswith("guardd WARNING: team crossed 80% of daily")
    assert (
        "Advice — the same tokens on the suggested models: anthropic/claude-3.5-sonnet: $4.80;"
        " on openai/gpt-4o-mini $0.21 (-96%); on moonshotai/kimi-k2 unpriced (not in the OpenRouter catalog)"
    ) in body["message"]
    print(body["title"])
    print(body["message"])


def test_advise_for_a_budget_without_suggest_is_a_usage_error(run_guardd, tmp_path, fake, webhook):
    path = setup(tmp_path, fake, webhook.url)
    path.write_text(path.read_text().replace('suggest = ["openai/gpt-4o-mini", "moonshotai/kimi-k2"]\n', ""))
    assert run_guardd("advise", "--budget", "team", "-c", str(path)).returncode == 2
