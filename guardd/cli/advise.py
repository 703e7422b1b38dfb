"""``guardd advise``: what a budget's spend would have cost on its ``suggest`` models (contract §11)."""

from __future__ import annotations

import json
from argparse import Namespace
from datetime import UTC, datetime
from typing import Any

from guardd.core.advice import AdviceRow
from guardd.core.budgets import Budget
from guardd.core.money import format_human, format_json
from guardd.core.periods import window_at
from guardd.errors import UsageError


def advice_json(budget: Budget, since: datetime, until: datetime, rows: list[AdviceRow], tz: Any) -> dict[str, Any]:
    """The ``guardd advise --json`` document: money as decimal strings; an unpriced alternative has null cost and
    saving."""
    return {
        "budget": budget.name,
        "since": since.astimezone(tz).isoformat(),
        "until": until.astimezone(tz).isoformat(),
        "rows": [
            {
                "model": row.usage.model,
                "spent": format_json(row.usage.spent),
                "prompt_tokens": row.usage.prompt,
                "completion_tokens": row.usage.completion,
                "cached_tokens": row.usage.cached,
                "reasoning_tokens": row.usage.reasoning,
                "events": row.usage.events,
                "unpriced_events": row.usage.unpriced,
                "alternatives": [
                    {
                        "model": alt.model,
                        "cost": None if alt.cost is None else format_json(alt.cost),
                        "saving": None if alt.saving is None else format_json(alt.saving),
                        "saving_percent": alt.saving_percent,
                        "unpriced": alt.unpriced,
                    }
                    for alt in row.alternatives
                ],
            }
            for row in rows
        ],
    }


def advice_text(doc: dict[str, Any]) -> str:
    lines = [f"advice for {doc['budget']} from {doc['since']} to {doc['until']}", ""]
    if not doc["rows"]:
        lines.append("  no spend in this range")
    for row in doc["rows"]:
        spent = format_human(_pico(row["spent"]))
        lines.append(
            f"  {row['model']}: {spent} ({row['prompt_tokens']:,} prompt, {row['completion_tokens']:,}"
            f" completion tokens)"
        )
        for alt in row["alternatives"]:
            if alt["unpriced"]:
                lines.append(f"    on {alt['model']:<40} unpriced: not in the OpenRouter catalog")
                continue
            percent = "" if alt["saving_percent"] is None else f" ({-alt['saving_percent']:+.0f}%)"
            lines.append(f"    on {alt['model']:<40} {format_human(_pico(alt['cost'])):>10}{percent}")
    return "\n".join(lines)


def _pico(text: str) -> int:
    from guardd.core.money import parse_money

    return parse_money(text)


async def cmd_advise(args: Namespace) -> int:
    from guardd.cli.commands import _budgets, opened
    from guardd.services import report
    from guardd.services.advice import budget_advice

    async with opened(args, readonly=True) as ctx:
        tz, now = ctx.config.zone, datetime.now(UTC)
        budgets = [b for b in _budgets(ctx, args.budget) if b.suggest or args.budget]
        if args.budget and not budgets[0].suggest:
            raise UsageError(f"budget {args.budget!r} has no suggest models to price its spend on")
        if not budgets:
            raise UsageError("no budget has suggest models (budgets[].suggest)")
        if args.json and len(budgets) > 1:
            names = ", ".join(b.name for b in budgets)
            raise UsageError(f"several budgets have suggest models ({names}); name one with --budget for --json")
        since = report.parse_when(args.since, tz, now) if args.since else None
        until = report.parse_when(args.until, tz, now) if args.until else None
        start = since or window_at("monthly", tz, now, ctx.config.weekday).start
        end = until or now
        if end <= start:
            raise UsageError("--until must be later than --since")
        stats = ctx.stats
        docs = [
            advice_json(b, start, end, await budget_advice(ctx.evaluator, stats, b, start, end), tz) for b in budgets
        ]
    if args.json:
        print(json.dumps(docs[0], indent=2))
    else:
        print("\n\n".join(advice_text(doc) for doc in docs))
        print("\nToken counts cover whole UTC hours; cached prompt tokens are priced at the cache-read price.")
    return 0
