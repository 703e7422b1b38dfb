"""Human-readable forms of ``status`` and ``report`` (the JSON forms are the contract; these are for eyes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from guardd.core.money import format_human, parse_money


def switch_lines(switch: dict[str, Any], zone: str) -> list[str]:
    """The kill-switch document (contract §3) for people: open or tripped, each tripped scope and why, overrides."""
    tripped = [(n, s) for n, s in switch.get("scopes", {}).items() if s.get("tripped")]
    state = "TRIPPED" if tripped or switch.get("tripped") else "open"
    lines = [f"kill-switch: {state} (heartbeat {when(switch.get('heartbeat_at'), zone)})"]
    for name, scope in tripped:
        until = when(scope.get("until"), zone) if scope.get("until") else "manual release"
        lines.append(f"  {name}: {scope.get('reason')} until {until}")
    for name, scope in switch.get("scopes", {}).items():
        if scope.get("override"):
            ov = scope["override"]
            until = when(ov["until"], zone) if ov.get("until") else "changed by hand"
            lines.append(
                f"  {name}: override {ov['state']} by {ov['by']} until {until}: {ov.get('reason') or 'no reason'}"
            )
    return lines


def plural(count: int, noun: str) -> str:
    """``1 event``, ``2 events``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def when(text: str | None, zone: str) -> str:
    """An RFC 3339 time for people: in the configured ``zone``, to the second."""
    if not text:
        return "never"
    try:
        return datetime.fromisoformat(text).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError):  # not a time, or none in that zone (year 9999 east of UTC)
        return text


def last_event(ledger: dict[str, Any], zone: str) -> str:
    """A ledger's last event time for people; a stored time no date holds (an older guardd, review F19) by its
    number."""
    if ledger.get("last_event_ms") is not None and ledger.get("last_event_at") is None:
        return f"out of range (Unix ms {ledger['last_event_ms']})"
    return when(ledger.get("last_event_at"), zone)


def _bar(percent: float | None, width: int = 20) -> str:
    if percent is None:
        return "?" * width  # not known: never drawn as an empty (0%) bar
    filled = max(0, min(width, round(percent / 100 * width)))
    return "█" * filled + "·" * (width - filled)


def _money(text: str | None) -> str:
    return "-" if text is None else format_human(parse_money(text))


def spent_text(window: dict[str, Any]) -> str:
    """A window's spend for people: ``$1.20``; ``at least $1.20`` when a source's part is not known (its
    ``unknown_sources``); ``unknown`` when none is (``spent`` null) — never $0.00 for what guardd does not know."""
    if window.get("spent") is None:
        return "unknown"
    return ("at least " if window.get("unknown_sources") else "") + _money(window["spent"])


def window_notes(window: dict[str, Any]) -> str:
    """``  (openrouter unknown)`` for a window a source's figure is missing from, else ``  (partial)`` or nothing."""
    if window.get("unknown_sources"):
        return f"  ({', '.join(window['unknown_sources'])} unknown)"
    return "  (partial)" if window.get("partial") else ""


def partial_lines(windows: list[dict[str, Any]]) -> list[str]:
    """``  partial (a lower bound) daily, weekly: <why>``, once per reason, under a budget's windows: what
    ``(partial)`` on a window's line stands for (a source's part unknown is said by ``unknown`` already)."""
    reasons: dict[str, list[str]] = {}
    for w in windows:
        if w.get("partial") and w.get("partial_reason") and not w.get("unknown_sources"):
            reasons.setdefault(w["partial_reason"], []).append(w["window"])
    return [f"  partial (a lower bound) {', '.join(names)}: {why}" for why, names in reasons.items()]


def _resets(window: dict[str, Any]) -> str:
    """``resets Wed 02 Dec 00:00`` (local), or for a rolling window, which never resets, ``sliding``."""
    if str(window.get("window", "")).startswith("rolling:"):
        return "sliding (no reset: each spend counts for the window's length)"
    return "resets " + datetime.fromisoformat(window.get("resets") or window["end"]).strftime("%a %d %b %H:%M")


def _held(budget: dict[str, Any], switch: dict[str, Any]) -> str:
    """`` — the kill-switch trips it: <why>`` for a budget tripped though none of its windows is (stale data with
    on_stale closed, a latched trip); the override line says it for a hand decision."""
    if not budget.get("tripped") or budget.get("override") or any(w["state"] == "tripped" for w in budget["windows"]):
        return ""
    scope = (switch.get("scopes") or {}).get(budget["name"]) or {}
    return f" — the kill-switch trips it: {scope.get('reason') or 'see the kill-switch below'}"


