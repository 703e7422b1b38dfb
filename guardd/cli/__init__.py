"""The ``guardd`` command line (contract §4). Only this package turns exceptions into exit codes.

Exit codes: 0 success, 1 runtime error, 2 usage error, 75 recorded but not applied yet (``killswitch
trip|release`` on a shared store when no leader applied it in time: sysexits' EX_TEMPFAIL, as 78 is its
EX_CONFIG), 78 configuration error; ``check`` uses the monitoring-plugin codes 0/1/2/3 instead. Global options
(``-c``, ``-v``) are accepted before or after the command.
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
import gc  # noqa: E402
import os  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from datetime import timedelta  # noqa: E402

from guardd import __version__  # noqa: E402
from guardd.core.periods import parse_duration  # noqa: E402
from guardd.errors import ConfigError, GuarddError, NotApplied, UsageError  # noqa: E402

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_TEMPFAIL, EXIT_CONFIG = 0, 1, 2, 75, 78
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 130, 141
ONE_SHOT_READS = frozenset({"status", "check"})
"""Commands that only read and end at once (``status`` without ``--watch``): they run without the cycle collector."""


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


def _run(p: argparse.ArgumentParser) -> None:
    p.add_argument("--once", action="store_true", help="one full cycle, then exit")
    p.add_argument("--dry-run", action="store_true", help="decide everything, change and send nothing")


def _status(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")
    p.add_argument("--budget", metavar="NAME")
    p.add_argument("--watch", action="store_true", help="redraw in place until Ctrl-C")
    p.add_argument("--every", metavar="DURATION", help="with --watch: how often to redraw (default 2s)")


def _check(p: argparse.ArgumentParser) -> None:
    p.add_argument("--budget", metavar="NAME")


def _ingest(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument(
        "--format",
        default=None,
        choices=["auto", "guardd", "openrouter", "record"],
        help="default: the format of the [[ledgers]] entry that covers the file, else auto",
    )
    p.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="K=V",
        help="added to every event; on a file a [[ledgers]] entry covers, added to its labels (and wins on a key)",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="processes that parse large files (default: one per core, for files of 32 MiB and more; 0: none)",
    )


def _report(p: argparse.ArgumentParser) -> None:
    p.add_argument("--by", default="model", metavar="model|key|provider|day|label:NAME")
    p.add_argument("--since", metavar="DATE")
    p.add_argument("--until", metavar="DATE")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--csv", action="store_true")


def _killswitch(p: argparse.ArgumentParser) -> None:
    p.epilog = (
        "On a shared store ([store] url) only the leader decides the switch: trip and release record the override "
        "and wait up to 15 s for the leader to apply it, then print the switch it committed. When no leader applies "
        "it in time, the command exits 75: the override stays recorded, and the leader applies it when one runs."
    )
    p.add_argument("action", choices=["show", "trip", "release"])
    p.add_argument("--budget", metavar="NAME")
    p.add_argument("--reason", default="", metavar="TEXT")
    p.add_argument("--for", dest="duration", type=_duration, metavar="DURATION")
    p.add_argument("--json", action="store_true")


def _silence(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["add", "list", "remove"])
    p.add_argument("id", nargs="?", type=int, metavar="ID")
    p.add_argument("--budget", metavar="NAME")
    p.add_argument("--for", dest="duration", type=_duration, metavar="DURATION")
    p.add_argument("--reason", default="", metavar="TEXT")
    p.add_argument("--json", action="store_true")


def _notify(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["test"])
    p.add_argument("--tag", metavar="TAG")


def _config(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["check"])


def _advise(p: argparse.ArgumentParser) -> None:
    p.add_argument("--budget", metavar="NAME")
    p.add_argument("--since", metavar="DATE")
    p.add_argument("--until", metavar="DATE")
    p.add_argument("--json", action="store_true")


def _history(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", metavar="DATE")
    p.add_argument("--json", action="store_true")
    p.add_argument("--limit", type=int, default=200)


def _quarantine(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", metavar="DATE")
    p.add_argument("--ledger", metavar="PATH", help="a ledger file, or a glob")
    p.add_argument("--json", action="store_true")


def _store(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["copy", "forget"])
    p.add_argument("instance", nargs="?", metavar="NAME", help="forget: the instance that will not come back")
    p.epilog = (
        "copy: the target (a shared store that holds no guardd data yet) is named by exactly one of --to, --to-env "
        "and --to-file. A password in --to is visible to every user of this host (ps, /proc) and stays in the "
        "shell's history: give such a URL through --to-env or --to-file instead. forget NAME: on a shared store, "
        "count an instance that died without a clean stop and will not return as stopped, so that status and "
        "check stop warning that its ledgers are not counted (refused while it runs)."
    )
    target = p.add_mutually_exclusive_group()
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


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "run": ("run the daemon in the foreground", _run),
    "status": ("every budget and window, the switch, sources and notifiers", _status),
    "check": ("one line and perfdata; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN", _check),
    "ingest": ("one-shot, idempotent backfill of ledger files", _ingest),
    "report": ("spend breakdown", _report),
    "killswitch": ("show, trip or release the kill-switch by hand", _killswitch),
    "silence": ("mute notifications of a budget for a while", _silence),
    "notify": ("send a test message through each notifier", _notify),
    "config": ("validate and print the effective configuration", _config),
    "advise": ("what the spend would have cost on each budget's suggest models", _advise),
    "history": ("alert transitions, switch changes and overrides, newest first", _history),
    "quarantine": ("the ledger lines that were set aside: file, offset, reason, excerpt, when", _quarantine),
    "store": (
        "copy this state (SQLite) into a shared store (PostgreSQL), losing nothing; forget an instance that is gone",
        _store,
    ),
}
"""Every command: its help and what adds its arguments."""


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command line's parser. Given the ``argv`` it will parse, only the command named there gets its options
    (when exactly one word of ``argv`` names a command, that word is the command: subcommands are matched
    exactly), since argparse's cost is per option and a short command pays it at every start; every command is
    still listed, so help and errors read the same."""
    named = {word for word in argv or () if word in COMMANDS}
    only = named.pop() if argv is not None and len(named) == 1 else None
    parser = _Parser(prog="guardd", description="A budget guard for LLM API spend.")
    _globals(parser, suppress=False)
    parser.add_argument("--version", action="version", version=f"guardd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, (help_text, arguments) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or name == only:
            _globals(p, suppress=True)
            p.add_argument("--version", action="version", version=f"guardd {__version__}")
            arguments(p)
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
    words = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(words).parse_args(words)
    collecting = gc.isenabled()
    if args.command in ONE_SHOT_READS and not getattr(args, "watch", False):
        # A short command that only reads: the cycle collector would only walk the objects its imports made
        # (≈ 3 % of status's instructions); what it leaves is freed when the process ends, moments later.
        gc.disable()
    try:
        return _dispatch(args)
    finally:
        if collecting:
            gc.enable()  # as it was, for a caller that goes on (the tests call main in their own process)


def _dispatch(args: argparse.Namespace) -> int:
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
    except NotApplied as exc:  # recorded in the shared store; the leader applies it when one runs
        print(f"guardd: {exc}", file=sys.stderr)
        return EXIT_TEMPFAIL
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
