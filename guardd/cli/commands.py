"""The commands of ``guardd``: each ``cmd_<name>(args) -> exit code``."""

from __future__ import annotations

import json
import os
import sys
from argparse import Namespace
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from guardd.cli import paint, render
from guardd.config import ConfigView, load_view

if TYPE_CHECKING:
    from guardd.app import App
    from guardd.config import Config
    from guardd.ledger.tracked import LedgerSpec
from guardd.errors import GuarddError, UsageError

_said_defaults = False
_C = TypeVar("_C", bound=ConfigView)
SET_ASIDE_WARNS_FOR = timedelta(hours=24)  # check is WARNING while a ledger set lines aside this recently


def load(args: Namespace) -> Config:
    """The whole configuration (pydantic-validated settings, secrets included): for commands that change or
    send something."""
    from guardd.config import load_config

    return _loaded(args, load_config(args.config))


def config_view(args: Namespace) -> ConfigView:
    """The configuration's view, for commands that only read: no pydantic import while the file and its
    environment are unchanged since it was last validated (:mod:`guardd.config.cache`)."""
    return _loaded(args, load_view(args.config))


def _loaded(args: Namespace, config: _C) -> _C:
    global _said_defaults
    if config.log_format != "text":
        from guardd import logs

        logs.setup(args.verbose, config.log_format)
    if config.path is None and not _said_defaults:
        print(
            f"guardd: no configuration file found; running on built-in defaults (state in {config.state_dir})",
            file=sys.stderr,
        )
        _said_defaults = True
    return config


@asynccontextmanager
async def opened(args: Namespace, readonly: bool = False) -> AsyncIterator[App]:
    """The configuration and guardd built over the store it names (:func:`guardd.app.open_app`); ``readonly``
    for commands that only read (they then work on a SQLite state this user may not write, and take the
    configuration's view: :func:`config_view`); else the whole configuration (:func:`load`)."""
    from guardd.app import open_app

    config = config_view(args) if readonly else load(args)
    async with open_app(config, readonly=readonly) as app:
        yield app


def _budgets(ctx: App, name: str | None) -> list[Any]:
    if name is None:
        return ctx.config.budgets
    budget = ctx.config.budget(name)
    if budget is None:
        known = ", ".join(b.name for b in ctx.config.budgets) or "none configured"
        raise UsageError(f"no budget named {name!r} (budgets: {known})")
    return [budget]


async def cmd_run(args: Namespace) -> int:
    from guardd.daemon import server as daemon

    config = load(args)
    return await daemon.run(config, once=args.once, dry_run=args.dry_run, config_arg=args.config)


async def cmd_status(args: Namespace) -> int:
    from guardd.services import status

    if args.watch:
        from guardd.cli.watch import watch

        return await watch(args)
    if args.every:
        raise UsageError("--every goes with --watch")

    async with opened(args, readonly=True) as ctx:
        doc = await status.document(
            ctx.config, ctx.stores, ctx.evaluator, datetime.now(UTC), _budgets(ctx, args.budget)
        )
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        paint.emit(render.status_text(doc))
    return 0


async def _health(ctx: App, now: datetime) -> list[Any]:
    from guardd.services import status

    return await status.health_evaluations(ctx.config, ctx.stats, ctx.evaluator, now)


async def cmd_check(args: Namespace) -> int:
    """``guardd check`` (:mod:`guardd.cli.check`, imported only for this command)."""
    from guardd.cli.check import cmd_check as run

    return await run(args)


