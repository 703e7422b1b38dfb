"""``guardd quarantine``: the ledger lines that were set aside, newest first (contract §4, §7)."""

from __future__ import annotations

import fnmatch
import json
import os
from argparse import Namespace
from datetime import UTC, datetime
from typing import Any

from guardd.store.api import SetAside

LIMIT = 100_000


def matches(row: SetAside, ledger: str | None) -> bool:
    """Whether ``row`` comes from ``ledger``: a file path (as given or absolute) or a glob such as a ledger's own."""
    if ledger is None:
        return True
    return row.path in (ledger, os.path.abspath(ledger)) or fnmatch.fnmatchcase(row.path, os.path.abspath(ledger))


def row_json(row: SetAside, tz: Any) -> dict[str, Any]:
    return {
        "file": row.path,
        "offset": row.offset,
        "reason": row.reason,
        "excerpt": row.excerpt,
        "at": row.at.astimezone(tz).isoformat(timespec="seconds"),
    }


def row_text(row: SetAside, tz: Any) -> str:
    when = row.at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    excerpt = row.excerpt if len(row.excerpt) <= 60 else row.excerpt[:59] + "…"
    return f"{when}  {row.path}:{row.offset}  {row.reason}  {excerpt}"


async def cmd_quarantine(args: Namespace) -> int:
    from guardd.cli.commands import opened
    from guardd.services import report

    async with opened(args, readonly=True) as ctx:
        tz = ctx.config.zone
        since = report.parse_when(args.since, tz, datetime.now(UTC)) if args.since else None
        rows = [r for r in await ctx.events.set_aside(since, LIMIT) if matches(r, args.ledger)]
    if args.json:
        print(json.dumps([row_json(r, tz) for r in rows], indent=2))
    elif not rows:
        print("no lines set aside" + (f" from {args.ledger}" if args.ledger else ""))
    else:
        for row in rows:
            print(row_text(row, tz))
        print(f"{len(rows)} line{'s' if len(rows) != 1 else ''} set aside")
    return 0
