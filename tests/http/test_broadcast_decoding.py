"""Broadcast decoding on its own (pure): which spans count and how their figures are read."""

from __future__ import annotations

import json
import tracemalloc
from decimal import Decimal

import pytest

from guardd.http.broadcast import PayloadError, decode, to_batch
from tests.http import payloads

MAX = 1000 * 10**12


def test_a_root_span_with_two_children_is_one_generation():
    decoded = decode(payloads.captured())
    assert [line["id"] for line in decoded.lines] == [payloads.GEN]
    assert decoded.skipped == 2


def test_a_root_span_whose_parent_is_outside_the_delivery_is_a_generation():
    decoded = decode(payloads.captured(parent=payloads.CALLER_SPAN))
    assert [line["id"] for line in decoded.lines] == [payloads.GEN]
    assert decoded.skipped_why == {"child of its generation": 2}


def test_a_root_span_nested_under_another_generation_is_a_generation_too():
    outer = payloads.root_span(gen="gen-outer")
    inner = payloads.root_span(gen="gen-inner", parent=outer["spanId"])
    inner["spanId"] = "1111111111111111"
    decoded = decode(json.dumps(payloads.export(outer, inner)).encode())
    assert sorted(line["id"] for line in decoded.lines) == ["gen-inner", "gen-outer"]


@pytest.mark.parametrize("child_first", [False, True], ids=["child-after-root", "child-before-root"])
def test_a_child_carrying_the_roots_own_id_is_skipped_wherever_it_is_listed(child_first: bool):
    root = payloads.root_span(parent=payloads.CALLER_SPAN)
    child = payloads.plain_id_child(root, cost=0.9)
    spans = [child, root] if child_first else [root, child]
    (line,) = decode(json.dumps(payloads.export(*spans)).encode()).lines
    assert line["cost"] == "0.005334"


def test_a_span_under_a_child_of_the_same_generation_is_skipped():
    root = payloads.root_span()
    attempt, generation = payloads.child_spans()
    grandchild = payloads.plain_id_child(root, cost=0.9, parent=generation["spanId"])
    decoded = decode(json.dumps(payloads.export(root, attempt, generation, grandchild)).encode())
    assert [line["cost"] for line in decoded.lines] == ["0.005334"]
    assert decoded.skipped_why == {"child of its generation": 3}


def test_of_two_unlinked_spans_with_one_id_the_enclosing_one_counts():
    root = payloads.root_span(parent=payloads.CALLER_SPAN)
    stray = payloads.plain_id_child(root, cost=0.9, parent="2222222222222222")  # its parent was not delivered
    for spans in ([stray, root], [root, stray]):
        decoded = decode(json.dumps(payloads.export(*spans)).encode())
        assert [line["cost"] for line in decoded.lines] == ["0.005334"]
        assert decoded.skipped_why == {"another span of its generation": 1}


def test_a_span_without_a_generation_id_or_with_another_name_is_skipped_with_its_reason():
    unnamed = payloads.root_span(gen="gen-x")
    unnamed["name"] = "LLM Completion"
    caller = {"spanId": "3333333333333333", "name": "app request", "startTimeUnixNano": "1", "attributes": []}
    decoded = decode(json.dumps(payloads.export(unnamed, caller)).encode())
    assert decoded.lines == []
    assert decoded.skipped_why == {"not a generation span": 1, "no generation id": 1}
    assert any("gen-x" in note for note in decoded.notes)


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


def test_a_span_whose_name_and_ids_are_not_text_is_skipped_not_a_crash():
    span = payloads.root_span()
    span.update(name={"x": 1}, spanId=[1], parentSpanId={"y": 2})
    assert decode(json.dumps(payloads.export(span)).encode()).skipped_why == {"not a generation span": 1}


def test_a_token_count_beyond_the_stores_integers_is_refused_before_it_becomes_an_integer():
    """``9e99999`` as an exact integer needs 41 KB (``9e9999999``: minutes of CPU): refused from its size alone."""
    body = json.dumps(payloads.export(payloads.root_span())).replace("2489", "9e99999").encode()
    tracemalloc.start()
    try:
        with pytest.raises(PayloadError, match="implausible"):
            decode(body)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * len(body) + 20_000
