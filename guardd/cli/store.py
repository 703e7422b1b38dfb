"""``guardd store copy --to URL``: move this host's SQLite state into a shared PostgreSQL store (contract §9).

Exit 0 when everything was copied and checked, 1 when it was refused or failed (nothing changed in the target):
the target already holds guardd data, a daemon runs on this state, there is no state, or either database failed.
The URL is shown redacted (no piece of its password) in every line this command prints.
"""

from __future__ import annotations

import sys
from argparse import Namespace

from guardd.cli.render import plural
from guardd.core.money import format_human


async def cmd_store(args: Namespace) -> int:
    from guardd.cli.commands import load
    from guardd.services.store_copy import copy_state_dir, redacted

    config = load(args)
    progress = _Progress() if sys.stderr.isatty() else None
    try:
        result = await copy_state_dir(config.state_dir, config.db_path, args.to, config.instance, progress)
    finally:
        if progress is not None:
            progress.done()
    checkpoints = result.tables["files"].rows if "files" in result.tables else 0
    print(
        f"copied {config.db_path} into {redacted(args.to)} in {result.seconds:.1f}s: {result.rows} rows; "
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
