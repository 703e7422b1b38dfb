"""``POST /v1/events``: ledger lines pushed over HTTP, parsed into one batch exactly as a ledger file's lines are.

Same formats, same quarantine, same keys: a line with an id is ``g:<id>``, so it dedupes against every ledger and
every other push. A line without an id is keyed by the request's ``Idempotency-Key`` and its line number (from 1),
never by its bytes, so a retry that re-serialises the same events still counts them once; without the header it
is quarantined (there would be no way to tell a retry from new spend).
"""

from __future__ import annotations

import hashlib
import uuid

from guardd.core.batch import Parsed, QuarantinedLine
from guardd.core.money import Money
from guardd.core.usage import BadLine
from guardd.ledger.lines import MAX_LINE
from guardd.ledger.parse import LineParser
from guardd.ledger.rows import id_key

FORMATS = ("auto", "guardd", "openrouter", "record")
EVENTS_PATH = "POST /v1/events"


class BodyError(ValueError):
    """The body (or its query parameters) cannot be taken at all: answer 400 and store nothing."""


class PushParser(LineParser):
    """A :class:`LineParser` whose id-less events are keyed by an idempotency key and their line number."""

    def __init__(self, fmt: str, labels: dict[str, str], max_event_cost: Money, idempotency_key: str | None) -> None:
        super().__init__(fmt, labels, max_event_cost)
        self.idempotency_key = idempotency_key

    def event_key(self, gen_id: str | None, data: bytes, fp: str, offset: int) -> str:
        if gen_id:
            return id_key(gen_id)
        if self.idempotency_key is None:
            raise BadLine("no id and no Idempotency-Key header: a retry could not be told from new spend")
        digest = hashlib.blake2b(f"{self.idempotency_key}\n{offset}".encode(), digest_size=16).hexdigest()
        return "i:" + digest


def parse_labels_param(values: list[str]) -> dict[str, str]:
    """``?label=K=V`` (repeatable) as a dict; raise BodyError for a value without ``=`` or a key."""
    labels: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BodyError(f"label takes K=V, not {item!r}")
        labels[key] = value
    return labels


def parse_events(
    body: bytes, fmt: str, labels: dict[str, str], max_event_cost: Money, idempotency_key: str | None
) -> Parsed:
    """Parse a JSONL body into one batch (``lines`` counts every non-empty line, quarantined ones included).

    Raise BodyError when the body as a whole is unusable: an unknown format, text that is not UTF-8, or one
    JSON array instead of one object per line.
    """
    if fmt not in FORMATS:
        raise BodyError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(f"the body is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if body.lstrip().startswith(b"["):
        raise BodyError("the body is a JSON array; send one JSON object per line (JSONL)")
    parser = PushParser(fmt, labels, max_event_cost, idempotency_key)
    source = f"http:{idempotency_key}" if idempotency_key is not None else f"http:{uuid.uuid4()}"
    parsed = Parsed(0, len(body))
    for number, line in enumerate(body.split(b"\n"), start=1):
        if len(line) > MAX_LINE:
            parsed.lines += 1
            parsed.bad.append(QuarantinedLine(source, EVENTS_PATH, number, f"line longer than {MAX_LINE} bytes", ""))
            continue
        parser.parse_line(line, number, source, EVENTS_PATH, parsed)
    parser.finish(parsed)
    return parsed
