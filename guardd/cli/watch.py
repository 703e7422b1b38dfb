"""``guardd status --watch``: the status, redrawn in place every ``--every`` (default 2s) until Ctrl-C.

Each refresh opens the state database afresh and computes the same document as ``guardd status --json``, so the
view keeps working while the daemon restarts (or is down: it says so at the top, from the switch file's
heartbeat), and a refresh that fails shows its error instead of ending the view. Reading never holds a
transaction between refreshes. Ctrl-C ends it with exit code 0.
"""

from __future__ import annotations

import asyncio
from argparse import Namespace
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from guardd.cli.render import spent_text
from guardd.core.money import format_human, parse_money
from guardd.core.periods import parse_duration
from guardd.errors import UsageError

DEFAULT_EVERY = timedelta(seconds=2)
_STYLE = {"ok": "green", "warning": "yellow", "critical": "red", "tripped": "bold red", "stale": "magenta"}


def _money(text: str | None) -> str:
    return "-" if text is None else format_human(parse_money(text))


def _bar(percent: float | None, width: int = 24) -> Text:
    if percent is None:
        return Text("?" * width, style="magenta")  # the spend is not known: never an empty (0%) bar
    filled = max(0, min(width, round(percent / 100 * width)))
    style = "red" if percent >= 100 else "yellow" if percent >= 80 else "green"
    return Text("█" * filled, style=style) + Text("·" * (width - filled), style="dim")


def _until(text: str | None, now: datetime) -> str:
    """Time left until an RFC 3339 moment, as ``3h 12m`` (``now`` when passed, ``-`` when unknown)."""
    if not text:
        return "-"
    left = datetime.fromisoformat(text) - now
    if left <= timedelta(0):
        return "now"
    minutes = int(left.total_seconds() // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    return f"{days}d {hours}h" if days else f"{hours}h {mins:02d}m" if hours else f"{mins}m"


def render(doc: dict[str, Any] | None, error: str | None, now: datetime, every: timedelta) -> RenderableType:
    """Return the screen for one refresh: the guard's liveness, budgets, health rules and the switch."""
    parts: list[RenderableType] = []
    when = now.astimezone().strftime("%H:%M:%S")
    header = Text(f"guardd status --watch · {when} · every {every.total_seconds():g}s · Ctrl-C to quit", "bold")
    parts.append(header)
    if error is not None:
        parts.append(Panel(Text(f"cannot read the state: {error}", "bold red"), title="state unreadable"))
    if doc is None:
        return Group(*parts)
    guard = doc.get("guard") or {}
    if not guard.get("alive", True):
        heartbeat = guard.get("heartbeat_at") or "never"
        reason = guard.get("reason") or ""
        parts.append(
            Panel(
                Text(f"GUARD DOWN: guardd is not running (last heartbeat {heartbeat}) {reason}", "bold white on red"),
                title="guard",
            )
        )
    table = Table(expand=True, show_edge=False, pad_edge=False)
    for column in ("budget", "window", "", "%", "spent", "limit", "burn/h", "forecast", "to limit", "state"):
        table.add_column(column, justify="right" if column in ("%", "spent", "limit", "burn/h", "forecast") else "left")
    for b in doc.get("budgets", []):
        first = True
        for w in b["windows"]:
            state = w["state"]
            table.add_row(
                Text(b["name"], style=_STYLE.get(b["state"], "")) if first else "",
                w["window"],
                _bar(w["percent"]),
                "?" if w["percent"] is None else f"{w['percent']:.1f}",
                spent_text(w),
                _money(w["limit"]),
                _money(w.get("burn_rate_per_hour")),
                _money(w["forecast"]),
                _until(w.get("limit_at"), now),
                Text(state.upper(), style=_STYLE.get(state, "")),
            )
            first = False
        spike = b.get("spike")
        if spike:
            table.add_row(
                "",
                f"spike:{spike['window']}",
                "",
                "",
                _money(spike["recent"]),
                f"{spike['factor']:g}×{_money(spike['baseline_mean'])}",
                "",
                "",
                "",
                Text(spike["state"].upper(), style=_STYLE.get(spike["state"], "")),
            )
    if not doc.get("budgets"):
        parts.append(Text("no budgets configured"))
    else:
        parts.append(table)
    if doc.get("health"):
        health = Table(expand=True, show_edge=False, pad_edge=False)
        for column in ("health rule", "window", "requests", "errors", "p95", "429s", "state", "firing"):
            health.add_column(column)
        for h in doc["health"]:
            health.add_row(
                h["name"],
                h["window"],
                str(h["requests"]),
                "-" if h["error_rate"] is None else f"{h['error_rate']:g}%",
                "-" if h["latency_p95_ms"] is None else f"{h['latency_p95_ms']:g} ms",
                str(h["rate_limited"]),
                Text(h["state"].upper(), style=_STYLE.get(h["state"], "dim")),
                "; ".join(h["firing"]),
            )
        parts.append(health)
    parts.append(_switch(doc.get("killswitch")))
    return Group(*parts)


def _switch(switch: dict[str, Any] | None) -> RenderableType:
    if not switch:
        return Text("kill-switch: no file yet (the daemon has not run)", "yellow")
    if "error" in switch:
        return Text(f"kill-switch: UNREADABLE ({switch['error']})", "bold red")
    tripped = [(n, s) for n, s in (switch.get("scopes") or {}).items() if s.get("tripped")]
    if not tripped:
        return Text(f"kill-switch: open (heartbeat {switch.get('heartbeat_at')})", "green")
    lines = [Text(f"kill-switch: TRIPPED (heartbeat {switch.get('heartbeat_at')})", "bold red")]
    for name, scope in tripped:
        lines.append(Text(f"  {name}: {scope.get('reason')} until {scope.get('until') or 'manual release'}", "red"))
    return Group(*lines)


async def _document(args: Namespace) -> dict[str, Any]:
    from guardd.cli.commands import _budgets, opened
    from guardd.services import status

    async with opened(args) as ctx:
        now = datetime.now(UTC)
        return await status.document(ctx.config, ctx.stores, ctx.evaluator, now, _budgets(ctx, args.budget))


async def watch(args: Namespace, console: Console | None = None) -> int:
    """Redraw the status until Ctrl-C; return 0."""
    try:
        every = parse_duration(args.every) if args.every else DEFAULT_EVERY
    except ValueError as exc:
        raise UsageError(f"--every: {exc}") from None
    if every <= timedelta(0):
        raise UsageError("--every must be longer than 0s")
    console = console or Console()
    doc: dict[str, Any] | None = None
    with Live(console=console, auto_refresh=False, screen=False, transient=False) as live:
        try:
            while True:
                error = None
                try:
                    doc = await _document(args)
                except UsageError:
                    raise
                except Exception as exc:  # the daemon restarting, a migration, a locked database: say so, go on
                    error = str(exc) or type(exc).__name__
                live.update(render(doc, error, datetime.now(UTC), every), refresh=True)
                await asyncio.sleep(every.total_seconds())
        except (KeyboardInterrupt, asyncio.CancelledError):
            pass
    return 0
