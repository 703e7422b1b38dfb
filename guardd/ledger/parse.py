"""Parsing ledger lines into store rows — the hot path of ingestion.

A block of complete lines is parsed in one of two ways that give the same rows:

* **Batch path** (``guardd``/``auto`` ledgers whose block has only canonical lines): the block's lines are joined
  into one JSON array and decoded by msgspec in C, type-checked against :class:`~guardd.ledger.canonical.Fast`;
  per line only the time, the cost and the series are computed in Python. This is what makes ingestion fast.
* **Line path** (any other format, or a block the batch path refuses): each line on its own, first with the
  canonical decoder, then with the generic parser of :mod:`guardd.core.usage`, which gives the exact quarantine
  reason for a bad line. A single odd line in a batch (a naive time, a cost with 13 decimals, an unknown label
  shape) takes this path alone.

The batch path has an optional C accelerator, :mod:`guardd.ledger._fastparse` (built at install where a compiler is
found): it adds every line of the plain canonical shape to the batch itself, exactly as the Python batch path would,
and hands each run of lines it is not certain about to that path unchanged. ``GUARDD_NO_C_PARSE=1`` (or an install
without it) parses with the Python path alone; :func:`c_parser` says which is used.

No line can stop ingestion: a line's size (``MAX_LINE``, see :mod:`guardd.ledger.lines`) and its depth
(``MAX_DEPTH``) are bounded before it is decoded, and any error while decoding or validating one line quarantines
that line with a reason. Both paths, in any process, agree on every line (a property test feeds them arbitrary
bytes and JSON).

Event keys: ``g:<generation id>``, or for an event without an id ``h:`` and a keyed hash of (fingerprint, offset,
line), so re-reading any part of a file — after a crash, a rewrite, or from a rotated copy — finds the same keys
and counts nothing twice. Series ids are hashes of the series signature (:func:`series_id`), so a parser in
another process can name a series without asking the store.

The line shapes msgspec decodes are :mod:`guardd.ledger.canonical`; the event keys and health facts both paths build
are :mod:`guardd.ledger.rows`.
"""

from __future__ import annotations

import os
from decimal import Decimal
from itertools import accumulate

import msgspec

from guardd.core.batch import HOUR_MS, Parsed, QuarantinedLine, series_id, series_sig
from guardd.core.money import Money
from guardd.core.redact import redact_text
from guardd.core.usage import (
    TS_END_MS,
    TS_MIN_MS,
    BadLine,
    clean_key,
    event_from_record,
    parse_cost,
    parse_labels,
    parse_latency,
)
from guardd.ledger.canonical import EPOCH, MS, Canonical, Fast, FastBase, FastRaw, canonical_ms
from guardd.ledger.lines import MAX_LINE, Block, iter_blocks, may_be_too_deep, too_deep
from guardd.ledger.rows import health_row, id_key, line_key
from guardd.ledger.times import raw_ms

try:
    from guardd.ledger import _fastparse
except ImportError:  # built without a C compiler: the Python path gives the same rows
    _fastparse = None  # type: ignore[assignment]

EXCERPT = 200
BATCH_BYTES = 8 << 20  # a transaction per 8 MiB of ledger (about 30,000 lines)
_INF = float("inf")


def read_batch(
    fd: int, fp: str, path: str, parser: LineParser, start: int, stop: int | None = None, limit: int = BATCH_BYTES
) -> Parsed:
    """Read and parse the complete lines of ``fd`` from ``start`` (to ``stop``), about ``limit`` bytes of them.

    ``end == start`` in the result when nothing complete is left.
    """
    parsed = Parsed(start, start)
    for block in iter_blocks(fd, start, stop):
        parser.parse_block(block, fp, path, parsed)
        if parsed.end - start >= limit:
            break
    parser.finish(parsed)
    return parsed


def c_parser() -> bool:
    """True when new parsers use the C accelerator: it is built and ``GUARDD_NO_C_PARSE`` is not set to 1."""
    return _fastparse is not None and os.environ.get("GUARDD_NO_C_PARSE", "") != "1"


_RAWS = msgspec.json.Decoder(list[msgspec.Raw])


def _one_value_a_line(joined: bytes, lines: list[bytes]) -> bool:
    """Whether each element of the array ``joined`` (the ``lines`` joined by commas, which decoded) is exactly its
    line, surrounding whitespace aside. Counting the elements is not enough: a line of two objects beside two
    torn lines that join into one keeps the count."""
    raws = _RAWS.decode(joined)
    return len(raws) == len(lines) and all(
        bytes(raw) == line.strip(b" \t\r") for raw, line in zip(raws, lines, strict=True)
    )


