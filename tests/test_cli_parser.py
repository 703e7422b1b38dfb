"""The command line's parser: built with only the named command's options (argparse's cost is per option, paid at
every start), it reads every command line, help and error exactly as the whole parser does."""

from __future__ import annotations

import contextlib
import io

import pytest

from guardd.cli import COMMANDS, build_parser

LINES = [
    ["status", "--json", "-c", "g.toml"],
    ["-c", "g.toml", "-v", "status", "--budget", "check"],  # a value that names another command: the whole parser
    ["check", "--budget", "a"],
    ["ingest", "a.jsonl", "b.jsonl", "--label", "team=x", "--workers", "0"],
    ["report", "--by", "day", "--csv"],
    ["killswitch", "trip", "--for", "10m", "--reason", "x"],
    ["silence", "add", "--budget", "a", "--for", "1h"],
    ["silence", "remove", "3"],
    ["history", "--limit", "5"],
    ["store", "copy", "--to", "postgresql://u@h/d"],
    ["-c", "status"],
    ["status", "--bogus"],
    ["report", "--json", "--csv"],
    ["nothing"],
    ["--help"],
    ["report", "--help"],
    ["killswitch", "--version"],
]


def parsed(argv: list[str], words: list[str] | None) -> tuple[str, int, str]:
    """What parsing ``argv`` prints, how it ends and what it reads (parser built for ``words``)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            args = build_parser(words).parse_args(argv)
        except SystemExit as exc:
            return out.getvalue(), int(exc.code or 0), ""
    return out.getvalue(), -1, repr(sorted(vars(args).items()))


@pytest.mark.parametrize("argv", LINES, ids=[" ".join(line) for line in LINES])
def test_a_parser_built_for_the_named_command_reads_the_line_as_the_whole_parser(argv: list[str]) -> None:
    assert parsed(argv, argv) == parsed(argv, None)


def test_every_command_is_listed_whichever_is_named() -> None:
    help_text = build_parser(["status"]).format_help()
    assert all(name in help_text for name in COMMANDS)