async def cmd_ingest(args: Namespace) -> int:
    from guardd.services import backfill

    labels: dict[str, str] = {}
    for item in args.label:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--label takes K=V, not {item!r}")
        labels[key] = value
    async with opened(args) as ctx:
        progress = None
        bar = None
        if sys.stderr.isatty() and not args.json:
            from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

            total = sum(os.path.getsize(p) for p in args.paths if os.path.isfile(p))
            bar = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                transient=True,
            )
            task = bar.add_task("ingesting", total=total)
            bar.start()

            def progress(n: int) -> None:
                bar.advance(task, n)

        try:
            if args.workers is not None and args.workers < 0:
                raise UsageError("--workers must be 0 or more")
            ledgers = backfill.ledgers_of(args.paths, ctx.ledger_specs())
            for path, spec in ledgers.items():
                _say_ledger(path, spec, args.format, labels)
            summary = await backfill.ingest_files(
                ctx.events,
                args.paths,
                args.format,
                labels,
                ctx.config.max_event_cost,
                progress,
                workers=args.workers,
                ledgers=ledgers,
            )
        finally:
            if bar is not None:
                bar.stop()
    if args.json:
        print(json.dumps(summary.to_json()))
    else:
        rate = summary.read / summary.seconds if summary.seconds else 0
        print(
            f"read {summary.read}, stored {summary.stored}, duplicates {summary.duplicates}, "
            f"quarantined {summary.quarantined}, unpriced {summary.unpriced} in {summary.seconds:.1f}s "
            f"({rate:,.0f} lines/s)"
        )
    return 0


def _say_ledger(path: str, spec: LedgerSpec, fmt: str | None, labels: dict[str, str]) -> None:
    """Tell (on stderr) that ``path`` is read as the configured ledger ``spec``: its format and labels apply."""
    merged = {**spec.labels, **labels}
    shown = ", ".join(f"{k}={v}" for k, v in sorted(merged.items())) or "none"
    won = sorted(k for k in labels if k in spec.labels and labels[k] != spec.labels[k])
    note = f" (--label wins on {', '.join(won)})" if won else ""
    print(
        f'{path}: read as [[ledgers]] "{spec.pattern}": format {fmt or spec.fmt}, labels {shown}{note}', file=sys.stderr
    )


async def cmd_report(args: Namespace) -> int:
    from guardd.services import report

    async with opened(args, readonly=True) as ctx:
        tz, now = ctx.config.zone, datetime.now(UTC)
        since = report.parse_when(args.since, tz, now) if args.since else None
        until = report.parse_when(args.until, tz, now) if args.until else None
        doc = await report.build(
            ctx.events, ctx.stats, args.by, since, until, tz, now, ctx.config.weekday, ctx.evaluator.series
        )
    if args.json:
        print(json.dumps(doc, indent=2))
    elif args.csv:
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["group", "spent", "events", "errors", "rate_limited", "last_at"])
        for row in doc["rows"]:
            group = "null" if row["group"] is None else row["group"]
            writer.writerow([group, row["spent"], row["events"], row["errors"], row["rate_limited"], row["last_at"]])
    else:
        paint.emit(render.report_text(doc))
    return 0


async def cmd_killswitch(args: Namespace) -> int:
    """``guardd killswitch`` (:mod:`guardd.cli.manual`, imported only for this command)."""
    from guardd.cli.manual import cmd_killswitch as run

    return await run(args)


async def cmd_silence(args: Namespace) -> int:
    """``guardd silence`` (:mod:`guardd.cli.manual`, imported only for this command)."""
    from guardd.cli.manual import cmd_silence as run

    return await run(args)


async def cmd_notify(args: Namespace) -> int:
    from guardd.adapters import notifier
    from guardd.errors import DeliveryError
    from guardd.services.jobs import channels_of

    config = load(args)
    channels = [c for c in channels_of(config) if args.tag is None or args.tag in c.tags]
    if not channels:
        print(
            "no notifiers configured"
            + (f" with tag {args.tag!r}" if args.tag else "")
            + "; alerts go to the log (stderr) only"
        )
        return 1 if args.tag else 0
    failed = 0
    for channel in channels:
        try:
            await notifier.send(channel, "guardd test message", f"A test from guardd on {os.uname().nodename}.", "info")
            print(f"ok      {channel.display}")
        except DeliveryError as exc:
            failed += 1
            reason = str(exc).removeprefix(f"{channel.display}: ")  # the notifier is named once, first
            print(f"FAILED  {channel.display}: {reason}" + (" (permanent)" if exc.permanent else ""))
    return 1 if failed else 0