def _by_hand(budget: dict[str, Any], zone: str) -> str:
    """`` — released by hand by alice until …: reason``: the override that holds a budget's switch scope."""
    ov = budget.get("override")
    if not ov:
        return ""
    until = when(ov["until"], zone) if ov.get("until") else "changed by hand"
    return f" — {ov['state']} by hand by {ov['by']} until {until}: {ov.get('reason') or 'no reason'}"


def status_text(doc: dict[str, Any]) -> str:
    zone = doc["timezone"]

    def local(text: str | None) -> str:
        return when(text, zone)

    lines = []
    guard = doc.get("guard") or {}
    if not guard.get("alive", True):
        heartbeat = guard.get("heartbeat_at")
        last = local(heartbeat) if heartbeat else "unknown"
        lines += [f"GUARD DOWN: guardd is not running (last heartbeat {last}): {guard.get('reason')}", ""]
    drift = (doc.get("config") or {}).get("warning")
    if drift:
        lines += [f"CONFIGURATION NOT IN FORCE: {drift}", ""]
    store = doc.get("store") or {}
    if store.get("ok") is False:
        lines += [f"STORE FAILING since {local(store.get('since'))}: {store.get('error')} (guardd keeps running)", ""]
    if doc.get("ledger_errors"):
        count = len(doc["ledger_errors"])
        lines += [f"LEDGERS UNREADABLE: {count} ledger file(s) cannot be read; their spend is not counted", ""]
    if doc.get("ledger_warnings"):
        count = len(doc["ledger_warnings"])
        lines += [f"LEDGER LINES MAY BE MISSING: {count} rotated ledger file(s) could not be read", ""]
    key_warnings = (doc.get("openrouter") or {}).get("key_warnings") or []
    if key_warnings:
        lines += [*(f"OPENROUTER KEY WARNING: {warning}" for warning in key_warnings), ""]
    cluster = doc.get("cluster")
    if cluster:
        lines += [f"CLUSTER WARNING: {warning}" for warning in cluster.get("warnings", [])]
        names = ", ".join(i["name"] for i in cluster.get("instances", []) if i.get("running", True))
        lines += [f"shared store: leader {cluster.get('leader') or 'none'}; instances {names or 'none'}", ""]
    lines += [f"guardd status at {local(doc['generated_at'])} ({zone})", ""]
    if not doc["budgets"]:
        lines.append("no budgets configured")
    for b in doc["budgets"]:
        stale = f" — stale: {b['stale_reason']}" if b.get("stale") else ""
        held = _held(b, doc.get("killswitch") or {})
        lines.append(f"{b['name']}  [{b['state'].upper()}]  source={b['source']}{stale}{_by_hand(b, zone)}{held}")
        gap = b.get("never_matched")
        if gap:  # a typo in the match is $0 and OK forever: said under the budget's name
            said = "MATCHES NOTHING EVER STORED" if gap["level"] == "warning" else "matched nothing stored yet"
            lines.append(f"  {said}: {gap['message']}")
        for w in b["windows"]:
            reset = _resets(w)
            forecast = f"  forecast {_money(w['forecast'])}" if w["forecast"] else ""
            unpriced = f"  {plural(w['unpriced_events'], 'unpriced event')}" if w["unpriced_events"] else ""
            partial = window_notes(w)
            state = w["state"]
            if state == "warning" and not w.get("thresholds_crossed") and w.get("forecast"):
                state = "warning (forecast)"  # no threshold crossed yet: the projection to the window's end did it
            pct = "     ?%" if w["percent"] is None else f"{w['percent']:6.1f}%"
            lines.append(
                f"  {w['window']:<12} {_bar(w['percent'])} {pct}  {spent_text(w):>10} of "
                f"{_money(w['limit']):<9} {state:<8} {reset}{forecast}{unpriced}{partial}"
            )
        lines += partial_lines(b["windows"])
        spike = b.get("spike")
        if spike:
            lines.append(
                f"  spike        {spike['state']:<8} last {spike['window']} {_money(spike['recent'])}, mean"
                f" {_money(spike['baseline_mean'])} per {spike['window']} over {spike['baseline']}"
                f" (factor {spike['factor']:g})"
            )
        lines.append("")
    for h in doc.get("health", []):
        rate = "-" if h["error_rate"] is None else f"{h['error_rate']:g}%"
        p95 = "-" if h["latency_p95_ms"] is None else f"{h['latency_p95_ms']:g} ms"
        lines.append(
            f"health {h['name']}  [{h['state'].upper()}]  last {h['window']}: {h['requests']} requests,"
            f" errors {rate}, p95 {p95}, 429s {h['rate_limited']}"
        )
        lines += [f"  firing: {text}" for text in h["firing"]]
    if doc.get("health"):
        lines.append("")
    switch = doc.get("killswitch") or {}
    if "error" in switch:
        lines.append(f"kill-switch: UNREADABLE ({switch['error']})")
    elif not switch:
        lines.append("kill-switch: no file yet (the daemon has not run)")
    else:
        lines += switch_lines(switch, zone)
    for s in doc.get("silences", []):
        lines.append(f"silence {s['id']}: {s['budget']} until {local(s['until'])} ({s['reason'] or 'no reason'})")
    if doc.get("ledgers") or doc.get("ledger_errors") or doc.get("unmatched_ledgers") or doc.get("ledger_warnings"):
        lines += ["", "ledgers:"]
        for pattern in doc.get("unmatched_ledgers") or []:
            lines.append(f"  {pattern}: MATCHES NO FILE (a typo in the path, or nothing written yet)")
        for gone in doc.get("missing_ledgers") or []:
            lines.append(f"  {gone['path']}: GONE ({gone['reason']}): nothing written there now is counted")
        for bad in doc.get("ledger_errors") or []:
            lines.append(f"  {bad['path']}: CANNOT BE READ ({bad['error']}): its spend is not counted")
        for missed in doc.get("ledger_warnings") or []:
            lines.append(f"  {missed['path']}: ROTATED, NOT READ: {missed['warning']}")
        for lg in doc.get("ledgers") or []:
            recent = lg.get("quarantined_24h") or 0
            aside = f"{lg['quarantined']} set aside" + (
                f" ({recent} in the last 24 h: guardd quarantine)" if recent else ""
            )
            lines.append(
                f"  {lg['path']}: {plural(lg['events'], 'event')}, {aside}, "
                f"offset {lg['offset']}/{lg['size']}, last event {last_event(lg, zone)}"
            )
    remote = doc.get("openrouter")
    if remote:
        stale = " STALE" if remote.get("stale") else ""
        lines += [
            "",
            f"openrouter{stale}: balance {_money(remote.get('balance'))}, fetched {local(remote.get('fetched_at'))}"
            + (f" — {remote.get('error')}" if remote.get("error") else ""),
        ]
        for key in remote.get("keys", []):
            lines.append(
                f"  key {key['key']}: today {_money(key.get('usage_daily'))}, limit {_money(key.get('limit'))}"
                + (" DISABLED" + (" by guardd" if key.get("disabled_by_guardd") else "") if key.get("disabled") else "")
            )
    if doc.get("notifiers"):
        lines += ["", "notifiers:"]
        for n in doc["notifiers"]:
            error = str(n["last_error"] or "").removeprefix(f"{n['url']}: ")  # the URL is said once, first
            health = "ok" if n["ok"] else f"FAILING since {local(n['failing_since'])}: {error}"
            lines.append(f"  {n['url']}: {health}")
    else:
        lines += ["", "notifiers: none (alerts go to the log)"]
    if doc.get("outbox_pending"):
        lines.append(f"outbox: {doc['outbox_pending']} message(s) waiting to be delivered")
    for drop in doc.get("dropped_alerts") or []:
        lines.append(f"outbox: {drop['text']} at {local(drop['at'])} ({drop['title']})")
    return "\n".join(lines)


