"""What the parse tests share: the reference result of a block, each line through the line path alone."""

from __future__ import annotations

from guardd.core.batch import Parsed
from guardd.core.money import parse_money
from guardd.ledger.parse import LineParser

FP = "f" * 20
MAX = parse_money(1000)


def line_by_line(raw: list[bytes]) -> Parsed:
    """Every line through the line path alone (the generic rules of one line, no block decoding)."""
    parser = LineParser("auto", {"host": "h1"}, MAX, c=False)
    out = Parsed(0, 0)
    offset = 0
    for line in raw:
        parser.parse_line(line, offset, FP, "p", out)
        offset += len(line) + 1
    parser.finish(out)
    return out
