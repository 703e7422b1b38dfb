"""``guardd store copy --to URL``: move this host's SQLite state into a shared PostgreSQL store (contract §9);
``guardd store forget NAME``: retire an instance of a shared store that died without a clean stop (see
:func:`cmd_forget`).

The URL comes from ``--to URL``, or — keeping a password off the command line, where every user of the host can
read it — from ``--to-env VAR`` (an environment variable) or ``--to-file PATH`` (``-``: standard input).

Exit 0 when everything was copied and checked, 1 when it was refused or failed (nothing changed in the target):
the target already holds guardd data, a daemon runs on this state, there is no state, or either database failed.
The URL is shown redacted (no piece of its password) in every line this command prints.
"""

from __future__ import annotations

import os
import sys
from argparse import Namespace
from pathlib import Path

from guardd.cli.render import plural
from guardd.core.money import format_human
from guardd.core.redact import store_secrets
from guardd.errors import UsageError


async def cmd_store(args: Namespace) -> int:
    from guardd.cli.commands import load
    from guardd.services.store_copy import copy_state_dir, redacted

    if args.action == "forget":
        return await cmd_forget(args)
    if args.instance is not None:
        raise UsageError(f"store copy takes no instance name (got {args.instance!r})")
    if args.to is None and args.to_env is None and args.to_file is None:
        raise UsageError("store copy needs its target: one of --to URL, --to-env VAR or --to-file PATH")
    config = load(args)
    url = target_url(args)
    if args.to is not None and store_secrets(url):
        print(
            "guardd: warning: the password in --to is visible to every user of this host (ps) and kept in your "
            "shell's history; use --to-env VAR or --to-file PATH next time",
            file=sys.stderr,
        )
    progress = _Progress() if sys.stderr.isatty() else None
    try:
        result = await copy_state_dir(config.state_dir, config.db_path, url, config.instance, progress)
    finally:
        if progress is not None:
            progress.done()
    checkpoints = result.tables["files"].rows if "files" in result.tables else 0
    print(
        f"copied {config.db_path} into {redacted(url)} in {result.seconds:.1f}s: {result.rows} rows; "
        f"instance {result.instance!r} owns its {plural(checkpoints, 'checkpoint')}"
    )
    width = max((len(name) for name in result.tables), default=0)
    for name, table in result.tables.items():
        if not table.rows:
            continue
        money = "".join(f"  {column} {format_human(total)}" for column, total in table.money.items())
        print(f"  {name:<{width}} {table.rows:>12}{money}")
    print("checked: every table holds as many rows and exactly as much money in the shared store as here.")
    print(
        f'next: set [store] url (and [guardd] instance = "{result.instance}" if that is not the host name) on this '
        "host, and start guardd; it reads its ledgers on from where this state stopped."
    )
    return 0


async def cmd_forget(args: Namespace) -> int:
    """``guardd store forget NAME``: an instance that died without a clean stop (its host killed, never to
    return) is warned of by ``status`` and ``check`` for ever — its ledgers are not counted. This counts it as
    stopped. Exit 0 when forgotten (or already stopped), 1 when refused (it reached the store within the last
    seconds, or no instance has that name)."""
    from guardd.cli.commands import opened
    from guardd.store.api import Forgotten

    if args.instance is None:
        raise UsageError("store forget needs the name of the instance (see guardd status: cluster)")
    if args.to is not None or args.to_env is not None or args.to_file is not None:
        raise UsageError("store forget takes no target: it works on the store of this configuration")
    async with opened(args) as ctx:
        cluster = ctx.stores.cluster
        if cluster is None:
            raise UsageError("store forget is for a shared store ([store] url): this configuration has none")
        outcome = await cluster.forget(args.instance)
    name = args.instance
    if outcome is Forgotten.FORGOTTEN:
        print(f"forgot instance {name!r}: it counts as stopped; if it starts again it joins as any restart does")
        return 0
    if outcome is Forgotten.STOPPED:
        print(f"instance {name!r} stopped already: nothing to forget")
        return 0
    if outcome is Forgotten.RUNNING:
        print(
            f"guardd: instance {name!r} reached the store within the last seconds: it runs, not forgotten",
            file=sys.stderr,
        )
    else:
        print(f"guardd: no instance named {name!r} in this store (see guardd status: cluster)", file=sys.stderr)
    return 1


def target_url(args: Namespace) -> str:
    """The target's URL from ``--to``, ``--to-env`` or ``--to-file`` (one of them is given); UsageError when the
    variable or file holds none."""
    if args.to is not None:
        return str(args.to)
    if args.to_env is not None:
        value = os.environ.get(args.to_env, "").strip()
        if not value:
            raise UsageError(f"--to-env {args.to_env}: that environment variable is not set or empty")
        return value
    where = "standard input" if args.to_file == "-" else args.to_file
    try:
        text = sys.stdin.read() if args.to_file == "-" else Path(args.to_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--to-file: cannot read {where}: {getattr(exc, 'strerror', None) or exc}") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise UsageError(f"--to-file: {where} must hold the URL on one line (it holds {len(lines)} non-empty lines)")
    return lines[0]


class _Progress:
    """One line on a terminal's stderr, rewritten in place: the table being copied and its rows so far."""

    def __init__(self) -> None:
        self.shown = False

    def __call__(self, table: str, rows: int) -> None:
        print(f"\rcopying {table}: {rows} rows\033[K", end="", file=sys.stderr, flush=True)
        self.shown = True

    def done(self) -> None:
        if self.shown:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
