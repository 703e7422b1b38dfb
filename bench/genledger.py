"""Write a seeded synthetic ledger in the canonical format (for the benchmarks).

    python bench/genledger.py OUT.jsonl [--lines 1000000] [--seed 7] [--shape steady|mixed|sequential]
                              [--ids sequential|random]

Shapes (the ledgers people really write):
- ``sequential``: ids that grow with time (``gen-7-0``, ``gen-7-1``, …), 192 series, RFC 3339 UTC times with
  milliseconds, numeric costs — the shape of the first benchmarks.
- ``steady``: one client program's ledger: times moving forward, RFC 3339 UTC with milliseconds, numeric costs,
  OpenRouter-style random ids (``gen-`` and 28 letters), 480 series.
- ``mixed``: every other form contract §2 allows, mixed line by line: epoch seconds and milliseconds, offsets,
  naive times, decimal-string and exponent costs, and times out of order (jittered by up to an hour).
``--ids`` overrides the shape's id style.

Costs have at most 9 decimal places; the exact decimal total is printed on stderr so that a run can be checked
against ``guardd report --json``.
"""

from __future__ import annotations

import argparse
import random
import string
import sys
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

MODELS = [
    "anthropic/claude-3.5-sonnet",
    "openai/gpt-4o",
    "openai/gpt-4o-mini",
    "google/gemini-2.5-pro",
    "meta-llama/llama-3.3-70b-instruct",
    "deepseek/deepseek-chat",
]
TEAMS = ["search", "chat", "batch", "eval", "ops", "web", "mobile", "data"]
ALNUM = string.ascii_letters + string.digits
SHAPES = {  # shape: (id style, keys, teams) — series = 6 models x keys x teams
    "sequential": ("sequential", 8, 4),
    "steady": ("random", 10, 8),
    "mixed": ("random", 10, 8),
}
OFFSET = timezone(timedelta(hours=-5))


def _ts_canonical(moment: datetime) -> str:
    return '"' + moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + 'Z"'


def _ts_mixed(moment: datetime, rng: random.Random) -> str:
    """One of the time forms §2 allows, chosen at random; all name the same instant to the millisecond."""
    ms = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    form = rng.randrange(5)
    if form == 0:
        return str(ms // 1000) if ms % 1000 == 0 else f"{ms // 1000}.{ms % 1000:03d}"  # epoch seconds
    if form == 1:
        return str(ms)  # epoch milliseconds
    if form == 2:
        return '"' + moment.astimezone(OFFSET).isoformat(timespec="milliseconds") + '"'  # with an offset
    if form == 3:
        return '"' + moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + '"'  # naive: UTC
    return _ts_canonical(moment)


def _cost_mixed(cost: Decimal, rng: random.Random) -> str:
    form = rng.randrange(3)
    if form == 0:
        return f'"{cost}"'  # a decimal string
    if form == 1:
        return f"{cost:e}"  # exponent form (exact: at most 9 significant digits here)
    return str(cost)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--start", default="2026-10-01T00:00:00+00:00")
    ap.add_argument("--span-days", type=float, default=30.0)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="sequential")
    ap.add_argument("--ids", choices=["sequential", "random"], default=None)
    args = ap.parse_args()
    id_style, keys, teams = SHAPES[args.shape]
    id_style = args.ids or id_style
    mixed = args.shape == "mixed"
    rng = random.Random(args.seed)
    ids = random.Random(args.seed + 1)  # a stream of its own: the other fields are the same for both id styles
    forms = random.Random(args.seed + 2)  # the mixed shape's choice of forms, also a stream of its own
    start = datetime.fromisoformat(args.start).astimezone(UTC)
    step = timedelta(days=args.span_days) / max(1, args.lines)
    total = Decimal(0)
    with open(args.out, "w", encoding="utf-8") as out:
        for i in range(args.lines):
            moment = (start + step * i).replace(microsecond=(start + step * i).microsecond // 1000 * 1000)
            if mixed:
                moment += timedelta(milliseconds=forms.randrange(-3_600_000, 3_600_000))
            nanos = rng.randrange(1, 50_000_000)
            cost = Decimal(nanos).scaleb(-9)
            total += cost
            p, c = rng.randrange(10, 4000), rng.randrange(1, 1500)
            ident = f"gen-{args.seed}-{i}" if id_style == "sequential" else "gen-" + "".join(ids.choices(ALNUM, k=28))
            ts = _ts_mixed(moment, forms) if mixed else _ts_canonical(moment)
            cost_text = _cost_mixed(cost, forms) if mixed else str(cost)
            out.write(
                f'{{"ts":{ts},"id":"{ident}","model":"{rng.choice(MODELS)}","cost":{cost_text},'
                f'"prompt_tokens":{p},"completion_tokens":{c},"reasoning_tokens":0,"cached_tokens":0,'
                f'"key":"key-{rng.randrange(keys)}","provider":"P","labels":{{"team":"{rng.choice(TEAMS[:teams])}"}},'
                f'"ok":true}}\n'
            )
    print(f"total={total}", file=sys.stderr)


if __name__ == "__main__":
    main()
