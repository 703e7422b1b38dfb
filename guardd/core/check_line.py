"""``guardd check``'s verdict (contract §4, §7): one line with perfdata and a monitoring plugin's exit code, from
what status gathers. Pure: every input is passed in; the CLI gathers them (:mod:`guardd.cli.commands`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from guardd.core.money import format_perf

if TYPE_CHECKING:
    from guardd.core.evaluate import BudgetEvaluation
    from guardd.core.health import HealthEvaluation
    from guardd.core.never_matched import MatchGap


def _by_hand(ev: BudgetEvaluation) -> str:
    """`` (released by hand by alice)``: why a budget's state is not what its windows alone would make it."""
    if ev.override is None:
        return ""
    return f" ({ev.override.state} by hand by {ev.override.by})"


def _lower_bounds(ev: BudgetEvaluation) -> dict[str, list[str]]:
    """The names of ``ev``'s windows whose known figure is only a lower bound (``partial``), by the reason given
    (one reason, such as the account's keys, often holds for every window). A window a source's part is missing
    from (``unknown``) is stale, which says more."""
    out: dict[str, list[str]] = {}
    for w in ev.windows:
        if w.partial and w.spent is not None and not w.unknown:
            out.setdefault(w.partial_reason or "the source covers only part of the window", []).append(w.window.name)
    return out


def check_result(
    evaluations: list[BudgetEvaluation],
    switch_tripped: bool,
    health: list[HealthEvaluation] | None = None,
    set_aside: dict[str, int] | None = None,
    *,
    unreadable: list[dict[str, str]] | None = None,
    failing_notifiers: dict[str, str | None] | None = None,
    unmatched: list[str] | None = None,
    warnings: list[str] | None = None,
    missed: list[dict[str, str]] | None = None,
    never_matched: dict[str, MatchGap | None] | None = None,
) -> tuple[int, str]:
    """Return the monitoring-plugin exit code and line: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.

    Perfdata per window: ``'budget_window'=spent;warn;limit`` in USD (warn = the lowest ``warn_at``; ``U`` for a
    spend not known). WARNING: a firing health rule (contract §11, never more); a ledger file that set lines aside
    recently (``set_aside``: lines per file, contract §7); a window holding events that could not be priced (its
    figure is a lower bound, contract §2); a window whose figure is ``partial`` for the reason it gives (a lower
    bound too: OpenRouter without a management key sees only the polled keys of an account, or guardd has not
    watched the whole window; a window a source's part is missing from is stale instead); a notifier whose last
    delivery failed (``failing_notifiers``: display URL -> last error; its alerts wait, and with one notifier
    nobody hears of anything); a ledger pattern that
    matches no file and never did (``unmatched``: a typo, or no client has written yet); each of ``warnings`` as
    it is worded (on a shared store: the cluster's warnings, this host's switch file out of step; a daemon running
    an older configuration than the file; an exact ledger path read before and gone now); a rotated
    ledger file that may hold lines never counted (``missed``: every figure may be low by what it holds); a budget
    whose match selects nothing ever stored (``never_matched``) through a label key no event carried or a model,
    provider or key glob that matched none seen — a label value never seen is only a note in the line (a budget
    set up ahead for a team that has not spent yet). UNKNOWN: a ledger file the daemon cannot read
    (``unreadable``: its spend is not in any figure), a stale budget. The inputs come from
    :mod:`guardd.services.status` (``ledger_errors``, ``failing_notifiers``, ``unmatched_ledgers``,
    ``ledger_warnings``) and ``Evaluator.gaps``.
    """
    perf: list[str] = []
    codes: set[int] = set()
    problems: list[str] = []
    for ev in evaluations:
        code = {"ok": 0, "warning": 1, "critical": 2, "tripped": 2, "stale": 3}[ev.state]
        codes.add(code)
        if code:
            problems.append(f"{ev.name} {ev.state}" + _by_hand(ev))
        for w in ev.windows:
            if w.unpriced_events and code < 2:  # its figure is a lower bound: said, never a silent OK
                codes.add(1)
                n = w.unpriced_events
                problems.append(f"{ev.name} {w.window.name}: {n} unpriced event{'s' if n != 1 else ''} not counted")
        lower = _lower_bounds(ev) if code < 2 else {}
        for reason, names in lower.items():  # a lower bound that proves nothing over: said, never a silent OK
            codes.add(1)
            problems.append(f"{ev.name} {', '.join(names)}: a lower bound ({reason})")
        for w in ev.windows:
            warn_pct = min(ev.budget.warn_at, default=None)
            warn = format_perf(w.limit * int(warn_pct * 10) // 1000) if warn_pct is not None else ""
            label = f"{ev.name}_{w.window.name}".replace("'", "")
            value = format_perf(w.spent) if w.known and w.spent is not None else "U"  # U: plugin API "unknown"
            perf.append(f"'{label}'={value};{warn};{format_perf(w.limit)};0")
    for hev in health or []:
        if hev.state == "warning":
            codes.add(1)
            problems.append(f"health {hev.name}: {'; '.join(hev.firing)}")
    for path, count in sorted((set_aside or {}).items()):
        codes.add(1)
        problems.append(f"{count} line{'s' if count != 1 else ''} set aside from {path} in the last 24 h")
    for entry in unreadable or []:
        codes.add(3)
        problems.append(f"ledger file {entry['path']} cannot be read ({entry['error']}): its spend is not counted")
    for url, error in sorted((failing_notifiers or {}).items()):
        codes.add(1)
        problems.append(f"notifier {url} failing ({error or 'no detail'}): its alerts are not delivered")
    for pattern in unmatched or []:
        codes.add(1)
        problems.append(f"ledger {pattern} matches no file (a typo in the path, or nothing written yet)")
    for text in warnings or []:
        codes.add(1)
        problems.append(text)
    for entry in missed or []:
        codes.add(1)
        problems.append(f"rotated ledger file {entry['path']}: {entry['warning']}")
    notes = []
    for name, gap in (never_matched or {}).items():
        if gap is not None and gap.level == "warning":
            codes.add(1)
            problems.append(f"{name} matches nothing ever stored ({gap.message})")
        elif gap is not None:
            notes.append(f"note: {name} matched nothing stored yet ({gap.message})")
    if switch_tripped:
        codes.add(2)
        problems.append("kill-switch tripped")
    # CRITICAL outranks UNKNOWN (a trip is certain even when some data is stale); UNKNOWN outranks WARNING.
    worst = 2 if 2 in codes else 3 if 3 in codes else 1 if 1 in codes else 0
    word = ("OK", "WARNING", "CRITICAL", "UNKNOWN")[worst]
    summary = ", ".join(problems) if problems else f"{len(evaluations)} budget(s) within limits"
    summary = "; ".join([summary, *notes])
    return worst, f"GUARDD {word} - {summary} | {' '.join(perf)}".rstrip(" |")
