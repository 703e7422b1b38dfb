"""The batch path (a block decoded at once, with the C accelerator or without it) and the line path (each line on
its own) give the same batch."""

from __future__ import annotations

import json
import os
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardd.core.batch import Parsed, key_hash, key_hashes
from guardd.core.money import parse_money
from guardd.ledger.lines import MAX_LINE, Block, iter_blocks
from guardd.ledger.parse import LineParser
from tests.support.parsing import FP, MAX, line_by_line

times = st.sampled_from(
    [
        "2026-11-21T10:00:00Z",
        "2026-11-21T10:00:00.123Z",
        "2026-11-21T10:00:00.123456Z",
        "2026-11-21t10:00:00z",
        "2026-11-21 11:00:00+01:00",
        "2026-11-21T10:00:00",  # no zone: UTC, on the line path
        "2026-11-21T10:00:60Z",  # not a time
        "yesterday",
        1795255200,
        1795255200500,
        1795255200.123,  # Unix seconds with a fraction (JSON text, read exactly)
        1795255200.1239,
        1795255200.0009999,
        1795255200500.7,  # milliseconds with a fraction
        -5,
        0,
        "1795255200",  # digits in a string
        True,
        None,
    ]
)
costs = st.one_of(
    st.none(),
    st.decimals(min_value=0, max_value=2000, places=9, allow_nan=False),
    st.decimals(min_value=0, max_value=1, places=14, allow_nan=False),  # beyond pico-dollars: rounded
    st.sampled_from([Decimal("-0.01"), Decimal("1E+3"), "0.25", "abc", True, [1]]),
)
labels = st.one_of(
    st.none(),
    st.dictionaries(st.sampled_from(["team", "env", "job"]), st.sampled_from(["a", "b", 3, True, None]), max_size=3),
    st.just({"team": {"nested": 1}}),
    st.just("not an object"),
)
canonical = st.fixed_dictionaries(
    {"ts": times},
    optional={
        "id": st.one_of(st.sampled_from(["g1", "g2", "g3", ""]), st.none()),
        "model": st.sampled_from(["m1", "openai/gpt-4o", ""]),
        "cost": costs,
        "prompt_tokens": st.sampled_from([0, 10, -1, 1.5]),
        "completion_tokens": st.sampled_from([0, 5]),
        "key": st.sampled_from(["prod", "sk-or-v1-" + "ab" * 32, None]),
        "provider": st.sampled_from(["OpenAI", None]),
        "labels": labels,
        "ok": st.sampled_from([True, False, None]),
        "latency_ms": st.sampled_from([0, 12, 850.5, -3, "fast", True, None]),
        "status": st.sampled_from([200, 429, 503, 99, 429.0, "500", None]),
        "error": st.sampled_from(["RateLimitError", "x" * 300, {"code": 429}, "key sk-or-v1-" + "cd" * 32, None]),
        "extra": st.just({"ignored": True}),
    },
)
other = st.sampled_from(
    [
        b'{"id": "gen-x", "model": "m", "created": 1795255200, "usage": {"cost": 0.5, "prompt_tokens": 1}}',
        b"not json at all",
        b'{"ts": "2026-11-21T10:00:00Z", "cost": 1',
        b"   ",
        b"",
        b"[1, 2, 3]",
        b"\x80\x00",
        b'{"ts": "2026-11-21T10:00:00Z", "model": "\xff"}',
    ]
)


def encode(obj: dict) -> bytes:
    return json.dumps(obj, default=str).encode()


lines_strategy = st.lists(st.one_of(canonical.map(encode), other), min_size=1, max_size=25)


PATHS = [pytest.param(True, id="c"), pytest.param(False, id="python")]


def batch(lines: list[bytes], *, one_by_one: bool, c: bool = True) -> Parsed:
    parser = LineParser("auto", {"host": "h1"}, MAX, c=c)
    if c and not parser.accelerated:
        pytest.skip("the C parser is not built (under CI=true this fails: CI must test it)")
    out = Parsed(0, 0)
    if one_by_one:
        offset = 0
        for line in lines:
            parser.parse_block(Block(offset, line + b"\n", offset + len(line) + 1), FP, "p", out)
            offset += len(line) + 1
    else:
        data = b"\n".join(lines) + b"\n"
        parser.parse_block(Block(0, data, len(data)), FP, "p", out)
    parser.finish(out)
    return out


def summary(p: Parsed) -> tuple:
    hours = {k: tuple(v) for k, v in p.hours.items() if any(v)}
    bad = sorted((q.offset, q.reason) for q in p.bad)
    return (p.lines, p.duplicates, p.rows, p.tokens, hours, p.series, bad, p.health)


@pytest.mark.parametrize("c", PATHS)
@settings(max_examples=300, deadline=None)
@given(lines=lines_strategy)
def test_a_block_parses_the_same_at_once_as_line_by_line(c, lines):
    assert summary(batch(lines, one_by_one=False, c=c)) == summary(batch(lines, one_by_one=True, c=False))


