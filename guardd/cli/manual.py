"""``guardd killswitch`` and ``guardd silence``: what people change by hand, recorded with who did it.

``killswitch trip|release`` records a manual override, recomputes the switch file at once (keeping the daemon's
heartbeat: only the daemon's evaluations are heartbeats) and delivers its notices. On a shared store only the
leader decides the switch (contract §9): the command records the override and its message, wakes the leader and
prints the switch the leader commits, as ``POST /v1/killswitch/…`` on a follower does
(:mod:`guardd.services.follower`); when none applies it in time, :class:`~guardd.errors.NotApplied` (exit 75).
``killswitch show`` reads the file; on a shared store, the switch the store holds, and says when this
host's file is not in step with it (:mod:`guardd.services.shared_switch`). When the guard is not running (the
document's ``expires_at`` has passed, the file is missing, or its daemon stopped) it says so first, ``GUARD DOWN``,
and exits 3 as ``check`` does: a dead guard's switch is never read as all clear.
``silence add|remove|list`` mutes a budget's notifications until a time
(data every instance reads, not a decision: any instance may write it). :func:`who` names the person (the sudo
user first). Each ``cmd_*`` returns the exit code; a wrong argument raises :class:`~guardd.errors.UsageError`.
"""

from __future__ import annotations

import json
import os
import sys
from argparse import Namespace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from guardd.adapters import killswitch
from guardd.cli import paint, render
from guardd.cli.commands import _budgets, opened
from guardd.core.switch import GLOBAL_SCOPE
from guardd.errors import UsageError

if TYPE_CHECKING:
    from guardd.app import App
    from guardd.core.switch import SwitchDoc
    from guardd.services.overrides import Action


def who() -> str:
    try:
        import getpass

        user = getpass.getuser()
    except Exception:
        user = str(os.getuid())
    return (os.environ.get("SUDO_USER") and f"{os.environ['SUDO_USER']} (via sudo)") or user


async def cmd_killswitch(args: Namespace) -> int:
    from guardd.services import status

    async with opened(args, readonly=args.action == "show") as ctx:
        now = datetime.now(UTC).replace(microsecond=0)  # an override's times are read by people, to the second
        committed: SwitchDoc | None = None
        if args.action != "show":
            scope = args.budget or GLOBAL_SCOPE
            if args.budget:
                _budgets(ctx, args.budget)
            until = now + args.duration if args.duration is not None else None
            if until is not None and until <= now:
                raise UsageError("--for must be longer than 0s")
            committed = await _manual(ctx, args.action, scope, until, args.reason, now, say=not args.json)
        local_note = None
        down = None  # show: the guard is not running, so the document says nothing trustworthy (contract §3, §7)
        doc: dict[str, Any] | None
        if committed is not None:
            doc = committed.to_json()
        elif ctx.stores.cluster is not None:  # contract §9: the switch the leader committed, and this host's file
            from guardd.services.shared_switch import read_shared

            shared = await read_shared(ctx.config, ctx.state, await ctx.stores.cluster.status(), now)
            doc, local_note, guard = shared.document, shared.warning, shared.guard
            down = None if guard.alive else f"GUARD DOWN: {status.dead_line(guard, ctx.config.zone)}: {guard.reason}"
        elif args.action == "show":
            doc, guard, _error = status.read_switch(ctx.config, now)
            down = None if guard.alive else f"GUARD DOWN: {status.dead_line(guard, ctx.config.zone)}: {guard.reason}"
        else:
            doc = killswitch.read(ctx.config.killswitch_path)
    if args.json:
        print(json.dumps(doc, indent=2) if doc else "null")
        _notes([note for note in (down, local_note) if note])
    elif args.action == "show":
        lines = render.switch_lines(doc, ctx.config.timezone) if doc else []
        empty = "no switch decision in the shared store yet (no leader has evaluated)" if ctx.stores.cluster else None
        lines = lines or [empty or "no kill-switch file yet (the daemon has not run)"]
        notes = [f"note: {local_note}"] if local_note else []
        paint.emit("\n".join([*([down, ""] if down else []), *lines, *notes]))
    return 3 if down else 0  # as check's UNKNOWN: a dead guard's switch is never read as OK


