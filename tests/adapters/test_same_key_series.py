"""Two lines of one generation in one batch: the event is counted once, in the series of the first line (who spent
is fixed by the first arrival), with the last line's cost and time — the rule the store applies across batches
(guardd/store/batch_writes.py ``correct``), so that where a file's batches end changes nothing. On every parser
path: the C scanner, the Python batch path and the line path."""

from __future__ import annotations

import json

import pytest

from guardd.core.batch import Parsed
from guardd.core.money import parse_money
from guardd.ledger.lines import Block
from guardd.ledger.parse import LineParser

FP = "f" * 20
FIRST = {"ts": "2026-11-02T10:00:00Z", "id": "gen-x", "model": "m", "cost": "0.75", "labels": {"team": "search"}}
LATER = {"ts": "2026-11-02T12:00:00Z", "id": "gen-x", "model": "m-2026", "cost": "1.25", "ok": False, "status": 500}


def lines() -> list[bytes]:
    return [json.dumps(FIRST).encode(), json.dumps(LATER).encode()]


def parsed_by(path: str) -> tuple[Parsed, int]:
    parser = LineParser("auto", {}, parse_money(1000), c=path == "c")
    if path == "c" and not parser.accelerated:
        pytest.skip("the C parser is not built")
    out = Parsed(0, 0)
    if path == "line":
        for offset, line in enumerate(lines()):
            parser.parse_line(line, offset, FP, "p", out)
    else:
        data = b"\n".join(lines()) + b"\n"
        parser.parse_block(Block(0, data, len(data)), FP, "p", out)
    parser.finish(out)
    first = Parsed(0, 0)
    parser.parse_line(lines()[0], 0, FP, "p", first)
    return out, first.rows["g:gen-x"][2]


@pytest.mark.parametrize("path", ["c", "python", "line"])
def test_the_later_line_of_a_key_in_one_batch_keeps_the_first_lines_series(path):
    out, labelled = parsed_by(path)
    _, ts, series, cost = out.rows["g:gen-x"][:4]
    assert (series, cost, out.duplicates, out.count) == (labelled, 1_250_000_000_000, 1, 1)
    assert {key: v[:3] for key, v in out.hours.items() if any(v)} == {(ts // 3_600_000, labelled): [cost, 1, 0]}
    assert out.health["g:gen-x"][2] == labelled
    assert labelled in out.series
