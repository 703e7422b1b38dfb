"""Broadcast decoding on its own (pure): which spans count and how their figures are read."""

from __future__ import annotations

from decimal import Decimal

import pytest

from guardd.http.broadcast import PayloadError, decode, to_batch
from tests.http import payloads

MAX = 1000 * 10**12


def test_a_root_span_with_two_children_is_one_generation():
    decoded = decode(payloads.captured())
    assert [line["id"] for line in decoded.lines] == [payloads.GEN]
    assert decoded.skipped == 2


def test_the_root_span_becomes_a_canonical_line():
    (line,) = decode(payloads.captured()).lines
    assert line["model"] == "anthropic/claude-haiku-4.5"
    assert line["provider"] == "Amazon Bedrock" and line["key"] == "fixture key"
    assert line["prompt_tokens"] == 2489 and line["completion_tokens"] == 569 and line["reasoning_tokens"] == 145
    assert line["labels"] == {"user": "u-42", "session": "s-7", "team": "search"}
    assert line["ok"] is True and line["ts"] == "2026-09-28T14:38:18.041Z"


def test_the_cost_is_read_from_its_literal_digits():
    body = payloads.captured(cost=0.1).replace(b'"doubleValue": 0.1}', b'"doubleValue": 0.30000000000000004441}', 1)
    (line,) = decode(body).lines
    assert Decimal(line["cost"]) == Decimal("0.30000000000000004441")


def test_the_batch_is_keyed_like_a_ledger_line_with_the_exact_cost():
    parsed = to_batch(decode(payloads.captured()), MAX, "broadcast:t")
    ((key, _ts, _series, cost, *_tokens),) = parsed.rows.values()
    assert key == f"g:{payloads.GEN}" and cost == 5_334_000_000


def test_numbers_given_as_strings_and_the_older_token_names_are_read():
    (line,) = decode(payloads.official_example()).lines
    assert line["prompt_tokens"] == 100 and line["completion_tokens"] == 50 and line["cost"] == "0.0015"


def test_a_test_generation_and_the_empty_connection_test_hold_no_generation():
    assert decode(payloads.test_generation()).lines == []
    assert decode(payloads.test_generation()).tests == 1
    assert decode(b"").lines == [] and decode(b"{}").lines == []


def test_an_error_span_without_cost_or_tokens_is_not_ok_and_costs_nothing():
    (line,) = decode(payloads.error_span()).lines
    assert line["ok"] is False and line["cost"] == "0"


@pytest.mark.parametrize(
    "body", [b"not json", b"[]", b'{"resourceSpans": {}}', b'{"resourceSpans": [{"scopeSpans": 1}]}']
)
def test_a_body_that_is_not_an_otlp_export_is_refused(body: bytes):
    with pytest.raises(PayloadError):
        decode(body)
