"""``guardd status`` and ``guardd check``: the state of every budget, as JSON (contract §5) and for people."""

from __future__ import annotations

import glob
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guardd.adapters import killswitch
from guardd.adapters.instance_lock import read_record
from guardd.config.view import ConfigView
from guardd.core.budgets import Budget
from guardd.core.evaluate import BudgetEvaluation, WindowEvaluation, overridden
from guardd.core.health import HealthEvaluation
from guardd.core.hours import iso_of_ms
from guardd.core.money import format_json
from guardd.core.periods import format_duration
from guardd.core.switch_read import Liveness, liveness, read_document
from guardd.core.undelivered import DROPPED, DROPPED_WARNS_FOR, dropped
from guardd.errors import GuarddError
from guardd.ledger.discovery import find
from guardd.store.api import ChannelHealth, EventsAPI, RequestStatsAPI, StateAPI, Stores

if TYPE_CHECKING:
    from guardd.core.never_matched import MatchGap
    from guardd.core.spike import SpikeEvaluation
    from guardd.services.evaluation import Evaluator
    from guardd.services.shared_switch import SharedSwitch


def read_switch(config: ConfigView, now: datetime) -> tuple[dict[str, Any] | None, Liveness, str | None]:
    """Return the switch document (None when missing or unreadable), the guard's liveness and the read error.

    Alive means a valid document before its ``expires_at`` and, when this state's lock file is readable, not a
    daemon that has stopped (its record in a lock nobody holds). ``run --once`` is not a daemon: its file lives
    until ``expires_at``, as documented."""
    path: Path = config.killswitch_path
    try:
        raw = killswitch.read(path)
    except GuarddError as exc:
        return None, liveness(None, now, missing=str(exc)), str(exc)
    if raw is None:
        return None, liveness(None, now, missing=f"there is no kill-switch file at {path}"), None
    view = read_document(raw)
    guard = liveness(view, now, max_age=config.stale_after, tz=config.zone)
    if guard.alive:
        # The file's expires_at is minutes away after a kill -9; the lock file knows the daemon is gone now.
        record = read_record(config.state_dir)
        if record.daemon_gone:
            pid = "" if record.pid is None else f" (pid {record.pid})"
            why = f"the daemon{pid} that wrote {path} has stopped: no process holds {config.state_dir}/guardd.lock"
            guard = Liveness(False, guard.heartbeat_at, guard.expires_at, why)
    return raw, guard, None


def dead_line(guard: Liveness, tz: Any) -> str:
    """``guardd is not running (last heartbeat <time>)``, the time in ``tz`` to the second (or ``unknown``)."""
    heartbeat = guard.heartbeat_at
    when = "unknown" if heartbeat is None else heartbeat.astimezone(tz).replace(microsecond=0).isoformat()
    return f"guardd is not running (last heartbeat {when})"


def _iso(moment: datetime | None, tz: Any) -> str | None:
    return None if moment is None else moment.astimezone(tz).isoformat()


def window_json(w: WindowEvaluation, tz: Any) -> dict[str, Any]:
    return {
        "window": w.window.name,
        "start": _iso(w.window.start, tz),
        "end": _iso(w.window.end, tz),
        "resets": _iso(w.window.resets, tz),  # null for a rolling window: it slides, it never resets
        "releases_at": _iso(w.releases_at, tz),  # a tripped rolling window: when enough spend has left it
        "spent": None if w.spent is None else format_json(w.spent),  # null: not known, never "0.00"
        "limit": format_json(w.limit),
        "percent": w.percent,
        "forecast": format_json(w.forecast.projected) if w.forecast else None,
        "limit_at": _iso(w.forecast.limit_at, tz) if w.forecast else None,
        "burn_rate_per_hour": format_json(w.forecast.rate_per_hour) if w.forecast else None,
        "state": w.state,
        "thresholds_crossed": list(w.thresholds_crossed),
        "unpriced_events": w.unpriced_events,
        "headroom": None if w.headroom is None else format_json(w.headroom),
        "partial": w.partial,  # ``spent`` is a lower bound ...
        "partial_reason": w.partial_reason,  # ... for this reason (null when the figure is whole)
        "unknown_sources": list(w.unknown),  # whose part of the spend is not known (``spent`` a lower bound)
    }


