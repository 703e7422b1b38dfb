"""The demo's ledger, written relative to now, so that the README's first command tells the same story on any date.

``python -m guardd.demo [FOLDER]`` writes ``FOLDER/usage.jsonl`` (default ``examples``) and removes
``FOLDER/.guardd``, the demo's own state, so a second run starts afresh instead of adding a second made-up
month to the first. The story, in UTC (the demo's zone): two teams spend about $1 a day over the previous days of
this month (at most 13), then ``team-search`` spends about $5.60 in the last hours of today. Whatever the date,
``team-search`` is past 25 % of its $20 month and ``everything`` past 50 % of its $10 day: warnings, no trip.
Two bad lines at the end show what the quarantine does.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

_HISTORY_DAYS = 13
_MODELS = {"chat": "google/gemini-2.5-flash", "search": "anthropic/claude-sonnet-4"}


def _event(rng: random.Random, when: datetime, n: int, team: str, cost: float) -> dict[str, Any]:
    jitter = round(cost * rng.uniform(0.8, 1.2), 6)
    return {
        "ts": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "id": f"gen-demo-{n}",
        "model": _MODELS[team],
        "cost": f"{jitter:.6f}",
        "prompt_tokens": rng.randint(400, 3000),
        "completion_tokens": rng.randint(20, 800),
        "key": "…dem1" if team == "search" else "…dem2",
        "provider": "Anthropic" if team == "search" else "Google",
        "labels": {"team": team},
    }


def demo_lines(now: datetime) -> list[str]:
    """Return the demo ledger's lines for ``now`` (aware): every event at or before ``now``, none in the future."""
    rng = random.Random(7)
    now = now.astimezone(UTC).replace(microsecond=0)
    midnight = now.replace(hour=0, minute=0, second=0)
    events: list[dict[str, Any]] = []
    for back in range(min(_HISTORY_DAYS, now.day - 1), 0, -1):
        day = midnight - timedelta(days=back)
        for i in range(20):
            team = "search" if i % 20 < 9 else "chat"
            events.append(_event(rng, day + timedelta(minutes=30 + 72 * i), len(events), team, 0.05))
    start = max(midnight, now - timedelta(hours=6))
    span = now - start
    for i in range(34):
        team = "search" if i % 34 < 24 else "chat"
        events.append(_event(rng, start + span * i / 34, len(events), team, 0.2333 if team == "search" else 0.05))
    lines = [json.dumps(e, ensure_ascii=False) for e in events]
    lines.append(json.dumps({"ts": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "model": "openai/gpt-4o-mini", "cost": -1}))
    lines.append("this line is not JSON")
    return lines


def write_demo(folder: Path, now: datetime) -> Path:
    """Write ``folder/usage.jsonl`` for ``now`` and remove the demo's state ``folder/.guardd``; return the ledger."""
    state = folder / ".guardd"
    if state.is_dir():
        shutil.rmtree(state)
    ledger = folder / "usage.jsonl"
    ledger.write_text("\n".join(demo_lines(now)) + "\n", encoding="utf-8")
    return ledger


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    ledger = write_demo(Path(args[0] if args else "examples"), datetime.now(UTC))
    print(f"wrote the demo ledger {ledger} (times relative to now)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