async def _manual(
    ctx: App, action: str, scope: str, until: datetime | None, reason: str, now: datetime, say: bool = True
) -> SwitchDoc | None:
    """Record a manual trip/release and apply it. On one host: recompute the switch file at once, switch the
    OpenRouter keys that follow it (``disable_openrouter_keys``) and notify it (return None: the file says it).
    On a shared store only the leader decides the switch and switches keys: record the override and its
    message, and return the switch the leader commits once it applied them (NotApplied when none does in
    time; the override stays recorded). ``say``: print what the switch says now (not with ``--json``, which
    prints the document)."""
    from guardd.services.overrides import apply_manual, request_manual

    engine = ctx.engine
    act: Action = "trip" if action == "trip" else "release"
    verb = "tripped" if action == "trip" else "released"
    cluster = ctx.stores.cluster
    if cluster is not None:
        from guardd.services.follower import leader_applies

        request = await request_manual(engine, act, scope, until, reason, who(), now)
        _notes(request.notes)
        doc = await leader_applies(cluster, request.applied, act, scope)
        if say:
            print(f"{verb} {scope}; the leader applied it: the switch now says tripped={doc.tripped}")
        return doc
    engine.keeps_heartbeat = True  # not the daemon: a dead guard must stay dead
    remote = ctx.openrouter()  # the poller (whose client the key switch uses) and its checks; None: no [openrouter]
    try:  # with a key switch: the OpenRouter keys follow at once, daemon or not (the daemon's would follow too)
        result = await apply_manual(engine, act, scope, until, reason, who(), now)
    finally:
        if remote is not None:
            await remote[0].aclose()
    _notes(result.notes)
    await engine.deliver(now)
    if say:
        print(f"{verb} {scope}; switch file {ctx.config.killswitch_path} now says tripped={result.doc.tripped}")
    return None


def _notes(notes: list[str]) -> None:
    for note in notes:
        print(f"guardd: note: {note}", file=sys.stderr)


async def cmd_silence(args: Namespace) -> int:
    async with opened(args) as ctx:
        now = datetime.now(UTC).replace(microsecond=0)  # what people read back (history, list) is to the second
        if args.action == "add":
            if not args.budget or args.duration is None:
                raise UsageError("silence add needs --budget NAME and --for DURATION")
            if args.budget != GLOBAL_SCOPE:
                _budgets(ctx, args.budget)
            if not args.duration:
                raise UsageError("--for must be longer than 0s")
            until = now + args.duration
            sid = await ctx.state.add_silence(args.budget, until, args.reason, who(), now)
            print(f"silence {sid}: {args.budget} muted until {render.when(until.isoformat(), str(ctx.config.zone))}")
        elif args.action == "remove":
            if args.id is None:
                raise UsageError("silence remove needs the silence ID (see guardd silence list)")
            if not await ctx.state.remove_silence(args.id, who(), now):
                raise UsageError(f"no silence with ID {args.id}")
            print(f"silence {args.id} removed")
        else:
            rows = await ctx.state.silences(now)
            if args.json:
                print(
                    json.dumps(
                        [
                            {
                                "id": s.id,
                                "budget": s.budget,
                                "until": s.until.isoformat(),
                                "reason": s.reason,
                                "by": s.by,
                            }
                            for s in rows
                        ],
                        indent=2,
                    )
                )
            elif not rows:
                print("no active silences")
            for s in rows if not args.json else []:
                until = render.when(s.until.isoformat(), str(ctx.config.zone))
                print(f"{s.id}\t{s.budget}\tuntil {until}\tby {s.by}\t{s.reason}")
    return 0
