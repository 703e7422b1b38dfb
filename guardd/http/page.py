"""The status page at ``/``: server-rendered HTML with inline SVG charts.

Why server-rendered SVG rather than a vendored chart library: the page then works with scripts off, behind a
strict CSP (``default-src 'none'``), offline, and loads nothing at all from anywhere — not even from guardd; it
costs one request; and its charts are plain elements a test can count. It refreshes itself with a meta refresh.

Pure: :func:`render` takes the status document, the chart data and ``now``; it reads no clock and no store.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from guardd.core.money import format_human
from guardd.http.backend import Charts

REFRESH_SECONDS = 30
W, H, PAD = 320, 140, 28
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")
STATE_COLOURS = {"ok": "#2e7d32", "warning": "#ef6c00", "critical": "#c62828", "tripped": "#b71c1c", "stale": "#6d4c41"}

CSS = """
*{box-sizing:border-box}body{font:15px/1.4 system-ui,sans-serif;margin:0;padding:12px;background:#f4f5f7;color:#222}
h1{font-size:1.3em;margin:0 0 4px}h2{font-size:1.1em;margin:0}.muted{color:#666;font-size:.85em}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:12px;margin-top:12px}
.card{background:#fff;border-radius:8px;padding:12px;box-shadow:0 1px 3px #0002}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:.8em;vertical-align:middle}
.switch{padding:10px 12px;border-radius:8px;color:#fff;margin-top:8px}.open{background:#2e7d32}
.tripped{background:#b71c1c}.dead{background:#6d4c41}
.bar{background:#e6e8eb;border-radius:4px;height:10px;overflow:hidden;margin:2px 0}
.fill{height:100%}.win{margin-top:8px}svg{width:100%;height:auto;display:block;margin-top:8px}
table{border-collapse:collapse;width:100%;font-size:.85em}td{padding:2px 4px;border-top:1px solid #eee}
.legend span{display:inline-block;margin-right:10px;font-size:.8em}.legend i{display:inline-block;width:10px;
height:10px;margin-right:4px;vertical-align:middle}
"""


def render(status: dict[str, Any], charts: Charts, now: datetime) -> str:
    """Return the page for ``status`` (the ``/v1/status`` document) and ``charts`` at ``now``."""
    tz = ZoneInfo(status.get("timezone") or "UTC")
    switch = status.get("killswitch") or {}
    scopes = switch.get("scopes") or {}
    cards = "".join(
        _card(b, scopes.get(b["name"]), charts.cumulative.get(b["name"], []), now, tz) for b in status["budgets"]
    )
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        '<meta name=viewport content="width=device-width, initial-scale=1">',
        f"<meta http-equiv=refresh content={REFRESH_SECONDS}>",
        f"<title>guardd{' — TRIPPED' if switch.get('tripped') else ''}</title><style>{CSS}</style></head><body>",
        "<h1>guardd</h1>",
        f"<div class=muted>{escape(_local(status.get('generated_at'), tz))} ({escape(tz.key)}) · refreshes every "
        f"{REFRESH_SECONDS}s · <a href=/v1/status>JSON</a> · <a href=/metrics>metrics</a></div>",
        _switch_banner(status, switch, scopes, tz),
        _store_banner(status),
        f"<div class=grid>{cards or '<div class=card>No budgets configured.</div>'}</div>",
        '<div class="card" style="margin-top:12px"><h2>Spend per day, last 30 days</h2>',
        _daily_chart(charts.daily, now, tz),
        "</div>",
        _sources(status, tz),
        "</body></html>",
    ]
    return "".join(parts)


def _switch_banner(status: dict[str, Any], switch: dict[str, Any], scopes: dict[str, Any], tz: ZoneInfo) -> str:
    guard = status.get("guard")
    if isinstance(guard, dict) and guard.get("alive") is False:
        reason = escape(str(guard.get("reason") or "guardd is not running"))
        return f'<div class="switch dead" id=switch>Guard not alive: {reason}</div>'
    if not switch or "error" in switch:
        return '<div class="switch dead" id=switch>Kill-switch state unknown (no document yet)</div>'
    if not switch.get("tripped"):
        return '<div class="switch open" id=switch>Kill-switch open: requests may proceed</div>'
    rows = "".join(
        f"<div><b>{escape(name)}</b>: {escape(str(s.get('reason') or ''))}"
        + (f" — until {escape(_local(s.get('until'), tz))}" if s.get("until") else " — until released")
        + "</div>"
        for name, s in sorted(scopes.items())
        if isinstance(s, dict) and s.get("tripped")
    )
    return f'<div class="switch tripped" id=switch><b>Kill-switch TRIPPED</b>{rows}</div>'


def _store_banner(status: dict[str, Any]) -> str:
    store = status.get("store")
    if not isinstance(store, dict) or store.get("ok") is not False:
        return ""
    error = escape(str(store.get("error") or "unknown error"))
    return f'<div class="switch dead" id=store>The state cannot be written: {error}</div>'


def _card(budget: dict[str, Any], scope: Any, points: list[tuple[int, int]], now: datetime, tz: ZoneInfo) -> str:
    state = str(budget.get("state"))
    colour = STATE_COLOURS.get(state, "#555")
    out = [
        f'<div class="card budget" data-budget="{escape(budget["name"])}">',
        f'<h2>{escape(budget["name"])} <span class=badge style="background:{colour}">{escape(state)}</span></h2>',
        f"<div class=muted>source: {escape(str(budget.get('source')))}"
        + (f" · stale: {escape(str(budget.get('stale_reason') or ''))}" if budget.get("stale") else "")
        + "</div>",
    ]
    gap = budget.get("never_matched")
    if isinstance(gap, dict):  # a typo in the match: $0 and OK forever, said on the card
        said, colour = ("matches nothing ever stored", "#ef6c00")
        if gap.get("level") != "warning":
            said, colour = ("matched nothing stored yet", "#666")
        out.append(f"<div class=never-matched style='color:{colour}'>{said}: {escape(str(gap.get('message')))}</div>")
    if isinstance(scope, dict) and scope.get("tripped"):
        out.append(f"<div class=muted style='color:#b71c1c'>switch tripped: {escape(str(scope.get('reason')))}</div>")
    elif isinstance(scope, dict) and scope.get("override"):
        ov = scope["override"]
        out.append(f"<div class=muted>override {escape(str(ov.get('state')))} by {escape(str(ov.get('by')))}</div>")
    for w in budget.get("windows", []):
        known = w.get("percent") is not None
        pct = float(w.get("percent") or 0)
        fill = STATE_COLOURS.get(str(w.get("state")), "#555")
        forecast = f" · forecast {escape(_cents(w['forecast']))}" if w.get("forecast") else ""
        share = f"({pct:.1f}%)" if known else "(?%)"
        out.append(
            f"<div class=win><b>{escape(w['window'])}</b> {escape(_spent(w))} of ${escape(w['limit'])} "
            f"{share}{forecast}<div class=bar><div class=fill style='width:{min(pct, 100):.1f}%;"
            f"background:{fill}'></div></div><span class=muted>{escape(_resets(w, tz))}</span></div>"
        )
    windows = budget.get("windows") or []
    if windows:
        out.append(_cumulative_chart(budget["name"], windows[0], points, now))
    out.append("</div>")
    return "".join(out)


def _cumulative_chart(name: str, window: dict[str, Any], points: list[tuple[int, int]], now: datetime) -> str:
    start = _ms(window["start"])
    end = _ms(window["end"])
    now_ms = int(now.timestamp() * 1000)
    limit = _pico(window["limit"])
    known = window.get("spent") is not None
    spent = _pico(window["spent"]) if known else 0
    forecast = _pico(window["forecast"]) if window.get("forecast") else None
    top = max(limit, spent, forecast or 0, 1) * 11 // 10
    span = max(end - start, 1)

    def xy(ms: int, pico: int) -> str:
        x = PAD + (min(max(ms, start), end) - start) * (W - 2 * PAD) / span
        y = H - PAD - pico * (H - 2 * PAD) / top
        return f"{x:.1f},{y:.1f}"

    total, line = 0, [xy(start, 0)]
    for ms, cost in sorted(points):
        total += cost
        line.append(xy(ms, total))
    line.append(xy(min(now_ms, end), max(total, spent)))
    ly = H - PAD - limit * (H - 2 * PAD) / top
    parts = [
        f'<svg class="chart cumulative" data-budget="{escape(name)}" viewBox="0 0 {W} {H}" role=img '
        f'aria-label="{escape(name)} {escape(window["window"])} cumulative spend">',
        f'<line x1={PAD} y1={H - PAD} x2={W - PAD} y2={H - PAD} stroke="#999"/>',
        f'<line class=limit x1={PAD} y1="{ly:.1f}" x2={W - PAD} y2="{ly:.1f}" stroke="#c62828" '
        'stroke-dasharray="4 3"/>',
        f'<text x={W - PAD} y="{ly - 3:.1f}" font-size=9 text-anchor=end fill="#c62828">limit '
        f"${escape(window['limit'])}</text>",
        f'<polyline class=spend fill=none stroke="#1565c0" stroke-width=2 points="{" ".join(line)}"/>'
        if known  # a spend line at $0 for a figure nobody knows would read as "nothing spent"
        else f'<text class=unknown x={W // 2} y={H // 2} font-size=11 text-anchor=middle fill="#6d4c41">'
        "spend unknown</text>",
    ]
    if forecast is not None and now_ms < end:
        parts.append(
            f'<line class=forecast x1="{xy(now_ms, spent).split(",")[0]}" y1="{xy(now_ms, spent).split(",")[1]}" '
            f'x2="{xy(end, forecast).split(",")[0]}" y2="{xy(end, forecast).split(",")[1]}" stroke="#ef6c00" '
            'stroke-dasharray="2 2" stroke-width=2/>'
        )
    parts.append(
        f'<text x={PAD} y={H - 8} font-size=9 fill="#666">{escape(window["window"])} window start</text>'
        f'<text x={W - PAD} y={H - 8} font-size=9 fill="#666" text-anchor=end>end</text></svg>'
    )
    return "".join(parts)


def _daily_chart(daily: list[tuple[date, str, int]], now: datetime, tz: ZoneInfo) -> str:
    today = now.astimezone(tz).date()
    days = [today - timedelta(days=29 - i) for i in range(30)]
    per_day: dict[date, dict[str, int]] = defaultdict(dict)
    totals: dict[str, int] = defaultdict(int)
    for day, model, cost in daily:
        per_day[day][model] = per_day[day].get(model, 0) + cost
        totals[model] += cost
    models = sorted(totals, key=lambda m: -totals[m])
    colours = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(models)}  # by rank: neighbours never share one
    top = max((sum(v.values()) for v in per_day.values()), default=0) or 1
    width, height, pad = 600, 180, 24
    step = (width - 2 * pad) / 30
    parts = [f'<svg class="chart daily" viewBox="0 0 {width} {height}" role=img aria-label="spend per day">']
    for i, day in enumerate(days):
        y: float = height - pad
        for model in models:
            cost = per_day.get(day, {}).get(model, 0)
            if cost <= 0:
                continue
            h = cost * (height - 2 * pad) / top
            y -= h
            parts.append(
                f'<rect class=seg x="{pad + i * step + 1:.1f}" y="{y:.1f}" width="{step - 2:.1f}" height="{h:.1f}" '
                f'fill="{colours[model]}"><title>{day} {escape(model)} {escape(format_human(cost))}</title></rect>'
            )
    parts.append(f'<line x1={pad} y1={height - pad} x2={width - pad} y2={height - pad} stroke="#999"/>')
    parts.append(f'<text x={pad} y={height - 6} font-size=10 fill="#666">{days[0]}</text>')
    parts.append(f'<text x={width - pad} y={height - 6} font-size=10 fill="#666" text-anchor=end>{days[-1]}</text>')
    parts.append(f'<text x={pad} y=12 font-size=10 fill="#666">max {escape(format_human(top))}/day</text></svg>')
    legend = "".join(
        f'<span><i style="background:{colours[m]}"></i>{escape(m)} {escape(format_human(totals[m]))}</span>'
        for m in models
    )
    return "".join(parts) + f"<div class=legend>{legend or '<span>no spend in the last 30 days</span>'}</div>"


def _sources(status: dict[str, Any], tz: ZoneInfo) -> str:
    rows = [
        f"<tr><td>ledger {escape(str(lg.get('path')))}</td><td>{lg.get('events')} events, "
        f"{lg.get('quarantined')} quarantined</td>"
        f"<td>last event {escape(_last_event(lg, tz))}</td></tr>"
        for lg in status.get("ledgers") or []
    ]
    remote = status.get("openrouter")
    if isinstance(remote, dict):
        fresh = "STALE" if remote.get("stale") else "fresh"
        rows.append(
            f"<tr><td>OpenRouter</td><td>{fresh}; balance ${escape(str(remote.get('balance')))}</td>"
            f"<td>fetched {escape(_local(remote.get('fetched_at'), tz))}</td></tr>"
        )
    body = "".join(rows) or "<tr><td>no ledger file read yet</td></tr>"
    return f'<div class="card" style="margin-top:12px" id=sources><h2>Sources</h2><table>{body}</table></div>'


def _resets(window: dict[str, Any], tz: ZoneInfo) -> str:
    """``resets Wed 02 Dec 00:00`` (local), or ``sliding, no reset`` for a rolling window (it never resets)."""
    if str(window.get("window", "")).startswith("rolling:"):
        return "sliding, no reset"
    return f"resets {_local(window.get('resets') or window.get('end'), tz)}"


def _local(text: object, tz: ZoneInfo) -> str:
    if not isinstance(text, str):
        return "never"
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(tz).strftime("%a %d %b %H:%M")
    except (ValueError, OverflowError):  # not a time, or none in that zone (year 9999 east of UTC)
        return text


def _last_event(ledger: dict[str, Any], tz: ZoneInfo) -> str:
    if ledger.get("last_event_ms") is not None and ledger.get("last_event_at") is None:
        return f"out of range (Unix ms {ledger['last_event_ms']})"  # stored by an older guardd (review F19)
    return _local(ledger.get("last_event_at"), tz)


def _spent(window: dict[str, Any]) -> str:
    """``$1.20``; ``at least $1.20`` when a source's part is not known; ``spend unknown`` when none is."""
    if window.get("spent") is None:
        return "spend unknown"
    return ("at least $" if window.get("unknown_sources") else "$") + str(window["spent"])


def _cents(text: str) -> str:
    """A projection for people: whole cents are enough (the exact figure is in /v1/status)."""
    return format_human(_pico(text))


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def _pico(text: str) -> int:
    from guardd.core.money import parse_money

    return parse_money(text)
