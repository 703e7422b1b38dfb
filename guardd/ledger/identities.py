"""The identities of the files a host's ledger patterns name now: what the store knows a file by (device, inode,
fingerprint of its first line), without opening a tailer. A shared store compares them at start with the files
other instance names read (:meth:`guardd.daemon.cluster.Cluster.join`)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable

from guardd.ledger.discovery import find
from guardd.ledger.lines import fingerprint
from guardd.store.api.rows_cluster import FileIdentity


def file_identities(patterns: Iterable[str]) -> list[FileIdentity]:
    """Return the identity of every regular file ``patterns`` match now whose first line is complete (a file
    without one has no fingerprint yet, and nothing read from it). Files that cannot be opened are left out:
    the tailer says why when it meets them."""
    out: dict[tuple[int, int], FileIdentity] = {}
    for pattern in patterns:
        for path in find(pattern).paths:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                st = os.fstat(fd)
                fp = fingerprint(fd) if stat.S_ISREG(st.st_mode) else None
            except OSError:
                fp = None
            finally:
                os.close(fd)
            if fp is not None:
                out.setdefault((st.st_dev, st.st_ino), FileIdentity(path, st.st_dev, st.st_ino, fp))
    return list(out.values())
