"""The kill-switch file (contract §3): written atomically so a client never reads half a document.

Temporary file in the same folder, ``fsync``, ``rename`` over the target, ``fsync`` of the folder. Mode 0644 (or
what the umask allows): clients in the ledger group read it; only guardd writes it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from guardd.errors import SwitchFileError


def write_atomic(path: Path, document: dict[str, Any]) -> None:
    """Replace ``path`` with ``document`` as JSON, atomically and durably. Raise :class:`SwitchFileError` when it
    cannot be written (the previous document, if any, is then left as it was)."""
    try:
        _write(path, document)
    except OSError as exc:
        raise SwitchFileError(f"cannot write the kill-switch file {path}: {exc.strerror or exc}") from exc


def _write(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(document, indent=2, sort_keys=False) + "\n").encode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read(path: Path) -> dict[str, Any] | None:
    """Return the switch document at ``path``, None when there is none; raise SwitchFileError when unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SwitchFileError(f"cannot read the kill-switch file {path}: {exc.strerror}") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SwitchFileError(f"the kill-switch file {path} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise SwitchFileError(f"the kill-switch file {path} is not a JSON object")
    return doc


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
