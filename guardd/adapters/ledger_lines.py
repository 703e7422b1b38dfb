"""Reading ledger files: complete lines in bounded memory, and parsing each into an event row or a quarantine row.

A file's *fingerprint* is a hash of its first line (at most its first 1 KiB): stable once that line is complete,
because ledgers are append-only. Events without a generation id are keyed by a hash of (fingerprint, offset,
line), so re-reading any part of a file — after a crash, a rewrite, or from a rotated copy — finds the same keys
and counts nothing twice.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated

import msgspec

from guardd.adapters.events_store import EventRow, QuarantinedLine, series_sig
from guardd.core.money import Money
from guardd.core.redact import redact_text
from guardd.core.usage import BadLine, clean_key, event_from_record, parse_cost, parse_ts

CHUNK = 1 << 20
MAX_LINE = 1 << 20
FINGERPRINT_BYTES = 1024
EXCERPT = 200
TAIL_BYTES = 64


def fingerprint(fd: int) -> str | None:
    """Return the fingerprint of the open file ``fd``, or None while its first line is incomplete."""
    head = os.pread(fd, FINGERPRINT_BYTES, 0)
    newline = head.find(b"\n")
    if newline >= 0:
        head = head[: newline + 1]
    elif len(head) < FINGERPRINT_BYTES:
        return None
    return hashlib.blake2b(head, digest_size=10).hexdigest()


def tail_hash(fd: int, offset: int) -> str:
    """Return a hash of the bytes just before ``offset`` (to check, on resume, that the file was not rewritten)."""
    start = max(0, offset - TAIL_BYTES)
    return hashlib.blake2b(os.pread(fd, offset - start, start), digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True)
class Line:
    offset: int
    data: bytes | None  # None: the line is longer than MAX_LINE and was skipped unread


def iter_lines(fd: int, start: int, stop: int | None = None) -> Iterator[tuple[Line, int]]:
    """Yield every complete line of ``fd`` from ``start`` with the offset just after it.

    Memory stays under ``CHUNK + MAX_LINE`` whatever the file holds. A line longer than ``MAX_LINE`` is
    yielded once with ``data=None`` when its end is found; an unfinished last line is left for the next call.
    """
    pos = start
    buf = b""
    buf_start = start
    skipping = False
    while stop is None or pos < stop:
        want = CHUNK if stop is None else min(CHUNK, stop - pos)
        data = os.pread(fd, want, pos)
        if not data:
            return
        pos += len(data)
        if skipping:
            newline = data.find(b"\n")
            if newline < 0:
                continue
            yield Line(buf_start, None), pos - len(data) + newline + 1
            skipping = False
            buf = data[newline + 1 :]
            buf_start = pos - len(buf)
        else:
            buf += data
        cursor = 0
        while True:
            newline = buf.find(b"\n", cursor)
            if newline < 0:
                break
            if newline - cursor > MAX_LINE:
                yield Line(buf_start + cursor, None), buf_start + newline + 1
            else:
                yield Line(buf_start + cursor, buf[cursor:newline]), buf_start + newline + 1
            cursor = newline + 1
        buf = buf[cursor:]
        buf_start += cursor
        if len(buf) > MAX_LINE:
            skipping = True
            buf = b""


_Count = Annotated[int, msgspec.Meta(ge=0)]


class _Canonical(msgspec.Struct):
    """The canonical (``guardd``) line, type-checked by msgspec in C: the hot path of ingestion.

    Any line this cannot decode — another format, a float time, a wrong type — falls back to the generic
    parser of :mod:`guardd.core.usage`, which gives the exact quarantine reason. The fields that mark the other
    formats are declared so that such lines are never mistaken for canonical ones.
    """

    ts: str | int
    id: str | None = None
    model: str | None = None
    cost: Decimal | None = None
    prompt_tokens: _Count | None = None
    completion_tokens: _Count | None = None
    reasoning_tokens: _Count | None = None
    cached_tokens: _Count | None = None
    key: str | None = None
    provider: str | None = None
    labels: dict[str, str] | None = None
    ok: bool | None = None
    usage: msgspec.Raw | None = None
    response: msgspec.Raw | None = None
    performance: msgspec.Raw | None = None
    sessionId: msgspec.Raw | None = None


def key_hash(key: str) -> int:
    """Return the signed 64-bit hash of an event key that the store indexes for dedupe."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