class _Slow(Exception):
    """This line must take the line path."""


class LineParser:
    """Turns blocks of one ledger's lines into a :class:`Parsed` batch. One per ledger (it caches series)."""

    def __init__(self, fmt: str, labels: dict[str, str], max_event_cost: Money, *, c: bool | None = None) -> None:
        """``c``: use the C accelerator where it is built (default: :func:`c_parser`); False forces the Python path."""
        self.fmt = fmt
        self.labels = labels
        self.max_event_cost = max_event_cost
        self._generic_decoder = msgspec.json.Decoder(float_hook=Decimal)
        canonical = fmt in ("auto", "guardd")
        self._line = msgspec.json.Decoder(Canonical) if canonical else None
        self._batch = msgspec.json.Decoder(list[Fast]) if canonical else None
        self._batch_raw = msgspec.json.Decoder(list[FastRaw]) if canonical else None
        self._raw_first = False  # this ledger's last block needed the raw-time decoder: try it first
        self._series: dict[tuple[object, ...], int] = {}  # (model, key, provider, labels text) → series id
        self._line_series: dict[tuple[object, ...], int] = {}
        self._sigs: dict[int, str] = {}
        self._scanner: _fastparse.Scanner | None = None
        if canonical and _fastparse is not None and (c_parser() if c is None else c):
            self._scanner = _fastparse.Scanner(max_event_cost, {}, self._c_series, line_key, health_row)

    @property
    def accelerated(self) -> bool:
        """True when blocks are parsed by the C accelerator (its refusals by the Python path)."""
        return self._scanner is not None

    def parse_block(self, block: Block, fp: str, path: str, out: Parsed) -> None:
        """Add the lines of ``block`` (a file with fingerprint ``fp``) to ``out``."""
        out.end = block.end
        data = block.data
        if data is None:
            out.lines += 1
            out.bad.append(QuarantinedLine(fp, path, block.offset, f"line longer than {MAX_LINE} bytes", ""))
            return
        if self._scanner is None:
            self._python_block(data, block.offset, fp, path, out)
            return
        pos = 0
        while pos < len(data):
            count, stop, pos = self._scanner.scan(data, pos, block.offset, fp, out)
            out.lines += count
            if stop < pos:  # lines the C scanner leaves to the Python path
                self._python_block(data[stop:pos], block.offset + stop, fp, path, out)

    def _python_block(self, data: bytes, base: int, fp: str, path: str, out: Parsed) -> None:
        lines = data.split(b"\n")
        lines.pop()  # the block ends with a newline
        if self._batch is not None and not may_be_too_deep(data):
            joined = b"[" + b",".join(lines) + b"]"
            decoded = self._decode_block(joined)
            # Two broken lines may join into one object (a line cut inside a name, its rest on the next line), and a
            # line may hold two objects: then the objects are not the lines, and each line is read on its own.
            if decoded is not None and len(decoded) == len(lines) and _one_value_a_line(joined, lines):
                self._rows(decoded, lines, base, fp, path, out)
                return
        offset = base
        for line in lines:
            self._one(line, offset, fp, path, out)
            offset += len(line) + 1

    def finish(self, out: Parsed) -> None:
        """Complete ``out`` once all its blocks are parsed: the signature of every series its rows use."""
        out.close()  # first: it may move a row back into its first line's series
        out.series = {sid: self._sigs[sid] for _hour, sid in out.hours}

    # ---- the batch path ----------------------------------------------------------------------------------
    def _decode_block(self, joined: bytes) -> list[Fast] | list[FastRaw] | None:
        """Decode a block's lines at once: with RFC 3339 times as datetimes, else with raw times (other forms,
        or forms mixed line by line). None when neither fits every line (a bad or blank line somewhere: every
        line on its own says why). Whichever fitted is tried first next time."""
        assert self._batch is not None and self._batch_raw is not None
        first, second = (self._batch_raw, self._batch) if self._raw_first else (self._batch, self._batch_raw)
        for decoder in (first, second):
            try:
                objs: list[Fast] | list[FastRaw] = decoder.decode(joined)
            except Exception:
                continue
            self._raw_first = decoder is self._batch_raw
            return objs
        return None

    def _rows(
        self, objs: list[Fast] | list[FastRaw], lines: list[bytes], base: int, fp: str, path: str, out: Parsed
    ) -> None:
        # Per-line work is the cost of ingestion, so this loop is written for speed: names are local, and the
        # hourly sums are kept here instead of in a second pass.
        rows, tokens, hours, series, top = out.rows, out.tokens, out.hours, self._series, self.max_event_cost
        epoch, ms, hour_ms = EPOCH, MS, HOUR_MS
        offsets: list[int] | None = None
        raw_time = bool(objs) and isinstance(objs[0], FastRaw)
        out.lines += len(objs)
        i = -1
        for o in objs:
            i += 1
            try:
                # A datetime without a zone raises TypeError: the line path says UTC.
                ts = raw_ms(o.ts) if raw_time else (o.ts - epoch) // ms  # type: ignore[arg-type,operator]
                if ts < TS_MIN_MS or ts >= TS_END_MS:
                    raise _Slow  # not a plausible time: the line path gives the reason
                if not lines[i].isascii():
                    # msgspec skips an unknown field unread; the line path's generic decoder (a fractional time,
                    # labels to convert, ...) refuses a line with bytes that are not UTF-8 anywhere: its rule.
                    lines[i].decode()
                if o.usage or o.response or o.performance or o.sessionId:
                    raise _Slow  # another format's marker, even null: the line path tells which format it is
                decimal = o.cost
                cost: int | None = None
                if decimal is not None:
                    scaled = decimal.scaleb(12)
                    if scaled.adjusted() > 18:
                        raise _Slow  # int() of 1e9999999 would take minutes: its size alone refuses it
                    cost = int(scaled)
                    if cost != scaled or cost < 0 or cost > top:
                        raise _Slow  # beyond pico-dollars, negative or implausible: exact rules on the line path
                skey = (o.model, o.key, o.provider, bytes(o.labels))
                sid = series.get(skey)
                if sid is None:
                    sid = self._new_series(o, skey)
                okv, lat, st, err = o.ok, o.latency_ms, o.status, o.error
                if okv is False or lat is not None or st is not None or err is not None:
                    if lat is not None and lat == _INF:
                        raise _Slow  # not a usable latency: the line path drops it
                    health = True
                else:
                    health = False
            except Exception:  # _Slow, or anything odd: the line path has the exact rules
                if offsets is None:
                    offsets = list(accumulate((len(line) + 1 for line in lines), initial=base))
                out.lines -= 1
                self._one(lines[i], offsets[i], fp, path, out)
                continue
            gid = o.id
            if gid:
                k = "g:" + gid
                if "k-" in gid or " " in gid or "@" in gid or not gid.isprintable():
                    k = id_key(gid)  # it may hold a secret: a key, a bearer token, a URL password
            else:
                if offsets is None:
                    offsets = list(accumulate((len(line) + 1 for line in lines), initial=base))
                k = line_key(lines[i].strip(), fp, offsets[i])
            if k in rows:
                out.drop(k)
            p, c, r, ca = o.prompt_tokens or 0, o.completion_tokens or 0, o.reasoning_tokens or 0, o.cached_tokens or 0
            rows[k] = (k, ts, sid, cost, p, c, r, ca)
            if health:
                out.health[k] = health_row(k, ts, sid, okv, st, lat, err)
            hk = (ts // hour_ms, sid)
            entry = hours.get(hk)
            if cost is None:
                tokens[k] = (k, p, c, r, ca)
                if entry is None:
                    hours[hk] = [0, 1, 1, p, c, r, ca]
                else:
                    entry[1] += 1
                    entry[2] += 1
                    entry[3] += p
                    entry[4] += c
                    entry[5] += r
                    entry[6] += ca
            elif entry is None:
                hours[hk] = [cost, 1, 0, p, c, r, ca]
            else:
                entry[0] += cost
                entry[1] += 1
                entry[3] += p
                entry[4] += c
                entry[5] += r
                entry[6] += ca

    def _new_series(self, o: FastBase, skey: tuple[object, ...]) -> int:
        try:
            labels = parse_labels(self._generic_decoder.decode(bytes(o.labels)))
        except (msgspec.MsgspecError, BadLine):
            raise _Slow from None
        sid = self._series[skey] = self._series_id(o.model or "unknown", o.key, o.provider, labels)
        return sid

    def _c_series(self, model: str | None, key: str | None, provider: str | None, labels: bytes) -> int | None:
        """The C scanner's :meth:`_new_series`: None for labels the Python path must judge."""
        try:
            parsed = parse_labels(self._generic_decoder.decode(labels))
        except (msgspec.MsgspecError, BadLine):
            return None
        return self._series_id(model or "unknown", key, provider, parsed)

    # ---- the line path -----------------------------------------------------------------------------------
    def parse_line(self, raw: bytes, offset: int, fp: str, path: str, out: Parsed) -> None:
        """Add one line (not a file's: pushed over HTTP) to ``out`` by the line path; ``offset`` and ``fp`` name
        it for the quarantine and :meth:`event_key`. Call :meth:`finish` once every line is in."""
        self._one(raw, offset, fp, path, out)

    def event_key(self, gen_id: str | None, data: bytes, fp: str, offset: int) -> str:
        """The dedupe key of an event: ``g:<generation id>``, else a hash of (file, offset, line). A subclass may
        key id-less events otherwise, or refuse them by raising :class:`~guardd.core.usage.BadLine`."""
        return id_key(gen_id) if gen_id else line_key(data, fp, offset)

    def _one(self, raw: bytes, offset: int, fp: str, path: str, out: Parsed) -> None:
        """Add one line to ``out``, or quarantine it with the reason. Never raises: no line stops ingestion."""
        data = raw.strip()
        if not data:
            return
        out.lines += 1  # never over MAX_LINE: a block holds no longer line (see iter_blocks)
        try:
            self._count(data, offset, fp, out)
        except BadLine as exc:
            reason = str(exc)
        except Exception as exc:  # a line the rules above did not foresee is quarantined too
            reason = f"cannot be read ({type(exc).__name__})"
        else:
            return
        # Redacted before it is cut: a key cut in two would no longer be recognised.
        excerpt = redact_text(data[: EXCERPT + 1024].decode("utf-8", errors="replace"))[:EXCERPT]
        out.bad.append(QuarantinedLine(fp, path, offset, redact_text(reason), excerpt))

    def _count(self, data: bytes, offset: int, fp: str, out: Parsed) -> None:
        """Add one stripped, non-blank line to ``out``; raise BadLine with the reason it cannot be counted."""
        if too_deep(data):
            raise BadLine("nested too deeply")
        if self._line is not None:
            try:
                c = self._line.decode(data)
            except msgspec.ValidationError:
                pass
            except (msgspec.DecodeError, UnicodeDecodeError):
                raise BadLine("not valid JSON") from None
            else:
                if c.usage is None and c.response is None and c.performance is None and c.sessionId is None:
                    labels = c.labels or {}
                    lat = parse_latency(c.latency_ms)
                    health = None
                    if c.ok is False or lat is not None or c.status is not None or c.error is not None:
                        health = (c.ok, c.status, lat, c.error)
                    self._add(
                        out,
                        c.id,
                        data,
                        fp,
                        offset,
                        canonical_ms(c.ts),
                        self._series_id(c.model or "unknown", c.key, c.provider, labels),
                        parse_cost(c.cost, self.max_event_cost),
                        (c.prompt_tokens or 0, c.completion_tokens or 0, c.reasoning_tokens or 0),
                        c.cached_tokens or 0,
                        health,
                    )
                    return
        try:
            obj = self._generic_decoder.decode(data)
        except (msgspec.DecodeError, UnicodeDecodeError):
            raise BadLine("not valid JSON") from None
        try:
            ev = event_from_record(obj, self.fmt, self.max_event_cost, None)
        except (ValueError, TypeError, OverflowError, ArithmeticError) as exc:
            raise BadLine(f"wrong types: {exc}") from None
        self._add(
            out,
            ev.id,
            data,
            fp,
            offset,
            ev.ts_ms,
            self._series_id(ev.model, ev.key, ev.provider, ev.labels),
            ev.cost,
            (ev.prompt_tokens, ev.completion_tokens, ev.reasoning_tokens),
            ev.cached_tokens,
            (ev.ok, ev.status, ev.latency_ms, ev.error) if ev.has_health else None,
        )

    def _add(
        self,
        out: Parsed,
        gen_id: str | None,
        data: bytes,
        fp: str,
        offset: int,
        ts: int,
        sid: int,
        cost: int | None,
        counts: tuple[int, int, int],
        cached: int,
        health: tuple[bool | None, int | None, float | None, str | None] | None,
    ) -> None:
        k = self.event_key(gen_id, data, fp, offset)
        out.add((k, ts, sid, cost, *counts, cached), (k, *counts, cached), health and health_row(k, ts, sid, *health))

    def _series_id(self, model: str, key: str | None, provider: str | None, labels: dict[str, str]) -> int:
        """Return the id of a series, adding the ledger's labels. Every secret in its texts (a key, bare or as
        ``Bearer …``, or one inside a model, provider or label) is redacted: the signature is what is stored."""
        skey = (model, key, provider, *sorted(labels.items()))
        sid = self._line_series.get(skey)
        if sid is None:
            if self.labels:
                labels = {**self.labels, **labels}
            labels = {redact_text(k): redact_text(v) for k, v in labels.items()}
            sig = series_sig(redact_text(model), clean_key(key), provider and redact_text(provider), labels)
            sid = self._line_series[skey] = series_id(sig)
            self._sigs[sid] = sig
        return sid