def budget_json(ev: BudgetEvaluation, tz: Any, gap: MatchGap | None = None) -> dict[str, Any]:
    """A budget in ``status --json``; ``gap``: why its match selects nothing ever stored (a typo?), or None."""
    return {
        "name": ev.name,
        "source": ev.budget.source,
        "state": ev.state,
        "tripped": ev.tripped,
        "stale": ev.staleness.stale,
        "stale_reason": ev.staleness.reason,
        "windows": [window_json(w, tz) for w in ev.windows],
        "override": None if ev.override is None else _override_json(ev, tz),
        "never_matched": None if gap is None else gap.to_json(),
        **({} if ev.spike is None else {"spike": spike_json(ev.spike)}),
    }


def _override_json(ev: BudgetEvaluation, tz: Any) -> dict[str, Any]:
    """The hand decision that holds this budget's switch scope (contract §3's ``override``, times in ``tz``)."""
    assert ev.override is not None
    return {**ev.override.to_json(), "until": _iso(ev.override.until, tz)}


async def with_overrides(evaluations: list[BudgetEvaluation], state: StateAPI) -> list[BudgetEvaluation]:
    """Return ``evaluations`` as the switch holds them (:func:`guardd.core.evaluate.overridden`): each budget
    under its active hand decision, if any, and tripped while the stored switch document trips its scope — a
    budget released by hand is never shown ``tripped``, nor one the switch trips shown untripped."""
    active = {o.scope: o for o in await state.overrides()}
    doc = await state.switch_doc()
    scopes = doc.scopes if doc is not None else {}
    return [overridden(ev, active.get(ev.name), ev.name in scopes and scopes[ev.name].tripped) for ev in evaluations]


def spike_json(spike: SpikeEvaluation) -> dict[str, Any]:
    """A budget's ``spike`` in ``status --json`` (contract §11): money as decimal strings."""
    return {
        "state": spike.state,
        "recent": format_json(spike.recent),
        "baseline_mean": format_json(spike.baseline_mean),
        "factor": float(spike.spike.factor),
        "window": format_duration(spike.spike.window),
        "baseline": format_duration(spike.spike.baseline),
    }


def health_json(ev: HealthEvaluation) -> dict[str, Any]:
    """A health rule in ``status --json`` (contract §11)."""
    return {
        "name": ev.name,
        "state": ev.state,
        "window": format_duration(ev.rule.window),
        "requests": ev.requests,
        "error_rate": ev.error_rate,
        "latency_p95_ms": ev.latency_p95_ms,
        "rate_limited": ev.rate_limited,
        "firing": list(ev.firing),
    }


async def failing_notifiers(config: ConfigView, state: StateAPI) -> dict[str, str | None]:
    """Return the configured notifiers whose last delivery failed: display URL -> its last error."""
    channels = await state.channel_health()
    return {
        n.display_url: channels[n.display_url].last_error
        for n in config.notifiers
        if n.display_url in channels and not channels[n.display_url].ok
    }


async def dropped_alerts(state: StateAPI, now: datetime, tz: Any = UTC) -> list[dict[str, Any]]:
    """The alerts given up in the last 24 hours because their notifier was removed from the configuration
    (:mod:`guardd.core.undelivered`): ``[{"budget", "notifier", "title", "at", "text"}]``, oldest first. Never
    delivered anywhere, so said by ``status`` and (WARNING) ``check`` for a while."""
    return [
        {"budget": budget, "notifier": url, "title": title, "at": _iso(at, tz), "text": dropped(budget, url)}
        for budget, url, title, at in await state.given_up(now - DROPPED_WARNS_FOR, DROPPED)
    ]


