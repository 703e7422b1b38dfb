"""OpenRouter Broadcast (OTLP JSON traces) into usage events.

A delivery is an ``ExportTraceServiceRequest``: ``resourceSpans[] → scopeSpans[] → spans[]``. Each root
``LLM Generation`` span (or a root span of the official example's shape, named ``chat``) is one generation and
becomes one canonical ledger line, which the ledger parser then reads exactly as a line from a file: same key
``g:<gen_ai.response.id>`` (so a generation seen in a ledger and in a broadcast counts once), same quarantine
rules. Not spend, and skipped: child spans (``gen_ai.response.id`` ending in ``:attempt-N`` or ``:generation``,
or any span with a parent), the connection test (empty payload / ``openrouter-connection-test``) and the
dashboard's ``Test Generation``.

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
from guardd.ledger.parse import LineParser

BROADCAST_PATH = "POST /v1/openrouter/broadcast"
ROOT_NAMES = frozenset({"LLM Generation", "chat"})
TEST_NAMES = frozenset({"Test Generation", "openrouter-connection-test"})
_CHILD_ID = re.compile(r":(attempt-\d+|generation)$")
_PROMPT = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
_COMPLETION = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")


class PayloadError(ValueError):
    """The body is not an OTLP JSON trace export: answer 400 and store nothing."""


@dataclass(slots=True)
class Decoded:
    """What a delivery held: one canonical ledger line per generation, and how many spans were skipped."""

    lines: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    tests: int = 0


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
    for rs in resource_spans:
        for ss in _list(rs, "scopeSpans"):
            for span in _list(ss, "spans"):
                line = _line(span, out)
                if line is not None:
                    out.lines.append(line)
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


def _line(span: object, out: Decoded) -> dict[str, Any] | None:
    if not isinstance(span, dict):
        raise PayloadError("a span is not an object")
    name = span.get("name")
    attrs = _attributes(span)
    gen_id = attrs.get("gen_ai.response.id")
    if name in TEST_NAMES:
        out.tests += 1
        return None
    if not isinstance(gen_id, str) or not gen_id or _CHILD_ID.search(gen_id) or span.get("parentSpanId"):
        out.skipped += 1
        return None
    if name not in ROOT_NAMES:
        out.skipped += 1
        return None
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


def _time(span: dict[str, Any]) -> str:
    nanos = span.get("endTimeUnixNano") or span.get("startTimeUnixNano")
    try:
        ms = int(str(nanos)) // 1_000_000
    except ValueError:
        raise PayloadError(f"a span time is not a number of nanoseconds: {nanos!r}") from None
    if nanos is None or ms <= 0:
        raise PayloadError("a generation span has no start or end time")
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
            return int(value)
    return 0
