"""Write a seeded synthetic ledger in the canonical format (for the benchmarks).

    python bench/genledger.py OUT.jsonl [--lines 1000000] [--seed 7] [--ids sequential|random]

Ids: "sequential" (gen-7-0, gen-7-1, ...) like ids that grow with time; "random" like OpenRouter's
(gen- and 28 random letters), which makes the store's unique key index take inserts all over.

Costs have at most 9 decimal places and are written as JSON numbers; the exact decimal total is printed on
stderr so that a run can be checked against ``guardd report --json``.
"""

from __future__ import annotations

import argparse
import random
import string
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

MODELS = [
    "anthropic/claude-3.5-sonnet",
    "openai/gpt-4o",
    "openai/gpt-4o-mini",
    "google/gemini-2.5-pro",
    "meta-llama/llama-3.3-70b-instruct",
    "deepseek/deepseek-chat",
]
TEAMS = ["search", "chat", "batch", "eval"]
ALNUM = string.ascii_letters + string.digits


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--start", default="2026-10-01T00:00:00+00:00")
    ap.add_argument("--span-days", type=float, default=30.0)
    ap.add_argument("--ids", choices=["sequential", "random"], default="sequential")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    ids = random.Random(args.seed + 1)  # a stream of its own: the other fields are the same for both id styles
    start = datetime.fromisoformat(args.start).astimezone(UTC)
    step = timedelta(days=args.span_days) / max(1, args.lines)
    total = Decimal(0)
    with open(args.out, "w", encoding="utf-8") as out:
        for i in range(args.lines):
            ts = (start + step * i).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            nanos = rng.randrange(1, 50_000_000)
            cost = Decimal(nanos).scaleb(-9)
            total += cost
            p, c = rng.randrange(10, 4000), rng.randrange(1, 1500)
            ident = f"gen-{args.seed}-{i}" if args.ids == "sequential" else "gen-" + "".join(ids.choices(ALNUM, k=28))
            out.write(
                f'{{"ts":"{ts}","id":"{ident}","model":"{rng.choice(MODELS)}","cost":{cost},'
                f'"prompt_tokens":{p},"completion_tokens":{c},"reasoning_tokens":0,"cached_tokens":0,'
                f'"key":"key-{rng.randrange(8)}","provider":"P","labels":{{"team":"{rng.choice(TEAMS)}"}},"ok":true}}\n'
            )
    print(f"total={total}", file=sys.stderr)


if __name__ == "__main__":
    main()