async def build(
    config: ConfigView,
    evaluations: list[BudgetEvaluation],
    state: StateAPI,
    now: datetime,
    ledgers: list[dict[str, Any]],
    openrouter: dict[str, Any] | None,
    health: list[HealthEvaluation] | None = None,
    shared: SharedSwitch | None = None,
    gaps: dict[str, MatchGap | None] | None = None,
) -> dict[str, Any]:
    """Return the ``guardd status --json`` document (schema 1). On a shared store (``shared``) the switch and the
    guard's liveness are the store's (:mod:`guardd.services.shared_switch`), else this host's switch file's.
    ``gaps``: by budget, why its match selects nothing ever stored (:meth:`Evaluator.gaps`)."""
    tz = config.zone
    if shared is not None:
        raw, guard, error = shared.document, shared.guard, None
    else:
        raw, guard, error = read_switch(config, now)
    switch: dict[str, Any] | None = {"error": error} if error is not None else raw
    channels = await state.channel_health()
    notifiers = []
    for n in config.notifiers:
        channel = channels.get(n.display_url, ChannelHealth(True, None, None))
        notifiers.append(
            {
                "url": n.display_url,
                "ok": channel.ok,
                "last_error": channel.last_error,
                "failing_since": _iso(channel.failing_since, tz),
                "tags": list(n.tags),
                "min_severity": n.min_severity,
            }
        )
    return {
        "schema": 1,
        "generated_at": now.astimezone(tz).isoformat(),
        "timezone": config.timezone,
        "guard": _guard_json(guard, tz),
        "store": store_health(config),  # `since` in the configured zone, as every time here
        "config": config_state(config),
        "budgets": [budget_json(ev, tz, (gaps or {}).get(ev.name)) for ev in evaluations],
        "health": [health_json(ev) for ev in health or []],
        "killswitch": switch,
        "openrouter": openrouter,
        "ledgers": ledgers,
        "ledger_errors": ledger_errors(config),
        "ledger_warnings": ledger_warnings(config),
        "unmatched_ledgers": unmatched_ledgers(config, {lg["ledger"] for lg in ledgers}),
        "missing_ledgers": missing_ledgers(config, {lg["ledger"] for lg in ledgers}),
        "notifiers": notifiers,
        "silences": [
            {
                "id": s.id,
                "budget": s.budget,
                "until": s.until.astimezone(tz).isoformat(),
                "reason": s.reason,
                "by": s.by,
            }
            for s in await state.silences(now)
        ],
        "outbox_pending": await state.pending_count(),
        "dropped_alerts": await dropped_alerts(state, now, tz),
    }


def store_health(config: ConfigView) -> dict[str, Any]:
    """Whether the running daemon can write the state database (contract §7), from the record it keeps in its
    lock file: ``{"ok": true|false, "error", "since"}``. With no daemon running nothing is writing, so nothing is
    known: ``ok`` is null and ``reason`` says why."""
    record = read_record(config.state_dir)
    if not record.running:
        return {"ok": None, "error": None, "since": None, "reason": "no guardd daemon is running on this state"}
    return {"ok": record.store_ok, "error": record.store_error, "since": _local(record.store_since, config.zone)}


def config_state(config: ConfigView) -> dict[str, Any]:
    """Whether the running daemon enforces the configuration this command read (review F11): ``{"current",
    "digest", "daemon_digest", "loaded_at", "warning"}``. ``current`` is null when nothing can be compared (no
    daemon runs, or it records no digest). The digest covers the shared sections (budgets, health, notifiers,
    alerts, killswitch: :func:`guardd.config.digest.shared_digest`), so an edit to those not yet reloaded is
    said: this command shows the file as it is now, the daemon trips and alerts by the one it loaded."""
    record = read_record(config.state_dir)
    digest = record.config_digest if record.running else None
    current = None if digest is None else digest == config.config_digest
    loaded_at = _local(record.config_loaded_at, config.zone)
    warning = None
    if current is False:
        when = (loaded_at or "unknown")[:19].replace("T", " ")
        file = config.path or "the built-in defaults"
        warning = (
            f"the daemon runs an older configuration (loaded at {when}) than {file}: reload it"
            " (systemctl reload guardd)"
        )
    return {
        "current": current,
        "digest": config.config_digest,
        "daemon_digest": digest,
        "loaded_at": loaded_at,
        "warning": warning,
    }


def _local(text: str | None, tz: Any) -> str | None:
    """An RFC 3339 time from a record, in ``tz`` (as it came when it does not parse: shown, never dropped)."""
    try:
        return None if text is None else datetime.fromisoformat(text).astimezone(tz).isoformat()
    except ValueError:
        return text


def ledger_errors(config: ConfigView) -> list[dict[str, str]]:
    """The ledger files the running daemon cannot read (``[{"path", "error"}]``): their spend is not counted."""
    record = read_record(config.state_dir)
    return [{"path": path, "error": error} for path, error in sorted(record.ledger_errors.items())]


def ledger_warnings(config: ConfigView) -> list[dict[str, str]]:
    """The rotated ledger files the running daemon found at start and cannot read (``[{"path", "warning"}]``):
    they may hold lines it never counted (:mod:`guardd.ledger.siblings`). Said until the daemon restarts."""
    record = read_record(config.state_dir)
    return [{"path": path, "warning": why} for path, why in sorted(record.ledger_warnings.items())]


def unmatched_ledgers(config: ConfigView, read: set[str]) -> list[str]:
    """Return the configured ledger patterns that match no file now and never matched one (no file of theirs was
    ever read): a typo in a path would otherwise be spend never counted, with nothing said. ``read`` holds the
    patterns of the checkpoints in the store. A path read before and gone now is :func:`missing_ledgers`'."""
    return [pattern for pattern in config.ledger_paths if pattern not in read and not find(pattern).paths]