class LineParser:
    """Turns raw lines of one ledger into :class:`EventRow` or :class:`QuarantinedLine` objects."""

    def __init__(self, fmt: str, labels: dict[str, str], max_event_cost: Money) -> None:
        self.fmt = fmt
        self.labels = labels
        self.max_event_cost = max_event_cost
        self._decoder = msgspec.json.Decoder(float_hook=Decimal)
        self._fast = msgspec.json.Decoder(_Canonical) if fmt in ("auto", "guardd") else None
        self._sigs: dict[tuple[object, ...], str] = {}

    def parse(self, line: Line, fp: str, path: str) -> EventRow | QuarantinedLine | None:
        """Return the row for ``line`` of the file with fingerprint ``fp``; None for a blank line."""
        data = line.data
        if data is None:
            return QuarantinedLine(fp, path, line.offset, f"line longer than {MAX_LINE} bytes", "")
        data = data.strip()
        if not data:
            return None
        if self._fast is not None:
            try:
                line_obj = self._fast.decode(data)
            except msgspec.ValidationError:
                pass
            except msgspec.DecodeError:
                return self._bad(fp, path, line, "not valid JSON", data)
            else:
                if (
                    line_obj.usage is None
                    and line_obj.response is None
                    and line_obj.performance is None
                    and (line_obj.sessionId is None)
                ):
                    try:
                        return self._canonical(line_obj, data, fp, line.offset)
                    except BadLine as exc:
                        return self._bad(fp, path, line, str(exc), data)
        return self._generic(data, fp, path, line)

    def _canonical(self, c: _Canonical, data: bytes, fp: str, offset: int) -> EventRow:
        labels = c.labels or {}
        if self.labels:
            labels = {**self.labels, **labels}
        key = c.key
        if key is not None and key[:3] in ("sk-", "rk-", "pk-"):
            key = clean_key(key)
        return self._row(
            c.id,
            data,
            fp,
            offset,
            parse_ts(c.ts),
            c.model or "unknown",
            key,
            c.provider,
            labels,
            parse_cost(c.cost, self.max_event_cost),
            c.prompt_tokens or 0,
            c.completion_tokens or 0,
            c.reasoning_tokens or 0,
            c.cached_tokens or 0,
            c.ok is not False,
        )

    def _generic(self, data: bytes, fp: str, path: str, line: Line) -> EventRow | QuarantinedLine:
        try:
            obj = self._decoder.decode(data)
        except msgspec.DecodeError:
            return self._bad(fp, path, line, "not valid JSON", data)
        try:
            ev = event_from_record(obj, self.fmt, self.max_event_cost, self.labels)
        except BadLine as exc:
            return self._bad(fp, path, line, str(exc), data)
        except (ValueError, TypeError, OverflowError, ArithmeticError) as exc:
            return self._bad(fp, path, line, f"wrong types: {exc}", data)
        return self._row(
            ev.id,
            data,
            fp,
            line.offset,
            ev.ts_ms,
            ev.model,
            ev.key,
            ev.provider,
            ev.labels,
            ev.cost,
            ev.prompt_tokens,
            ev.completion_tokens,
            ev.reasoning_tokens,
            ev.cached_tokens,
            ev.ok,
        )

    def _row(
        self,
        gen_id: str | None,
        data: bytes,
        fp: str,
        offset: int,
        ts: int,
        model: str,
        key: str | None,
        provider: str | None,
        labels: dict[str, str],
        cost: int | None,
        prompt: int,
        completion: int,
        reasoning: int,
        cached: int,
        ok: bool,
    ) -> EventRow:
        if gen_id:
            k = "g:" + gen_id
            kh = key_hash(k)
        else:
            digest = hashlib.blake2b(data, digest_size=16, key=f"{fp}:{offset}".encode()[:64]).digest()
            k = "h:" + digest.hex()
            kh = int.from_bytes(digest[:8], "big", signed=True)
        dims = (model, key, provider, tuple(sorted(labels.items())) if labels else ())
        sig = self._sigs.get(dims)
        if sig is None:
            sig = self._sigs[dims] = series_sig(model, key, provider, labels)
        return EventRow(k, kh, ts, sig, cost, prompt, completion, reasoning, cached, int(ok))

    @staticmethod
    def _bad(fp: str, path: str, line: Line, reason: str, data: bytes) -> QuarantinedLine:
        excerpt = redact_text(data[:EXCERPT].decode("utf-8", errors="replace"))
        return QuarantinedLine(fp, path, line.offset, reason, excerpt)
