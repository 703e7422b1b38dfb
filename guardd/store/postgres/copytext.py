"""The ``COPY`` text a batch is written into PostgreSQL with (:mod:`guardd.store.postgres.ingest`): its events'
lines and its hour rollups' lines.

Two builders give the same bytes: the C extension :mod:`guardd.store.postgres._copytext` (built at install where a
compiler, the Python headers and OpenSSL's headers are found) and the Python functions here, :func:`py_copy_text`
and :func:`py_rollup_text`, which are the reference (a property test holds the two identical) and the fallback.
:func:`copy_text` and :func:`rollup_text` take the C one unless it is not built or ``GUARDD_NO_C_PARSE=1`` (the
switch that also turns off the C parser: one variable rules the C code out). Building the text in Python was ≈ 2.9
of the ≈ 3.2 µs of client CPU a line of ``PgEventStore.write_batch`` (``bench/pg_client_cpu.py``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable

from guardd.core.batch import Row

try:
    from guardd.store.postgres import _copytext
except ImportError:  # not built (no compiler, headers or OpenSSL): the Python builders, the same bytes
    _copytext = None  # type: ignore[assignment]

GLOBAL_KINDS = ("g:", "s:")
"""Keys that name a request wherever it is read (contract §9: an id counts once across all instances): a generation
id (``g:``) and a generation id that looked like a secret, stored as its hash (``s:``)."""


def stored_key(k: str, instance: str) -> str:
    """Return the stored key of a batch key: ids (:data:`GLOBAL_KINDS`) as they are, line hashes under
    ``instance`` (``h:<instance>:…``), so that two hosts' identical lines in their own files stay two events."""
    return k if k.startswith(GLOBAL_KINDS) else f"h:{instance}:{k[2:]}"


def c_copy_text() -> bool:
    """True when the C builder is used: it is built and ``GUARDD_NO_C_PARSE`` is not set to 1."""
    return _copytext is not None and os.environ.get("GUARDD_NO_C_PARSE", "") != "1"


def copy_text(rows: Iterable[Row], instance: str) -> bytes:
    """:func:`py_copy_text`, by the C builder when it is used (:func:`c_copy_text`)."""
    if c_copy_text():
        return _copytext.copy_text(rows, instance)
    return py_copy_text(rows, instance)


def rollup_text(hours: dict[tuple[int, int], list[int]]) -> bytes:
    """:func:`py_rollup_text`, by the C builder when it is used (:func:`c_copy_text`)."""
    if c_copy_text():
        return _copytext.rollup_text(hours)
    return py_rollup_text(hours)


def py_copy_text(rows: Iterable[Row], instance: str) -> bytes:
    """Return the ``COPY … FROM STDIN`` text of ``rows`` as lines of ``events``' columns (``h, k, ts, series,
    cost, instance``), in key-hash order (the order every writer takes the keys' locks in, and the unique index's):
    the key hash (:func:`~guardd.store.postgres.ingest.event_hash`), the key as stored (:func:`stored_key`), time,
    series, the exact cost in dollars (``\\N`` when unpriced) and ``instance``. Only the key and the instance are
    free text: they are escaped as COPY's text format requires when they hold a backslash, tab, newline or carriage
    return. Rows with one hash keep their order. The reference of the C builder: change both or neither."""
    md5, from_bytes = hashlib.md5, int.from_bytes
    prefix = f"h:{instance}:"
    tail = f"\t{_escaped(instance)}\n"
    hashes: list[int] = []
    lines: list[str] = []
    add_hash, add_line = hashes.append, lines.append
    for k, ts, series, cost, _prompt, _completion, _reasoning, _cached in rows:  # no ``*_``: a list a row
        sk = k if k.startswith(GLOBAL_KINDS) else prefix + k[2:]
        h = from_bytes(md5(sk.encode(), usedforsecurity=False).digest()[:8], "big", signed=True)
        if "\\" in sk or not sk.isprintable():  # tab, newline and carriage return are not printable
            sk = _escaped(sk)
        add_hash(h)
        if cost is None:
            add_line(f"{h}\t{sk}\t{ts}\t{series}\t\\N{tail}")
        else:  # pico-dollars as exact dollars: "1234000e-12" reads as 0.000001234000 (scale 12, as cost * 1e-12)
            add_line(f"{h}\t{sk}\t{ts}\t{series}\t{cost}e-12{tail}")
    order = sorted(range(len(hashes)), key=hashes.__getitem__)  # sorting ints: ≈ 1 µs a row less than tuples
    return "".join([lines[i] for i in order]).encode()


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def py_rollup_text(hours: dict[tuple[int, int], list[int]]) -> bytes:
    """Return the COPY text of the hour deltas as ``(hour, series, *entry)`` rows, all-zero ones left out (the
    UTC-day deltas are summed from them by the database). The reference of the C builder."""
    return "".join(
        [
            f"{hour}\t{series}\t{e[0]}\t{e[1]}\t{e[2]}\t{e[3]}\t{e[4]}\t{e[5]}\t{e[6]}\n"
            for (hour, series), e in hours.items()
            if e[1] or any(e)
        ]
    ).encode()
