"""A number's exponent costs no work: ``1e9999999`` is read from its text, never built as a ten-million-digit integer
(one such line stalled ingestion for minutes, and again after every restart). Numbers the store cannot hold are
quarantined with a reason; both parse paths agree.

The work is measured as memory (tracemalloc's peak, deterministic), not time: an exact integer of 10^99999 needs
41 KB, its text 7 bytes."""

from __future__ import annotations

import tracemalloc

import pytest

from guardd.core.batch import Parsed
from guardd.core.money import parse_money
from guardd.core.usage import MAX_TOKENS, MAX_UNIX_MS
from guardd.ledger.lines import Block
from guardd.ledger.parse import LineParser

FP = "f" * 20
MAX = parse_money(1000)
TS = b'"ts":"2026-10-01T00:00:00Z"'
PATHS = pytest.mark.parametrize("c", [True, False], ids=["c", "python"])


def line(*members: bytes) -> bytes:
    return b"{" + b",".join((TS, b'"id":"g1"', b'"model":"m"', *members)) + b"}"


def parse(lines: list[bytes], c: bool) -> Parsed:
    parser = LineParser("auto", {}, MAX, c=c)
    data = b"\n".join(lines) + b"\n"
    out = Parsed(0, 0)
    parser.parse_block(Block(0, data, len(data)), FP, "p", out)
    parser.finish(out)
    return out


def peak(lines: list[bytes], c: bool) -> int:
    tracemalloc.start()
    try:
        parse(lines, c)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def reasons(out: Parsed) -> list[str]:
    return [q.reason.removeprefix("wrong types: ") for q in out.bad]


# Each shape with the exponent left to fill: every number the line path converts exactly.
SHAPES = {
    "tokens": line(b'"cost":"0.5"', b'"prompt_tokens":9e%d'),
    "time": b'{"ts":9e%d,"id":"g1","cost":"0.5"}',
    "time in ms, a fraction": b'{"ts":1e-%d,"id":"g1","cost":"0.5"}',
    "cost": line(b'"cost":9e%d'),
    "cost as text": line(b'"cost":"9e%d"'),
    "negative cost": line(b'"cost":-9e%d'),
    "latency": line(b'"cost":"0.5"', b'"latency_ms":9e%d'),
    "label": line(b'"cost":"0.5"', b'"labels":{"a":9e%d}'),
    "other field": line(b'"cost":"0.5"', b'"n":9e%d'),
}


@PATHS
@pytest.mark.parametrize("shape", SHAPES)
def test_a_line_needs_no_more_memory_for_an_exponent_of_99999_than_for_one_of_99(shape, c):
    template = SHAPES[shape]
    small, big = template % 99, template % 99999
    assert len(big) - len(small) == 3
    parse([small, big], c)  # caches (hours, series) filled alike for both
    assert peak([big] * 4, c) - peak([small] * 4, c) < 4096


@PATHS
def test_huge_numbers_are_quarantined_or_counted_as_their_size_says(c):
    out = parse(
        [
            line(b'"cost":"0.5"', b'"prompt_tokens":9e99999'),
            b'{"ts":9e99999,"id":"g2","cost":"0.5"}',
            line(b'"cost":9e99999').replace(b"g1", b"g3"),
            line(b'"cost":"-9e99999"').replace(b"g1", b"g4"),
            b'{"ts":1e-99999,"id":"g5","cost":"0.5"}',
            line(b'"cost":0.5', b'"n":9e99999').replace(b"g1", b"g6"),
        ],
        c,
    )
    said = reasons(out)
    assert said[0] == f"prompt_tokens is implausible (above {MAX_TOKENS})"
    assert "is not a plausible time" in said[1]  # 9e99999: read from its text, far beyond 2100
    assert said[2:4] == ["cost is implausible (above max_event_cost)", "cost is negative"]
    assert "is not a plausible time" in said[4]  # 10^-99999 s after the epoch: its first millisecond, before 2000
    assert out.rows["g:g6"][3] == parse_money("0.5")


@PATHS
@pytest.mark.parametrize("one_block", [True, False])
def test_token_counts_are_read_up_to_18_digits_and_18_digit_times_refused_as_implausible(c, one_block):
    lines = [
        line(b'"cost":"0.5"', b'"prompt_tokens":%d' % MAX_TOKENS),
        line(b'"cost":"0.5"', b'"prompt_tokens":%d' % (MAX_TOKENS + 1)).replace(b"g1", b"g2"),
        b'{"ts":%d,"id":"g3","cost":"0.5"}' % MAX_UNIX_MS,
        b'{"ts":%d,"id":"g4","cost":"0.5"}' % (MAX_UNIX_MS + 1),
    ]
    outs = [parse(lines, c)] if one_block else [parse([one], c) for one in lines]
    said = [r for out in outs for r in reasons(out)]
    assert said[0] == f"prompt_tokens is implausible (above {MAX_TOKENS})"
    # 18 digits and more of ms are read from their text and refused as times outside 2000–2100 (tsrange)
    assert len(said) == 3 and all("is not a plausible time" in r for r in said[1:])
    rows = {k: v for out in outs for k, v in out.rows.items()}
    assert rows["g:g1"][4] == MAX_TOKENS