async def cmd_config(args: Namespace) -> int:
    from guardd.adapters import notifier
    from guardd.errors import ConfigError

    config = load(args)
    problems = []
    for i, n in enumerate(config.settings.notifiers):
        why = notifier.check_url(n.url.get_secret_value())
        if why:
            problems.append(f"{config.path or 'defaults'}: notifiers[{i}].url: {why}")
    if problems:
        raise ConfigError(problems)
    for warning in config.hygiene_warnings() + _account_warnings(config) + await _store_warnings(config):
        print(f"guardd: warning: {warning}", file=sys.stderr)
    print(json.dumps(config.effective(), indent=2))
    print(f"configuration OK ({config.path or 'built-in defaults'})", file=sys.stderr)
    return 0


def _account_warnings(config: Config) -> list[str]:
    """Budgets that read OpenRouter for the whole account while no management key lists its keys: only the
    polled keys would be counted (review F17)."""
    section = config.settings.openrouter
    if section is None or not config.budgets:
        return []
    from guardd.core.redact import mask
    from guardd.services.openrouter.view import account_warnings

    polled = [mask(key) for key in section.all_keys()]
    lines = account_warnings(config.budgets, config.has_management_key, polled)
    return [f"{config.path or 'defaults'}: {line}" for line in lines]


async def _store_warnings(config: Config) -> list[str]:
    """What the stored state says of the file (nothing stored yet: nothing to say): key patterns that match none
    of the OpenRouter keys guardd stored, and budget matches that select none of the series ever stored."""
    if config.settings.store.url is None and not config.db_path.exists():
        return []
    from guardd.app import open_app
    from guardd.services.openrouter.view import unmatched_keys

    try:
        async with open_app(config, readonly=True) as app:
            known = await app.view.known_keys() if app.view is not None else []
            gaps = [(i, app.evaluator.never_matched(b)) for i, b in enumerate(config.budgets)]
    except GuarddError:
        return []  # an unreadable or older state says nothing; config check still checks the file
    lines = unmatched_keys(config.budgets, known) + [
        f"budgets[{i}].match: {gap.message}" + ("" if gap.level == "warning" else " (nothing stored matches it yet)")
        for i, gap in gaps
        if gap is not None
    ]
    return [f"{config.path or 'defaults'}: {line}" for line in lines]


async def cmd_history(args: Namespace) -> int:
    from guardd.services import report

    async with opened(args, readonly=True) as ctx:
        since = report.parse_when(args.since, ctx.config.zone, datetime.now(UTC)) if args.since else None
        rows = await ctx.state.history(since, args.limit)
    entries = [
        {"at": h.at.astimezone(UTC).isoformat(), "kind": h.kind, "budget": h.budget, "detail": h.detail} for h in rows
    ]
    if args.json:
        print(json.dumps(entries, indent=2))
    else:
        for e in entries:
            at = render.when(e["at"], ctx.config.timezone)
            print(f"{at}  {e['kind']:9} {e['budget'] or '-':16} {e['detail']}")
        if not entries:
            print("no history yet")
    return 0


async def cmd_advise(args: Namespace) -> int:
    """``guardd advise`` (:mod:`guardd.cli.advise`, imported only for this command)."""
    from guardd.cli.advise import cmd_advise as run

    return await run(args)


async def cmd_quarantine(args: Namespace) -> int:
    """``guardd quarantine`` (:mod:`guardd.cli.quarantine`, imported only for this command)."""
    from guardd.cli.quarantine import cmd_quarantine as run

    return await run(args)


async def cmd_store(args: Namespace) -> int:
    """``guardd store`` (:mod:`guardd.cli.store`, imported only for this command)."""
    from guardd.cli.store import cmd_store as run

    return await run(args)