def missing_ledgers(config: ConfigView, read: set[str]) -> list[dict[str, str]]:
    """Return the configured exact (non-glob) ledger paths that were read and name no file now (``[{"path",
    "reason", "warning"}]``): deleted, moved, or a symbolic link whose target is gone (a volume no longer
    mounted). The application may write its spend elsewhere now, where nothing counts it (review F15).

    A glob whose files are all gone is not one: rotation and clean-up remove files that a pattern matched,
    and the next file it matches is read from its start."""
    out = []
    for pattern in config.ledger_paths:
        if glob.has_magic(pattern) or pattern not in read or os.path.exists(pattern):
            continue
        if os.path.islink(pattern):
            try:
                target = os.readlink(pattern)
            except OSError:
                target = "?"
            reason = f"a symbolic link to {target}, which does not exist"
        else:
            reason = "no such file (deleted or moved)"
        warning = f"ledger file {pattern} is gone ({reason}): nothing written there now is counted"
        out.append({"path": pattern, "reason": reason, "warning": warning})
    return out


def _guard_json(guard: Liveness, tz: Any) -> dict[str, Any]:
    return {
        "alive": guard.alive,
        "heartbeat_at": _iso(guard.heartbeat_at, tz),
        "expires_at": _iso(guard.expires_at, tz),
        "reason": guard.reason,
    }


async def document(
    config: ConfigView,
    stores: Stores,
    evaluator: Evaluator,
    now: datetime,
    budgets: list[Budget] | None = None,
) -> dict[str, Any]:
    """Return the ``guardd status --json`` document at ``now``, evaluated afresh (``budgets``: default all).

    The one implementation behind ``guardd status`` and ``GET /v1/status``.
    """
    evaluations = await with_overrides(await evaluator.evaluate_all(now, budgets), stores.state)
    ledgers = await ledger_status(stores.events, now, config.zone)
    remote = None
    if config.has_openrouter:
        from guardd.services.openrouter.view import RemoteView

        remote = await RemoteView(config, stores.remote).status(now, stores.state)
    health = await health_evaluations(config, stores.stats, evaluator, now)
    gaps = evaluator.gaps(budgets)
    if stores.cluster is None:
        return await build(config, evaluations, stores.state, now, ledgers, remote, health, None, gaps)
    # A shared store (contract §9): the switch the leader committed; the leader, the instances, warnings; and
    # whether this host's own switch file, which its clients read, is in step with it.
    from guardd.services.shared_switch import read_shared

    cluster = await stores.cluster.status()
    shared = await read_shared(config, stores.state, cluster, now)
    doc = await build(config, evaluations, stores.state, now, ledgers, remote, health, shared, gaps)
    cluster["local_switch"] = shared.local_json()
    if shared.warning is not None:
        warnings = cluster.get("warnings")
        cluster["warnings"] = [*(warnings if isinstance(warnings, list) else []), shared.warning]
    doc["cluster"] = cluster
    return doc


async def health_evaluations(
    config: ConfigView, stats: RequestStatsAPI, evaluator: Evaluator, now: datetime
) -> list[HealthEvaluation]:
    """Every ``[[health]]`` rule's verdict at ``now`` (contract §11)."""
    from guardd.services.health_rules import evaluate_rules

    return await evaluate_rules(config.health, stats, evaluator.series, now)


async def ledger_status(events: EventsAPI, now: datetime | None = None, tz: Any = UTC) -> list[dict[str, Any]]:
    """One entry per ledger file guardd has read: where reading stands and what it found; with ``now``, also
    ``quarantined_24h``, the lines it set aside in the 24 hours before. Times in ``tz``."""
    out: list[dict[str, Any]] = []
    recent = await events.set_aside_by_file(now - timedelta(hours=24)) if now is not None else {}
    latest: dict[str, Any] = {}
    for cp in await events.checkpoints():
        latest[cp.path] = cp
    for path, cp in latest.items():
        last = iso_of_ms(cp.last_event_ms, tz) if cp.last_event_ms else None
        # A time no date holds (stored by an older guardd, review F19): null, and the stored number beside it.
        beyond = {"last_event_ms": cp.last_event_ms} if cp.last_event_ms and last is None else {}
        out.append(
            {
                "path": path,
                "ledger": cp.ledger,
                "offset": cp.offset,
                "size": cp.size,
                "events": cp.events,
                "quarantined": cp.quarantined,
                **({"quarantined_24h": recent.get(path, 0)} if now is not None else {}),
                "last_event_at": last,
                **beyond,
            }
        )
    return out
