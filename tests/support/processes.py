"""Finding a process's descendants on Linux, from ``/proc`` (for tests and benchmarks of ``guardd ingest``,
whose parsing workers are children of a forkserver that is a child of the command)."""

from __future__ import annotations

import os
from pathlib import Path


def descendants(root: int) -> list[list[int]]:
    """Return the descendants of ``root`` by generation: its children, then their children, and so on."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue  # it exited meanwhile
            ppid = int(stat.rsplit(")", 1)[1].split()[1])  # the name in parentheses may hold spaces
            children.setdefault(ppid, []).append(int(entry))
    generations: list[list[int]] = []
    current = children.get(root, [])
    while current:
        generations.append(current)
        current = [pid for parent in current for pid in children.get(parent, [])]
    return generations