def report_text(doc: dict[str, Any]) -> str:
    """Spend per group, with each group's requests, errors, 429s and last use (a key pool's usage view)."""
    since, until = when(doc["since"], doc["timezone"]), when(doc["until"], doc["timezone"])
    lines = [f"spend by {doc['by']} from {since} to {until} ({doc['timezone']})", ""]
    width = max([len(str(r["group"])) for r in doc["rows"]] + [5])
    lines.append(f"  {'':<{width}}  {'spend':>12}  {'requests':>9}  {'errors':>7}  {'429s':>6}  last used")
    for row in doc["rows"]:
        group = "(none)" if row["group"] is None else row["group"]
        last = "-" if not row.get("last_at") else datetime.fromisoformat(row["last_at"]).strftime("%Y-%m-%d %H:%M")
        lines.append(
            f"  {group:<{width}}  {_money(row['spent']):>12}  {row['events']:>9}  {row.get('errors', 0):>7}"
            f"  {row.get('rate_limited', 0):>6}  {last}"
        )
    lines.append(f"  {'total':<{width}}  {_money(doc['total']):>12}  {doc['events']:>9}")
    if doc["unpriced_events"]:
        lines.append(f"  {doc['unpriced_events']} event(s) could not be priced and are not in the total")
    return "\n".join(lines)
