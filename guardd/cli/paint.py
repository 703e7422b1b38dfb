"""Colour and styles for human output on a terminal, through ``rich``: none when piped or with ``NO_COLOR``."""

from __future__ import annotations

import sys

STYLES = {
    r"\[OK\]|\bok\b|\bopen\b": "green",
    r"\[WARNING\]|\bwarning( \(forecast\))?|CLUSTER WARNING": "yellow",
    r"\[CRITICAL\]|\[TRIPPED\]|\bTRIPPED\b|\bcritical\b|\btripped\b"
    r"|GUARD DOWN|STORE FAILING|FAILING|UNREADABLE": "bold red",
    r"\[STALE\]|\bstale\b|STALE|\(partial\)": "magenta",
}


def emit(text: str) -> None:
    """Print ``text``; on a terminal (and without ``NO_COLOR``) states are coloured: ok green, warning yellow,
    critical and tripped red, stale magenta. Piped output stays plain text, byte for byte."""
    if not sys.stdout.isatty():
        print(text)
        return
    from rich.console import Console
    from rich.text import Text

    styled = Text(text)
    for pattern, style in STYLES.items():
        styled.highlight_regex(pattern, style)
    Console(highlight=False, soft_wrap=True).print(styled)