@pytest.mark.parametrize("c", PATHS)
@settings(max_examples=100, deadline=None)
@given(lines=lines_strategy)
def test_hourly_sums_match_the_rows_they_summarise(c, lines):
    parsed = batch(lines, one_by_one=False, c=c)
    expected: dict = {}
    for _k, ts, sid, cost, *tokens in parsed.rows.values():
        entry = expected.setdefault((ts // 3_600_000, sid), [0] * 7)
        entry[0] += cost or 0
        entry[1] += 1
        entry[2] += cost is None
        for i, count in enumerate(tokens, 3):
            entry[i] += count
    assert {k: v for k, v in parsed.hours.items() if any(v)} == expected
    assert set(parsed.tokens) == {k for k, row in parsed.rows.items() if row[3] is None}


def test_a_packed_batch_unpacks_to_the_same_rows():
    lines = [encode({"ts": "2026-11-21T10:00:00Z", "id": f"g{i}", "model": "m", "cost": "0.5"}) for i in range(50)]
    lines.append(b"garbage")
    parsed = batch(lines, one_by_one=False)
    copy = Parsed.unpack(parsed.pack())
    keyed = list(copy.keyed_rows())
    assert keyed == sorted((key_hash(row[0]), *row) for row in parsed.rows.values())  # by hash, for the index
    assert list(copy.row_iter()) == [row[1:] for row in keyed]
    assert copy.row_dict() == parsed.rows
    assert (copy.hours, copy.tokens, copy.series, copy.bad) == (parsed.hours, parsed.tokens, parsed.series, parsed.bad)
    assert copy.health == parsed.health
    assert (copy.count, copy.max_ts, copy.lines) == (50, parsed.max_ts, 51)
    assert list(copy.insert_rows()) == [row[:5] for row in keyed]
    assert list(parsed.insert_rows()) == [row[:5] for row in keyed]  # the same, unpacked in this process
    assert key_hashes(list(parsed.rows)) == [key_hash(k) for k in parsed.rows]


def test_a_full_secret_key_never_reaches_a_series_signature():
    secret = "sk-or-v1-" + "ab" * 32
    parsed = batch([encode({"ts": "2026-11-21T10:00:00Z", "model": "m", "key": secret, "cost": 1})], one_by_one=False)
    assert all(secret not in sig for sig in parsed.series.values())
    assert any("…abab" in sig for sig in parsed.series.values())


def test_blocks_hold_whole_lines_and_skip_an_over_long_line_unread(tmp_path):
    path = tmp_path / "ledger.jsonl"
    long_line = b'{"pad": "' + b"x" * (MAX_LINE + 10) + b'"}'
    path.write_bytes(b'{"a": 1}\n' + long_line + b'\n{"b": 2}\n{"c": 3')
    fd = os.open(path, os.O_RDONLY)
    try:
        blocks = list(iter_blocks(fd, 0))
    finally:
        os.close(fd)
    assert [b.data for b in blocks] == [b'{"a": 1}\n', None, b'{"b": 2}\n']
    assert blocks[1].offset == 9 and blocks[1].end == 9 + len(long_line) + 1
    assert blocks[-1].end == path.stat().st_size - len(b'{"c": 3')  # the unfinished line waits


def test_every_time_and_cost_form_of_a_canonical_line_is_decoded_without_the_line_by_line(monkeypatch):
    def no_line_path(*args: object) -> None:
        raise AssertionError("took the line path")

    forms = ["2026-11-21T10:00:00.123Z", "2026-11-21T05:00:00.123-05:00", "2026-11-21T10:00:00.123", 1795255200123]
    lines = [
        b'{"ts": 1795255200.123, "id": "s", "cost": 1.5e-3}',
        *(json.dumps({"ts": ts, "id": f"g{i}", "cost": "0.0015"}).encode() for i, ts in enumerate(forms)),
    ]
    parser = LineParser("auto", {}, MAX)
    monkeypatch.setattr(parser, "_one", no_line_path)
    data = b"\n".join(lines) + b"\n"
    out = Parsed(0, 0)
    parser.parse_block(Block(0, data, len(data)), FP, "p", out)
    assert {row[1] for row in out.rows.values()} == {1795255200123}
    assert {row[3] for row in out.rows.values()} == {parse_money("0.0015")}


def test_a_clean_canonical_block_is_decoded_at_once(monkeypatch):
    def no_line_path(*args: object) -> None:
        raise AssertionError("took the line path")

    parser = LineParser("auto", {}, MAX)
    monkeypatch.setattr(parser, "_one", no_line_path)
    data = b"".join(encode({"ts": "2026-11-21T10:00:00Z", "id": f"g{i}", "cost": "0.1"}) + b"\n" for i in range(9))
    out = Parsed(0, 0)
    parser.parse_block(Block(0, data, len(data)), FP, "p", out)
    assert len(out.rows) == 9 and out.lines == 9


def test_a_line_with_another_formats_marker_set_to_null_parses_at_once_as_on_its_own():
    # The line path reads a line with "sessionId" or "performance" (even null) and a time the canonical decoder does
    # not take (a number with a fraction) as a record line; the batch path took the null as absent.
    for marker in ("sessionId", "performance", "usage", "response"):
        line = encode({"ts": 1795255200.5, "model": "m", "cost": 0, marker: None})
        for c in (True, False):
            assert summary(batch([GOOD_LINE, line], one_by_one=False, c=c)) == summary(
                line_by_line([GOOD_LINE, line])
            ), (
                marker,
                c,
            )


GOOD_LINE = encode({"ts": "2026-11-21T10:00:00Z", "id": "g0", "model": "m", "cost": "0.1"})


def test_a_line_with_a_fractional_time_and_bytes_that_are_not_utf8_parses_at_once_as_on_its_own():
    # The line path reads a time with a fraction with the generic decoder, which refuses any byte that is not UTF-8;
    # the batch path skipped an unknown field's name or value unread, and counted the line.
    for odd in (b'"x\xa0":0', b'"x":"\xff"'):
        line = b'{"ts": 1795255200.5, "model": "m", "cost": 1, ' + odd + b"}"
        for c in (True, False):
            assert summary(batch([GOOD_LINE, line], one_by_one=False, c=c)) == summary(
                line_by_line([GOOD_LINE, line])
            ), (
                odd,
                c,
            )


def test_a_line_with_labels_to_convert_and_bytes_that_are_not_utf8_parses_at_once_as_on_its_own():
    # A label value that is not a string fails the line path's canonical decoder; its generic decoder then refuses
    # any byte that is not UTF-8, while the batch path skipped an unknown field's name or value unread and counted
    # the line: whether it counted depended on the other lines of its block (a blank line, a bad line).
    for ts in (b'"2026-10-01T00:00:00Z"', b"1795255200"):
        for odd in (b'"x\xa0":0', b'"x":"\xff"', b'"x":[1,"\xff"]'):
            line = b'{"ts": ' + ts + b', "model": "m", "cost": 1, "labels": {"a": 1}, ' + odd + b"}"
            for c in (True, False):
                assert summary(batch([GOOD_LINE, line], one_by_one=False, c=c)) == summary(
                    line_by_line([GOOD_LINE, line])
                ), (ts, odd, c)


def test_two_broken_lines_that_join_into_one_object_are_both_quarantined():
    # The batch path joins a block's lines with commas: a line cut inside a field name and the rest of it on the next
    # line made one valid object, counted as an event (with the next lines' keys shifted by one).
    head, tail = b'{"ts": 1795255200123, "id": "g9", "x', b'": 1, "cost": 1}'
    for c in (True, False):
        parsed = batch([GOOD_LINE, head, tail, GOOD_LINE.replace(b"g0", b"g1")], one_by_one=False, c=c)
        assert sorted(parsed.rows) == ["g:g0", "g:g1"] and len(parsed.bad) == 2 and parsed.lines == 4, c


@pytest.mark.parametrize("c", PATHS)
def test_an_id_holding_a_url_password_is_keyed_by_its_hash_on_every_path(c):
    gen_id = "https://user:hunter2pass@example.com/x"
    line = encode({"ts": "2026-11-21T10:00:00Z", "id": gen_id, "model": "m", "cost": 1})
    at_once = batch([line], one_by_one=False, c=c)
    assert all("hunter2pass" not in k for k in at_once.rows)
    assert summary(at_once) == summary(batch([line], one_by_one=True, c=False))


@pytest.mark.parametrize("c", PATHS)
def test_a_unix_time_with_more_digits_than_decimal_precision_is_read_exactly_on_every_path(c):
    # 29 significant digits: multiplying by 1000 in Decimal's default context rounded it up to the next second.
    line = b'{"ts":1790817949.9999999999999999999,"id":"g","model":"m","cost":1}'
    for parsed in (batch([line], one_by_one=False, c=c), batch([line], one_by_one=True, c=False)):
        assert [row[1] for row in parsed.rows.values()] == [1790817949999]


@pytest.mark.parametrize("c", PATHS)
def test_a_line_of_two_objects_beside_two_torn_lines_is_quarantined_with_them(c):
    # Joined into one array, the two objects of the first line and the torn pair (which joins into one object with
    # a key "mo,del") are as many objects as lines: the count alone took them for the lines.
    one, other = b'{"ts": "2026-11-21T10:00:00Z", "id": "a1", "cost": 1}', b'{"ts": 0, "id": "a2", "cost": 100}'
    two = one + b"," + other
    lines = [two, b'{"ts": "2026-11-21T10:00:00Z", "id": "b1", "mo', b'del": "m", "cost": 5}']
    at_once = batch(lines, one_by_one=False, c=c)
    assert at_once.rows == {} and len(at_once.bad) == 3
    assert summary(at_once) == summary(batch(lines, one_by_one=True, c=False))
