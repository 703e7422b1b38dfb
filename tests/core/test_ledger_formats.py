from decimal import Decimal

import pytest

from guardd.core.money import parse_money
from guardd.core.usage import BadLine, event_from_record

MAX = parse_money(1000)
RESPONSE = {
    "id": "gen-1",
    "object": "chat.completion",
    "created": 1795255200,
    "model": "openai/gpt-4o",
    "provider": "OpenAI",
    "choices": [{"finish_reason": "stop"}],
    "usage": {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost": Decimal("0.0012"),
        "prompt_tokens_details": {"cached_tokens": 2},
        "completion_tokens_details": {"reasoning_tokens": 1},
    },
}
RECORD = {
    "sessionId": "s1",
    "model": "anthropic/claude-3.5-sonnet",
    "usage": {
        "promptTokens": 7,
        "completionTokens": 3,
        "reasoningTokens": 0,
        "cachedTokens": 1,
        "totalTokens": 10,
        "totalCost": "0.004",
    },
    "performance": {"latency": 900, "timestamp": 1795255200123, "success": True},
    "metadata": {"generationId": "gen-9", "provider": "Anthropic", "model": "anthropic/claude-3.5-sonnet"},
}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            {"ts": "2026-11-21T10:00:00Z", "id": "a", "model": "m", "cost": Decimal("0.5")},
            ("a", "m", parse_money("0.5"), 1795255200000),
        ),
        ({"ts": "2026-11-21T10:00:00", "model": "m", "cost": "1e-3"}, (None, "m", parse_money("0.001"), 1795255200000)),
        ({"ts": 1795255200, "model": "m"}, (None, "m", None, 1795255200000)),
        ({"ts": 1795255200500, "model": "m", "cost": 0}, (None, "m", 0, 1795255200500)),
        (RESPONSE, ("gen-1", "openai/gpt-4o", parse_money("0.0012"), 1795255200000)),
        (
            {"ts": "2026-11-21T10:00:01Z", "labels": {"team": "x"}, "response": RESPONSE},
            ("gen-1", "openai/gpt-4o", parse_money("0.0012"), 1795255201000),
        ),
        (RECORD, ("gen-9", "anthropic/claude-3.5-sonnet", parse_money("0.004"), 1795255200123)),
    ],
    ids=[
        "canonical",
        "no-zone-is-utc",
        "unix-seconds-unpriced",
        "unix-ms",
        "openrouter",
        "openrouter-wrapped",
        "record",
    ],
)
def test_auto_detects_each_format(line, expected):
    ev = event_from_record(line, "auto", MAX)
    assert (ev.id, ev.model, ev.cost, ev.ts_ms) == expected


def test_tokens_and_labels_are_read_from_the_openrouter_response():
    ev = event_from_record(
        {"ts": 1795255200, "labels": {"team": "x"}, "key": "sk-or-v1-" + "e" * 40, "response": RESPONSE},
        "auto",
        MAX,
        {"team": "ledger", "env": "prod"},
    )
    assert (ev.prompt_tokens, ev.completion_tokens, ev.cached_tokens, ev.reasoning_tokens) == (10, 5, 2, 1)
    assert ev.labels == {"team": "x", "env": "prod"} and ev.key == "…eeee" and ev.provider == "OpenAI"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ({"model": "m"}, "ts is missing"),
        ({"ts": "yesterday"}, "not an RFC 3339 time"),
        ({"ts": 1795255200, "cost": -1}, "negative"),
        ({"ts": 1795255200, "cost": "NaN"}, "not a finite"),
        ({"ts": 1795255200, "cost": 5000}, "implausible"),
        ({"ts": 1795255200, "prompt_tokens": "ten"}, "not a whole number"),
        ({"ts": 1795255200, "labels": ["a"]}, "labels is not an object"),
        (["not", "an", "object"], "not a JSON object"),
    ],
    ids=["no-ts", "bad-ts", "negative", "nan", "implausible", "token-type", "labels-type", "array"],
)
def test_bad_lines_are_refused_with_a_reason(line, reason):
    with pytest.raises(BadLine, match=reason):
        event_from_record(line, "auto", MAX)
