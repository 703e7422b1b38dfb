"""What bounding a line's depth before decoding costs: the share of parse time the block pre-check takes.

    python bench/depth_check.py [--lines 300000] [--runs 5]

Writes canonical lines to a temporary file, parses it with ``read_batch`` (8 MiB batches, as the tailer does)
``--runs`` times, and prints the best run's lines/s and the share of it spent in
:func:`guardd.ledger.lines.may_be_too_deep`. A share holds on a noisy machine where lines/s do not.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from guardd.core.money import parse_money
from guardd.ledger import parse as ledger_parse
from guardd.ledger.parse import LineParser, read_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=300_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl") as f:
        for i in range(args.lines):
            f.write(
                f'{{"ts": "2026-11-02T10:{i % 60:02d}:00Z", "id": "g{i}", "model": "m{i % 7}",'
                f' "cost": 0.00{i % 9 + 1}, "labels": {{"team": "t{i % 5}"}}}}\n'
            )
        f.flush()
        spent = [0.0]
        real = ledger_parse.may_be_too_deep

        def timed(data: bytes) -> bool:
            started = time.perf_counter()
            try:
                return real(data)
            finally:
                spent[0] += time.perf_counter() - started

        ledger_parse.may_be_too_deep = timed  # type: ignore[assignment]
        fd = os.open(f.name, os.O_RDONLY)
        best: tuple[float, float] | None = None
        try:
            for _ in range(args.runs):
                spent[0] = 0.0
                line_parser = LineParser("auto", {}, parse_money(1000))
                position, started = 0, time.perf_counter()
                while True:
                    batch = read_batch(fd, "f" * 20, f.name, line_parser, position)
                    if batch.end == position:
                        break
                    position = batch.end
                total = time.perf_counter() - started
                if best is None or total < best[0]:
                    best = (total, spent[0])
        finally:
            os.close(fd)
    assert best is not None
    print(f"{args.lines / best[0]:,.0f} lines/s; depth pre-check {best[1] / best[0] * 100:.1f} % of parse time")


if __name__ == "__main__":
    main()
