"""The kill-switch file (contract §3): written atomically so a client never reads half a document.

Temporary file in the same folder, ``fsync``, ``rename`` over the target, ``fsync`` of the folder. Mode 0644 less
the umask, or exactly ``killswitch.mode``; owned by ``killswitch.group`` when set, so that client programs in that
group read it whatever the service's umask (``UMask=0027``); only guardd writes it.
"""

from __future__ import annotations

import grp
import json
import os
from pathlib import Path
from typing import Any

from guardd.errors import SwitchFileError


def write_atomic(path: Path, document: dict[str, Any], mode: int | None = None, group: str | None = None) -> None:
    """Replace ``path`` with ``document`` as JSON, atomically and durably, with ``mode`` and ``group`` when given.

    A folder it creates for the file gets ``group`` and mode 0750, so that the group's members reach the file.
    Raise :class:`SwitchFileError` when it cannot be written (the previous document, if any, is then left as it
    was), the group does not exist, or guardd may not give the file to it.
    """
    try:
        _write(path, document, mode, group)
    except OSError as exc:
        raise SwitchFileError(f"cannot write the kill-switch file {path}: {exc.strerror or exc}") from exc


def _write(path: Path, document: dict[str, Any], mode: int | None, group: str | None) -> None:
    gid = _gid(group)
    if not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        if gid != -1:
            _give(path.parent, gid, 0o750, group)
    data = (json.dumps(document, indent=2, sort_keys=False) + "\n").encode()
    import tempfile  # only a writer needs it (random, hashlib): not the commands that read the switch

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        _give(Path(tmp), gid, mode if mode is not None else 0o644 & ~_umask(), group)
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


def _gid(group: str | None) -> int:
    if group is None:
        return -1
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise SwitchFileError(f"killswitch.group: there is no group named {group!r}") from None


def _give(path: Path, gid: int, mode: int, group: str | None) -> None:
    if gid != -1:
        try:
            os.chown(path, -1, gid)
        except PermissionError:
            raise SwitchFileError(
                f"cannot give {path} to group {group!r}: guardd's user must be a member of it"
            ) from None
    os.chmod(path, mode)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
