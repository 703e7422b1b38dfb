"""A time outside 2000-01-01 … 2100-01-01 (UTC) is quarantined with its reason on every parsing path (finding F19):
a Unix time in micro- or nanoseconds, a zero or unset clock, year 9999 were stored where no window counts them."""

from __future__ import annotations

import json

import pytest

from guardd.core.batch import Parsed
from guardd.core.usage import BadLine, parse_ts
from guardd.ledger.lines import Block
from guardd.ledger.parse import LineParser
from tests.support.parsing import FP, MAX, line_by_line

PATHS = [pytest.param(True, id="c"), pytest.param(False, id="python")]
NOW_S = 1796153479  # 2026-12-01

IMPLAUSIBLE = [
    NOW_S * 10**6,  # Go's UnixMicro
    NOW_S * 10**9,  # OpenTelemetry nanoseconds
    0,
    "1970-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "1999-12-31T23:59:59.999Z",
    "2000-01-01T00:30:00+01:00",  # 1999-12-31T23:30Z
    "2100-01-01T00:00:00Z",
    946684799,  # 1999-12-31T23:59:59Z in seconds
    4102444800,  # 2100-01-01 in seconds
    99999999999,  # the last value read as seconds: year 5138
    100000000000,  # the first read as milliseconds: 1973
    "1796153479000000",  # digits in a string
]
PLAUSIBLE = [
    ("2000-01-01T00:00:00Z", 946684800000),
    ("2099-12-31T23:59:59.999Z", 4102444799999),
    (946684800, 946684800000),
    (4102444799.999, 4102444799999),
    (946684800000, 946684800000),
    (NOW_S, NOW_S * 1000),
]


def at_once(lines: list[bytes], c: bool) -> Parsed:
    parser = LineParser("auto", {"host": "h1"}, MAX, c=c)
    if c and not parser.accelerated:
        pytest.skip("the C parser is not built (under CI=true this fails: CI must test it)")
    data = b"\n".join(lines) + b"\n"
    out = Parsed(0, 0)
    parser.parse_block(Block(0, data, len(data)), FP, "p", out)
    parser.finish(out)
    return out


def line(ts: object, gen_id: str = "g1") -> bytes:
    return json.dumps({"ts": ts, "id": gen_id, "model": "m", "cost": "1"}).encode()


@pytest.mark.parametrize("ts", IMPLAUSIBLE, ids=str)
def test_a_time_outside_the_plausible_range_is_refused_with_the_value_and_the_range(ts):
    with pytest.raises(BadLine) as raised:
        parse_ts(ts)
    reason = str(raised.value)
    assert "is not a plausible time" in reason and "2000-01-01" in reason and "2100-01-01" in reason
    assert str(ts)[:20] in reason


@pytest.mark.parametrize(("ts", "ms"), PLAUSIBLE, ids=str)
def test_a_time_inside_the_range_is_read_to_its_edges(ts, ms):
    assert parse_ts(ts) == ms


@pytest.mark.parametrize("c", PATHS)
@pytest.mark.parametrize("ts", IMPLAUSIBLE, ids=str)
def test_a_line_with_an_implausible_time_is_quarantined_on_every_path_and_the_rest_counted(c, ts):
    good = line("2026-12-01T19:00:00Z", "good")
    parsed = at_once([good, line(ts), good.replace(b"good", b"good2")], c)
    assert sorted(parsed.rows) == ["g:good", "g:good2"]
    assert [q.offset for q in parsed.bad] == [len(good) + 1]
    assert "is not a plausible time" in parsed.bad[0].reason
    reference = line_by_line([good, line(ts), good.replace(b"good", b"good2")])
    assert [q.reason for q in parsed.bad] == [q.reason for q in reference.bad]


@pytest.mark.parametrize("c", PATHS)
@pytest.mark.parametrize(("ts", "ms"), PLAUSIBLE, ids=str)
def test_a_line_with_a_time_at_the_edges_of_the_range_is_counted_on_every_path(c, ts, ms):
    parsed = at_once([line(ts)], c)
    assert [row[1] for row in parsed.rows.values()] == [ms] and parsed.bad == []


@pytest.mark.parametrize(
    "record",
    [
        {"id": "gen-1", "model": "m", "created": NOW_S * 1000000, "usage": {"prompt_tokens": 1, "cost": 0.1}},
        {"performance": {"timestamp": 0, "success": True}, "usage": {"totalCost": 0.1}, "sessionId": "s"},
    ],
    ids=["openrouter-created-micros", "record-timestamp-zero"],
)
def test_the_other_formats_times_are_held_to_the_same_range(record):
    parsed = line_by_line([json.dumps(record).encode()])
    assert parsed.rows == {} and "is not a plausible time" in parsed.bad[0].reason
