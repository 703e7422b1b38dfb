"""The ``guardd`` command line (contract §4). Only this package turns exceptions into exit codes.

Exit codes: 0 success, 1 runtime error, 2 usage error, 78 configuration error; ``check`` uses the
monitoring-plugin codes 0/1/2/3 instead. Global options (``-c``, ``-v``) are accepted before or after the command.
"""

from __future__ import annotations

import sys
from types import TracebackType


def _quiet_interrupt(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    """Ctrl-C while the command is still importing: no traceback (the process still ends as interrupted)."""
    if not issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, tb)


sys.excepthook = _quiet_interrupt

import argparse  # noqa: E402 - after the hook, so that an interrupt while importing is quiet
import asyncio  # noqa: E402
import os  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from datetime import timedelta  # noqa: E402

from guardd import __version__  # noqa: E402
from guardd.core.periods import parse_duration  # noqa: E402
from guardd.errors import ConfigError, GuarddError, UsageError  # noqa: E402

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_CONFIG = 0, 1, 2, 78
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 130, 141


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        """Print one line naming the mistake and where help is, then exit 2 (a usage error)."""
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _duration(text: str) -> timedelta:
    """An argparse type: a duration with a unit (``90s``, ``10m``, ``4h``, ``1d``), else a usage error."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _globals(parser: argparse.ArgumentParser, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("-c", "--config", metavar="PATH", default=default, help="configuration file")
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS if suppress else False, help="debug logging"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="guardd", description="A budget guard for LLM API spend.")
    _globals(parser, suppress=False)
    parser.add_argument("--version", action="version", version=f"guardd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        _globals(p, suppress=True)
        p.add_argument("--version", action="version", version=f"guardd {__version__}")
        return p

    run = command("run", "run the daemon in the foreground")
    run.add_argument("--once", action="store_true", help="one full cycle, then exit")
    run.add_argument("--dry-run", action="store_true", help="decide everything, change and send nothing")

    status = command("status", "every budget and window, the switch, sources and notifiers")
    status.add_argument("--json", action="store_true")
    status.add_argument("--budget", metavar="NAME")
    status.add_argument("--watch", action="store_true", help="redraw in place until Ctrl-C")
    status.add_argument("--every", metavar="DURATION", help="with --watch: how often to redraw (default 2s)")

    check = command("check", "one line and perfdata; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN")
    check.add_argument("--budget", metavar="NAME")

    ingest = command("ingest", "one-shot, idempotent backfill of ledger files")
    ingest.add_argument("paths", nargs="+", metavar="PATH")
    ingest.add_argument("--format", default="auto", choices=["auto", "guardd", "openrouter", "record"])
    ingest.add_argument("--label", action="append", default=[], metavar="K=V")
    ingest.add_argument("--json", action="store_true")
    ingest.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="processes that parse large files (default: one per core, for files of 32 MiB and more; 0: none)",
    )

    report = command("report", "spend breakdown")
    report.add_argument("--by", default="model", metavar="model|key|provider|day|label:NAME")
    report.add_argument("--since", metavar="DATE")
    report.add_argument("--until", metavar="DATE")
    fmt = report.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--csv", action="store_true")

    ks = command("killswitch", "show, trip or release the kill-switch by hand")
    ks.add_argument("action", choices=["show", "trip", "release"])
    ks.add_argument("--budget", metavar="NAME")
    ks.add_argument("--reason", default="", metavar="TEXT")
    ks.add_argument("--for", dest="duration", type=_duration, metavar="DURATION")
    ks.add_argument("--json", action="store_true")

    silence = command("silence", "mute notifications of a budget for a while")
    silence.add_argument("action", choices=["add", "list", "remove"])
    silence.add_argument("id", nargs="?", type=int, metavar="ID")
    silence.add_argument("--budget", metavar="NAME")
    silence.add_argument("--for", dest="duration", type=_duration, metavar="DURATION")
    silence.add_argument("--reason", default="", metavar="TEXT")
    silence.add_argument("--json", action="store_true")

    notify = command("notify", "send a test message through each notifier")
    notify.add_argument("action", choices=["test"])
    notify.add_argument("--tag", metavar="TAG")

    config = command("config", "validate and print the effective configuration")
    config.add_argument("action", choices=["check"])

    advise = command("advise", "what the spend would have cost on each budget's suggest models")
    advise.add_argument("--budget", metavar="NAME")
    advise.add_argument("--since", metavar="DATE")
    advise.add_argument("--until", metavar="DATE")
    advise.add_argument("--json", action="store_true")

    history = command("history", "alert transitions, switch changes and overrides, newest first")
    history.add_argument("--since", metavar="DATE")
    history.add_argument("--json", action="store_true")
    history.add_argument("--limit", type=int, default=200)

    quarantine = command("quarantine", "the ledger lines that were set aside: file, offset, reason, excerpt, when")
    quarantine.add_argument("--since", metavar="DATE")
    quarantine.add_argument("--ledger", metavar="PATH", help="a ledger file, or a glob")
    quarantine.add_argument("--json", action="store_true")

    store = command("store", "copy this state (SQLite) into a shared store (PostgreSQL), losing nothing")
    store.add_argument("action", choices=["copy"])
    store.epilog = (
        "The target (a shared store that holds no guardd data yet) is named by exactly one of --to, --to-env and "
        "--to-file. A password in --to is visible to every user of this host (ps, /proc) and stays in the shell's "
        "history: give such a URL through --to-env or --to-file instead."
    )
    target = store.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--to",
        metavar="URL",
        help="the shared store's URL, postgresql://USER@HOST/DATABASE (a password here shows in ps)",
    )
    target.add_argument(
        "--to-env", metavar="VAR", help="read the URL from the environment variable VAR (e.g. GUARDD_STORE__URL)"
    )
    target.add_argument(
        "--to-file", metavar="PATH", help="read the URL from the file PATH (one line; - reads standard input)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``guardd`` console script; returns the exit code.

    No traceback reaches the user for a mistake or a signal: Ctrl-C at any moment is 130, a reader that went away
    (``guardd history | head``) ends the output quietly (141, as a program killed by SIGPIPE).
    """
    try:
        return _main(argv)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    from guardd import logs

    logs.setup(args.verbose)
    from guardd.cli import commands

    handler = getattr(commands, f"cmd_{args.command}")
    try:
        return int(asyncio.run(handler(args)))
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"guardd: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except UsageError as exc:
        print(f"guardd: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except GuarddError as exc:
        print(f"guardd: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush cannot fail on the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def entry() -> None:
    code = main()
    try:
        sys.stdout.flush()  # what is still buffered goes now, while a closed pipe can be handled
    except BrokenPipeError:
        _silence_stdout()
        code = EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    sys.exit(code)
