"""Turning an announcement into a message a person can act on: a short title (fits a Slack line and a mail
subject) and a markdown body with the numbers, the forecast, what the switch did and when the window resets."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from guardd.core.alerts import Announcement, Change
from guardd.core.evaluate import BudgetEvaluation
from guardd.core.health import HealthEvaluation
from guardd.core.money import format_human
from guardd.core.periods import format_duration
from guardd.core.switch import Scope

_VERB = {
    "trip": "TRIPPED",
    "repeat": "STILL TRIPPED",
    "critical": "OVER LIMIT",
    "threshold": "crossed",
    "forecast": "forecast over limit",
    "stale": "STALE",
    "fresh": "fresh again",
    "resolved": "released",
    "reset": "window reset",
    "spike": "spending spike",
    "calm": "spike over",
}


def _line(change: Change) -> str:
    if change.what in ("stale", "fresh", "reset", "spike", "calm"):
        return f"- **{change.window}**: {change.detail}"
    head = f"- **{change.window}**: {format_human(change.spent)} of {format_human(change.limit)} ({change.percent:g}%)"
    if change.what == "threshold" and change.threshold is not None:
        return f"{head} — crossed {change.threshold:g}%"
    if change.what in ("trip", "repeat"):
        return f"{head} — kill-switch tripped" + (f" at {change.threshold:g}%" if change.threshold else "")
    if change.what == "critical":
        return f"{head} — over the limit (alert only, the switch does not trip)"
    if change.what == "forecast":
        return f"{head} — {change.detail}"
    return f"{head} — {change.detail or change.what}"


def render(
    ann: Announcement,
    evaluation: BudgetEvaluation | None,
    scope: Scope | None,
    tz: ZoneInfo,
    top: list[tuple[str, int]] | None = None,
    advice: str | None = None,
) -> tuple[str, str]:
    """Return ``(title, body)`` for ``ann``; ``advice`` is the budget's one advice line (contract §11)."""
    first = ann.changes[0]
    verb = _VERB.get(first.what, first.what)
    amounts = f"{format_human(first.spent)} of {format_human(first.limit)}"
    if first.what == "threshold" and first.threshold is not None:
        title = (
            f"guardd {ann.severity.upper()}: {ann.budget} crossed {first.threshold:g}% of {first.window} ({amounts})"
        )
    elif first.what == "spike":
        title = f"guardd {ann.severity.upper()}: {ann.budget} spending spike — {first.detail}"
    elif first.what in ("trip", "repeat", "critical", "forecast"):
        title = f"guardd {ann.severity.upper()}: {ann.budget} {verb} — {first.window} {first.percent:g}% ({amounts})"
    else:
        title = f"guardd: {ann.budget} {verb} ({first.window})"
    lines = [f"Budget **{ann.budget}** ({ann.severity})", ""]
    lines += [_line(c) for c in ann.changes]
    if evaluation is not None:
        lines.append("")
        for w in evaluation.windows:
            resets = w.window.resets
            reset = f"resets {resets.astimezone(tz).strftime('%Y-%m-%d %H:%M %Z')}" if resets else "sliding, no reset"
            forecast = f", forecast {format_human(w.forecast.projected)}" if w.forecast else ""
            lines.append(
                f"- {w.window.name}: {w.spent_text} / {format_human(w.limit)} ({w.percent_text}),"
                f" state {w.state}{forecast}; {reset}"
            )
    if scope is not None and scope.tripped:
        until = scope.until.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z") if scope.until else "manual release"
        lines += ["", f"Kill-switch: **tripped** ({scope.reason}); release: {until}."]
    if top:
        lines += ["", "Top spend in the window:"] + [f"- {name}: {format_human(cost)}" for name, cost in top]
    if advice:
        lines += ["", f"Advice — the same tokens on the suggested models: {advice}"]
    if ann.silenced:
        lines += ["", "(silenced: recorded, not sent)"]
    return title[:250], "\n".join(lines)


def render_health(ann: Announcement, ev: HealthEvaluation) -> tuple[str, str]:
    """Return ``(title, body)`` for a health rule's announcement (firing, repeat or resolved)."""
    change = ann.changes[0]
    window = format_duration(ev.rule.window)
    if change.what == "resolved":
        title = f"guardd: health {ann.budget} resolved — requests are healthy again ({window})"
    else:
        still = "still " if change.what == "repeat" else ""
        title = f"guardd {ann.severity.upper()}: health {ann.budget} {still}firing — {change.detail}"
    lines = [f"Health rule **{ann.budget}** ({ann.severity}), over the last {window}:", ""]
    lines += [f"- {text}" for text in ev.firing] or ["- no condition fires"]
    rate = "n/a" if ev.error_rate is None else f"{ev.error_rate:g}%"
    p95 = "n/a" if ev.latency_p95_ms is None else f"{ev.latency_p95_ms:g} ms"
    lines += [
        "",
        f"Requests {ev.requests}, errors {ev.errors} ({rate}), HTTP 429 {ev.rate_limited}, p95 latency {p95}.",
        "Health rules never trip the kill-switch.",
    ]
    if ann.silenced:
        lines += ["", "(silenced: recorded, not sent)"]
    return title[:250], "\n".join(lines)
