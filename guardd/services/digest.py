"""The daily digest at ``alerts.digest_at``: one summary of every budget, sent once per local date.

Idempotent: a marker holds the local date of the last digest, set in the same transaction as the digest's outbox
rows, so a job that fires twice (a DST fold, a restart at 09:00) sends once, and a failed write sends it later.
"""

from __future__ import annotations

from datetime import datetime

from guardd.config import Config
from guardd.core.money import format_human
from guardd.services.jobs import Engine, routes
from guardd.store.api import Message, StateAPI


async def send_digest(config: Config, engine: Engine, state: StateAPI, now: datetime) -> bool:
    """Enqueue the digest for today (local date) unless it was already sent; return True when enqueued."""
    local_date = now.astimezone(config.zone).date().isoformat()
    if engine.dry_run or await state.marker("digest") == local_date:
        return False
    evaluations = await engine.evaluator.evaluate_all(now)
    lines = [f"Daily summary for {local_date} ({config.settings.guardd.timezone})", ""]
    for ev in evaluations:
        parts = [f"{w.window.name} {w.spent_text}/{format_human(w.limit)} ({w.percent_text})" for w in ev.windows]
        lines.append(f"- **{ev.name}** [{ev.state}]: " + ", ".join(parts))
    if not evaluations:
        lines.append("No budgets are configured.")
    title = f"guardd daily summary {local_date}"
    body = "\n".join(lines)
    messages = [
        Message(None, "info", title, body, c.index, c.display) for c in engine.channels if routes(c, "info", None)
    ]
    # The marker commits with the outbox rows: a failure between the two cannot lose the digest.
    if not await state.notify_once("digest", local_date, messages, None, now):
        return False
    await engine.deliver(now)
    return True
