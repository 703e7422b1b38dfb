"""The C accelerator of the batch path (guardd/ledger/_fastparse*.c) gives exactly what the Python path gives, takes
the plain canonical shape by itself, leaves every other line to the Python path in order, and is built and used
under CI (``GUARDD_NO_C_PARSE=1`` and an install without it fall back to the Python path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardd.core.batch import Parsed
from guardd.core.money import parse_money
from guardd.ledger.lines import Block
from guardd.ledger.parse import LineParser, c_parser

FP = "f" * 20
MAX = parse_money(1000)
PLAIN = (
    b'{"ts":"2026-10-01T00:00:00.000Z","id":"gen-o7hRfp9mNCCElZfobqz3xhq9dMxO","model":"google/gemini-2.5-pro",'
    b'"cost":0.021732049,"prompt_tokens":3892,"completion_tokens":309,"reasoning_tokens":0,"cached_tokens":0,'
    b'"key":"key-0","provider":"P","labels":{"team":"chat"},"ok":true}'
)


def c_parser_for(labels: dict[str, str] | None = None) -> LineParser:
    parser = LineParser("auto", labels or {}, MAX, c=True)
    if not parser.accelerated:
        pytest.skip("the C parser is not built (under CI=true this fails: CI must test it)")
    return parser


def parse(lines: list[bytes], parser: LineParser, base: int = 0) -> Parsed:
    data = b"\n".join(lines) + b"\n"
    out = Parsed(base, base)
    parser.parse_block(Block(base, data, base + len(data)), FP, "p", out)
    parser.finish(out)
    return out


def summary(p: Parsed) -> tuple[object, ...]:
    hours = {k: tuple(v) for k, v in p.hours.items() if any(v)}
    bad = sorted((q.offset, q.reason, q.excerpt) for q in p.bad)
    return (p.lines, p.duplicates, p.rows, p.tokens, hours, p.series, bad, p.health, p.count, p.max_ts)


def test_the_c_parser_is_built_and_used_by_default(monkeypatch):
    monkeypatch.delenv("GUARDD_NO_C_PARSE", raising=False)
    if not c_parser():
        pytest.skip("the C parser is not built (under CI=true this fails: CI must not run the slow path)")
    assert LineParser("auto", {}, MAX).accelerated and LineParser("guardd", {}, MAX).accelerated


def test_guardd_no_c_parse_forces_the_python_path(monkeypatch):
    monkeypatch.setenv("GUARDD_NO_C_PARSE", "1")
    assert not c_parser() and not LineParser("auto", {}, MAX).accelerated


def test_other_formats_are_parsed_by_the_python_path():
    assert not LineParser("openrouter", {}, MAX, c=True).accelerated


def test_an_install_without_the_extension_parses_with_the_python_path():
    code = (
        "import sys; sys.modules['guardd.ledger._fastparse'] = None\n"  # what an import of a module not built does
        "from guardd.core.batch import Parsed\n"
        "from guardd.ledger.lines import Block\n"
        "from guardd.ledger.parse import LineParser, c_parser\n"
        "p = LineParser('auto', {}, 10**15)\n"
        f"data = {PLAIN!r} + b'\\n'\n"
        "out = Parsed(0, 0); p.parse_block(Block(0, data, len(data)), 'f', 'p', out)\n"
        "print(c_parser(), p.accelerated, len(out.rows), out.lines)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "GUARDD_NO_C_PARSE"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.stdout.split() == ["False", "False", "1", "1"], done.stderr


def test_a_block_of_plain_canonical_lines_never_reaches_the_python_path(monkeypatch):
    parser = c_parser_for()

    def python_path(*args: object) -> None:
        raise AssertionError("took the Python path")

    monkeypatch.setattr(parser, "_python_block", python_path)
    lines = [PLAIN.replace(b"gen-o7h", b"gen-%03d" % i) for i in range(50)]
    lines += [b'{"ts": 1795255200.123, "model": "m", "cost": "0.0015", "latency_ms": 12.5, "status": 503}']
    out = parse(lines, parser)
    assert len(out.rows) == 51 and out.lines == 51 and len(out.health) == 1


def test_a_line_the_c_parser_refuses_keeps_its_place_among_duplicates():
    first = PLAIN.replace(b'"cost":0.021732049', b'"cost":1')
    odd = PLAIN.replace(b'"cost":0.021732049', b'"cost":2e0')  # an exponent: the Python path's
    last = PLAIN.replace(b'"cost":0.021732049', b'"cost":3')
    lines = [first, odd, last, b"", b"not json", odd]
    c, python = parse(lines, c_parser_for()), parse(lines, LineParser("auto", {}, MAX, c=False))
    assert summary(c) == summary(python)
    assert [row[3] for row in c.rows.values()] == [2 * 10**12] and c.duplicates == 3


# ---- lines at the edge of what the C parser takes: each one it takes must give what the Python path gives ----

space = st.sampled_from(["", "", "", " ", "  ", "\t", "\r", " \t"])
unicode_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=12)
strings = st.one_of(
    st.sampled_from(
        ["openai/gpt-4o", "m1", "", "ünïcode", "a\\u00e9", "tab\\t", 'q\\"', "k-1", "x y", "sk-or-v1-" + "ab" * 20]
    ),
    unicode_text,
).map(lambda s: '"' + s + '"') | st.just("null")
numbers = st.one_of(
    st.sampled_from(["0", "-0", "00", "01", "1.", ".5", "1e3", "1E-2", "-1", "1.5e0", "0.000000000001", "3.0"]),
    st.sampled_from(["1000", "1000.000000000001", "999999.999999999999", "1000000", "0.5000000000000", "12.3400"]),
    st.integers(min_value=0, max_value=10**20).map(str),
    st.decimals(min_value=0, max_value=10**7, places=14, allow_nan=False).map(str),
    st.floats(min_value=0, max_value=1e6, allow_nan=False).map(repr),
)
times = st.one_of(
    st.datetimes(min_value=datetime(1969, 12, 31), max_value=datetime(2200, 1, 1)).flatmap(
        lambda moment: st.tuples(
            st.sampled_from(["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dt%H:%M:%S"]),
            st.integers(min_value=0, max_value=9),
            st.sampled_from(["Z", "z", "", "+00:00", "-00:00", "+05:30", "-11:59", "+23:59", "+24:00", "+0100"]),
        ).map(
            lambda t: (
                '"'
                + moment.strftime(t[0])
                + ("." + f"{moment.microsecond:06d}{moment.microsecond % 997:03d}"[: t[1]] if t[1] else "")
                + t[2]
                + '"'
            )
        )
    ),
    numbers,
    st.sampled_from(['"2026-02-29T00:00:00Z"', '"2024-02-29T00:00:00Z"', '"2026-10-01T23:59:60Z"', '"1795255200"']),
)
values = {
    "ts": times,
    "id": strings | st.text("abcXYZ019-_:.k ~", min_size=1, max_size=12).map(lambda s: '"' + s + '"'),
    "model": strings,
    "cost": numbers | numbers.map(lambda n: '"' + n + '"') | st.just("null"),
    "prompt_tokens": numbers | st.just("null"),
    "completion_tokens": numbers,
    "reasoning_tokens": numbers,
    "cached_tokens": numbers,
    "key": strings,
    "provider": strings,
    "labels": st.dictionaries(
        unicode_text, st.one_of(unicode_text, st.integers(), st.booleans(), st.none()), max_size=3
    )
    .map(json.dumps)
    .map(lambda s: s.replace(", ", ","))
    | st.sampled_from(['{"a":{"b":1}}', '{"a":[1]}', "[]", '"x"', "null", "{}"]),
    "ok": st.sampled_from(["true", "false", "null", "1", '"true"']),
    "latency_ms": numbers | st.just("null"),
    "status": st.sampled_from(["200", "503", "99", "600", "429.0", '"500"', "null", "0429"]),
    "error": strings,
    "usage": st.sampled_from(["null", '{"cost":1}', "1"]),
    "sessionId": st.sampled_from(["null", '"s"']),
    "extra": st.one_of(strings, numbers, st.sampled_from(["true", "null", "[1]", '{"a":1}', "[]"])),
}


@st.composite
def edge_lines(draw: st.DrawFn) -> bytes:
    names = ["ts"] + [name for name in values if name != "ts" and draw(st.integers(0, 3)) == 0]
    if draw(st.integers(0, 20)) == 0:
        names.append(draw(st.sampled_from(names)))  # a field twice
    if draw(st.integers(0, 30)) == 0:
        names.remove("ts")
    members = [
        draw(space) + f'"{name}"' + draw(space) + ":" + draw(space) + draw(values[name]) + draw(space)
        for name in draw(st.permutations(names))
    ]
    return (draw(space) + "{" + ",".join(members) + "}" + draw(space)).encode()


@settings(max_examples=500, deadline=None)
@given(st.lists(edge_lines() | st.just(PLAIN), min_size=1, max_size=12))
def test_lines_at_the_edge_of_the_c_shape_parse_as_the_python_path_parses_them(lines):
    assert summary(parse(lines, c_parser_for({"host": "h1"}), 7)) == summary(
        parse(lines, LineParser("auto", {"host": "h1"}, MAX, c=False), 7)
    )


FREE = PLAIN.replace(b'"cost":0.021732049', b'"cost":0') + b"\n"  # within any ceiling, the uninitialised one's 0


def test_a_scanner_whose_init_never_ran_raises_instead_of_crashing():
    code = (
        "from guardd.ledger import _fastparse\n"
        "from guardd.core.batch import Parsed\n"
        "s = _fastparse.Scanner.__new__(_fastparse.Scanner)\n"
        "try:\n"
        f"    s.scan({FREE!r}, 0, 0, 'f' * 20, Parsed(0, 0))\n"
        "except RuntimeError as exc:\n"
        "    print('raised:', exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0 and "raised:" in done.stdout, (done.returncode, done.stdout, done.stderr)
