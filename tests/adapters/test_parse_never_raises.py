"""No line can stop ingestion: whatever bytes a line holds, both parse paths quarantine or count it, and agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guardd.core.batch import Parsed
from guardd.core.money import parse_money
from guardd.ledger.lines import MAX_DEPTH, Block
from guardd.ledger.parse import LineParser, read_batch
from guardd.ledger.worker import parse_range

FP = "f" * 20
MAX = parse_money(1000)
GOOD = b'{"ts": "2026-11-21T10:00:00Z", "id": "g1", "model": "m", "cost": "0.5"}'


def nested(depth: int, inner: str = "1", where: str = "labels") -> bytes:
    return f'{{"ts": "2026-11-21T10:00:00Z", "{where}": {"[" * depth}{inner}{"]" * depth}}}'.encode()


def parse(lines: list[bytes], fmt: str, *, one_by_one: bool, c: bool = True) -> Parsed:
    parser = LineParser(fmt, {}, MAX, c=c)
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
    bad = sorted((q.offset, q.reason, q.excerpt) for q in p.bad)
    return (p.lines, p.duplicates, p.rows, p.tokens, hours, p.series, bad)


FORMATS = ["auto", "guardd", "openrouter", "record"]


def test_a_line_nested_1000_levels_deep_is_quarantined_as_nested_too_deeply():
    for fmt in FORMATS:
        for one_by_one in (False, True):
            parsed = parse([GOOD, nested(1000), GOOD.replace(b"g1", b"g2")], fmt, one_by_one=one_by_one)
            reasons = {q.offset: q.reason for q in parsed.bad}
            assert reasons[len(GOOD) + 1] == "nested too deeply", (fmt, one_by_one)
            assert parsed.lines == 3


def test_depth_is_bounded_wherever_the_nesting_is():
    for where in ("labels", "extra", "usage", "response"):
        for inner in ("1", "{}", '"[[[["'):
            parsed = parse([nested(MAX_DEPTH + 1, inner, where)], "auto", one_by_one=False)
            assert [q.reason for q in parsed.bad] == ["nested too deeply"], (where, inner)


def test_brackets_inside_strings_do_not_count_as_nesting():
    line = b'{"ts": "2026-11-21T10:00:00Z", "id": "g1", "model": "' + b"[{" * 500 + b'", "cost": "0.5"}'
    parsed = parse([line], "auto", one_by_one=True)
    assert parsed.bad == [] and len(parsed.rows) == 1


def test_a_line_just_within_the_depth_limit_is_read():
    parsed = parse([nested(MAX_DEPTH - 1, where="extra")], "auto", one_by_one=False)
    assert parsed.bad == [] and len(parsed.rows) == 1


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["2026-11-21T10:00:00Z", "sk-or-v1-" + "ab" * 32, "1E+999999", "-0.01"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
keys = st.sampled_from(["ts", "id", "model", "cost", "key", "labels", "usage", "response", "performance", "created"])
records = st.dictionaries(keys | st.text(max_size=6), json_values, max_size=8)
deep = st.sampled_from([MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 900, 1000, 5000]).map(nested)
raw_lines = st.binary(max_size=200).map(lambda b: b.replace(b"\n", b" "))
lines = st.lists(
    st.one_of(records.map(lambda r: json.dumps(r).encode()), json_values.map(lambda v: json.dumps(v).encode()))
    | deep
    | raw_lines
    | st.just(GOOD),
    min_size=1,
    max_size=12,
)


@settings(max_examples=400, deadline=None)
@given(lines, st.sampled_from(FORMATS), st.booleans())
def test_arbitrary_lines_never_raise_and_both_paths_agree(lines, fmt, c):
    assert summary(parse(lines, fmt, one_by_one=False, c=c)) == summary(parse(lines, fmt, one_by_one=True, c=False))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines)
def test_the_worker_process_path_agrees_with_the_tailer_path(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("w") / "ledger.jsonl"
    data = b"\n".join(lines) + b"\n"
    path.write_bytes(data)
    st = path.stat()  # in this process there is no writer's descriptor: the worker opens the path, same inode
    packed = parse_range(str(path), -1, st.st_dev, st.st_ino, FP, "auto", {}, MAX, 0, len(data))
    fd = os.open(path, os.O_RDONLY)
    try:
        direct = read_batch(fd, FP, str(path), LineParser("auto", {}, MAX), 0)
    finally:
        os.close(fd)
    worker = Parsed.unpack(packed)
    worker.row_dict()
    assert summary(worker) == summary(direct)


def guardd(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDD_")}
    return subprocess.run(
        [sys.executable, "-m", "guardd", *args, "-c", str(tmp_path / "guardd.toml")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_run_once_and_ingest_count_the_lines_around_a_deeply_nested_one(tmp_path):
    (tmp_path / "ledgers").mkdir()
    (tmp_path / "ledgers" / "app.jsonl").write_bytes(
        GOOD + b"\n" + nested(1000) + b"\n" + GOOD.replace(b"g1", b"g2") + b"\n"
    )
    (tmp_path / "guardd.toml").write_text('[guardd]\nstate_dir = "state"\n[[ledgers]]\npath = "ledgers/app.jsonl"\n')
    once = guardd(tmp_path, "run", "--once")
    assert once.returncode == 0, once.stderr
    ingest = guardd(tmp_path, "ingest", "--json", "ledgers/app.jsonl")
    assert ingest.returncode == 0, ingest.stderr
    assert json.loads(ingest.stdout)["quarantined"] == 1
    report = guardd(tmp_path, "report", "--json", "--since", "2026-11-01", "--until", "2026-12-01")
    assert json.loads(report.stdout)["events"] == 2
