"""OpenRouter Broadcast (OTLP JSON traces) into usage events.

A delivery is an ``ExportTraceServiceRequest``: ``resourceSpans[] → scopeSpans[] → spans[]``. Each root
``LLM Generation`` span (or a root span of the official example's shape, named ``chat``) is one generation and
becomes one canonical ledger line, which the ledger parser then reads exactly as a line from a file: same key
``g:<gen_ai.response.id>`` (so a generation seen in a ledger and in a broadcast counts once), same quarantine
rules.

Root means root of OpenRouter's generation, not of the trace: OpenRouter copies a request's
``trace.parent_span_id`` into the span it sends, so the root of an app that nests its calls in its own traces has a
``parentSpanId`` that names the caller's span. A span is the generation's root when its id is a plain generation
id and no span of the same generation in the delivery is its ancestor (a parent outside the delivery, or a span
of another generation, is the caller's). Skipped, each with its reason in ``skipped_why``:

- ``child of its generation``: an id ending in ``:attempt-N`` or ``:generation``, or a span below another span of
  the same generation in the delivery. These repeat the root's figures; every delivery has them.
- ``another span of its generation``: two spans with one id, neither below the other (a parent not delivered).
  The one that encloses the other in time (earliest start, then latest end, then first listed) is the root; the
  others never replace its cost (the store keeps the last line of an id, so this is decided here).
- ``not a generation span``: a generation id on a span of another name. ``no generation id``: no
  ``gen_ai.response.id`` at all.
- The connection test (empty payload / ``openrouter-connection-test``) and the dashboard's ``Test Generation``
  count as ``tests``, not as skipped.

Every skip other than a child is listed in ``notes`` (name, id, reason), for the log: the sender got 200 and will
not send it again, so a span that may be spend must not vanish without a word.

Numbers: ``intValue`` and ``doubleValue`` arrive as JSON numbers or as strings. The body is decoded with
``parse_float=Decimal``, so a cost is taken from its literal digits and never passes through a binary float.
An error span (status code 2) carries no cost: it is stored at $0 when it also carries no tokens (nothing was
generated, OpenRouter bills nothing), else left unpriced for the catalog to price.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from guardd.core.batch import Parsed
from guardd.core.money import Money
from guardd.core.usage import MAX_TOKENS
from guardd.ledger.parse import LineParser

BROADCAST_PATH = "POST /v1/openrouter/broadcast"
ROOT_NAMES = frozenset({"LLM Generation", "chat"})
TEST_NAMES = frozenset({"Test Generation", "openrouter-connection-test"})
_CHILD_ID = re.compile(r":(attempt-\d+|generation)$")
_PROMPT = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
_COMPLETION = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
CHILD = "child of its generation"
SIBLING = "another span of its generation"
NOT_ROOT = "not a generation span"
NO_ID = "no generation id"


class PayloadError(ValueError):
    """The body is not an OTLP JSON trace export: answer 400 and store nothing."""


@dataclass(slots=True)
class Decoded:
    """What a delivery held: one canonical ledger line per generation, the spans skipped by reason, and a note
    for each skipped span that may have been spend."""

    lines: list[dict[str, Any]] = field(default_factory=list)
    skipped_why: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    tests: int = 0

    @property
    def skipped(self) -> int:
        return sum(self.skipped_why.values())

    def skip(self, span: Span, reason: str) -> None:
        self.skipped_why[reason] = self.skipped_why.get(reason, 0) + 1
        if reason != CHILD:
            self.notes.append(f"{span.name!r} {span.gen_id!r}: {reason}")


@dataclass(slots=True, frozen=True)
class Span:
    """One span as read: its place in the trace and its attributes."""

    index: int
    name: str | None
    trace: str
    span_id: str | None
    parent: str | None
    gen_id: str | None
    attrs: dict[str, object]
    raw: dict[str, Any]

    @property
    def generation(self) -> str | None:
        """The plain id of the generation this span belongs to (a child's id without its suffix)."""
        return _CHILD_ID.sub("", self.gen_id) if self.gen_id else None

    def enclosing_order(self) -> tuple[int, int, int]:
        """Sort key: the span that encloses the others in time (earliest start, latest end) first, then list order."""
        start, end = _nanos(self.raw.get("startTimeUnixNano")), _nanos(self.raw.get("endTimeUnixNano"))
        return (start if start is not None else 1 << 80, -(end or 0), self.index)


def decode(body: bytes) -> Decoded:
    """Return the generations in an OTLP JSON body; raise PayloadError when it is not one."""
    out = Decoded()
    if not body.strip():
        return out  # the connection test's empty payload
    try:
        data = json.loads(body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PayloadError("not an OTLP trace export (expected an object with resourceSpans)")
    resource_spans = data.get("resourceSpans", [])
    if not isinstance(resource_spans, list):
        raise PayloadError("resourceSpans is not a list")
    spans: list[Span] = []
    for rs in resource_spans:
        for ss in _list(rs, "scopeSpans"):
            for raw in _list(ss, "spans"):
                spans.append(_span(raw, len(spans)))
    roots: dict[str, list[Span]] = {}
    by_id = {(span.trace, span.span_id): span for span in spans if span.span_id}
    for span in spans:
        if span.name in TEST_NAMES:
            out.tests += 1
        elif span.gen_id is None:
            out.skip(span, NO_ID)
        elif span.generation != span.gen_id or _below_its_generation(span, by_id):
            out.skip(span, CHILD)
        elif span.name not in ROOT_NAMES:
            out.skip(span, NOT_ROOT)
        else:
            roots.setdefault(span.gen_id, []).append(span)
    for group in roots.values():
        root, *others = sorted(group, key=Span.enclosing_order)
        for other in sorted(others, key=lambda span: span.index):
            out.skip(other, SIBLING)
        out.lines.append(_line(root))
    return out


def to_batch(decoded: Decoded, max_event_cost: Money, source: str) -> Parsed:
    """Parse the generations' canonical lines into a batch, with the ledger parser (canonical format)."""
    parser = LineParser("guardd", {}, max_event_cost)
    parsed = Parsed(0, 0)
    for number, line in enumerate(decoded.lines, start=1):
        raw = json.dumps(line, separators=(",", ":"), ensure_ascii=False).encode()
        parser.parse_line(raw, number, source, BROADCAST_PATH, parsed)
    parser.finish(parsed)
    return parsed


def _list(obj: object, key: str) -> list[Any]:
    if not isinstance(obj, dict):
        raise PayloadError(f"an element holding {key} is not an object")
    value = obj.get(key, [])
    if not isinstance(value, list):
        raise PayloadError(f"{key} is not a list")
    return value


def _attributes(span: dict[str, Any]) -> dict[str, object]:
    attrs: dict[str, object] = {}
    for item in span.get("attributes") or []:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise PayloadError("an attribute is not {key, value}")
        value = item.get("value")
        if isinstance(value, dict):
            for kind in ("stringValue", "intValue", "doubleValue", "boolValue"):
                if kind in value:
                    attrs[item["key"]] = value[kind]
                    break
    return attrs


def _span(raw: object, index: int) -> Span:
    if not isinstance(raw, dict):
        raise PayloadError("a span is not an object")
    attrs = _attributes(raw)
    gen_id = attrs.get("gen_ai.response.id")
    return Span(
        index=index,
        name=_text(raw.get("name")),
        trace=_text(raw.get("traceId")) or "",
        span_id=_text(raw.get("spanId")),
        parent=_text(raw.get("parentSpanId")),
        gen_id=gen_id if isinstance(gen_id, str) and gen_id else None,
        attrs=attrs,
        raw=raw,
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _below_its_generation(span: Span, by_id: dict[tuple[str, str], Span]) -> bool:
    """Whether a span of ``span``'s own generation in this delivery is an ancestor of it (a cycle ends the walk)."""
    seen = {span.index}
    parent = by_id.get((span.trace, span.parent)) if span.parent else None
    while parent is not None and parent.index not in seen:
        if parent.generation == span.generation:
            return True
        seen.add(parent.index)
        parent = by_id.get((parent.trace, parent.parent)) if parent.parent else None
    return False


def _line(root: Span) -> dict[str, Any]:
    span, attrs, gen_id = root.raw, root.attrs, root.gen_id
    status = span.get("status") if isinstance(span.get("status"), dict) else {}
    ok = (status or {}).get("code") != 2
    line: dict[str, Any] = {"id": gen_id, "ts": _time(span), "ok": ok}
    model = attrs.get("gen_ai.response.model") or attrs.get("gen_ai.request.model")
    if isinstance(model, str):
        line["model"] = model
    provider = attrs.get("trace.metadata.openrouter.provider_name")
    if isinstance(provider, str):
        line["provider"] = provider
    key = attrs.get("trace.metadata.openrouter.api_key_name")
    if isinstance(key, str):
        line["key"] = key
    tokens = {
        "prompt_tokens": _count(attrs, *_PROMPT),
        "completion_tokens": _count(attrs, *_COMPLETION),
        "reasoning_tokens": _count(attrs, "gen_ai.usage.output_tokens.reasoning"),
        "cached_tokens": _count(attrs, "gen_ai.usage.input_tokens.cached"),
    }
    line.update({k: v for k, v in tokens.items() if v})
    cost = _decimal(attrs.get("gen_ai.usage.total_cost"))
    if cost is not None:
        line["cost"] = str(cost)
    elif not ok and not any(tokens.values()):
        line["cost"] = "0"
    labels = _labels(attrs)
    if labels:
        line["labels"] = labels
    return line


def _labels(attrs: dict[str, object]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for attr, label in (("user.id", "user"), ("session.id", "session")):
        if attrs.get(attr) is not None:
            labels[label] = str(attrs[attr])
    for attr, value in attrs.items():
        if attr.startswith("trace.metadata.") and not attr.startswith("trace.metadata.openrouter."):
            labels[attr.removeprefix("trace.metadata.")] = value if isinstance(value, str) else str(value)
    return labels


def _time(span: dict[str, Any]) -> str | int:
    """The span's time for its ledger line: RFC 3339 text, or the Unix ms as a number when no date holds it (past
    the year 9999), which the ledger parser quarantines as not a plausible time, like any outside its range."""
    nanos = span.get("endTimeUnixNano") or span.get("startTimeUnixNano")
    try:
        ms = int(str(nanos)) // 1_000_000
    except ValueError:
        raise PayloadError(f"a span time is not a number of nanoseconds: {nanos!r}") from None
    if nanos is None or ms <= 0:
        raise PayloadError("a generation span has no start or end time")
    try:
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    except OverflowError:
        return ms
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _nanos(value: object) -> int | None:
    try:
        return int(str(value)) if value is not None else None
    except ValueError:
        return None


def _decimal(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise PayloadError(f"not a number: {value!r}") from None


def _count(attrs: dict[str, object], *keys: str) -> int:
    for key in keys:
        value = _decimal(attrs.get(key))
        if value is not None:
            if value != value.to_integral_value() or value < 0:
                raise PayloadError(f"{key} is not a whole number of tokens: {value}")
            if value > MAX_TOKENS:  # checked before int(): 9e9999999 would be minutes of CPU
                raise PayloadError(f"{key} is an implausible number of tokens (above {MAX_TOKENS})")
            return int(value)
    return 0
