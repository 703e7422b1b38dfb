"""OpenRouter Broadcast deliveries in the shapes the reference describes (../shared/reference/openrouter-api.md)."""

from __future__ import annotations

import json
from typing import Any

GEN = "gen-1790606294-sdYHTGXUVyDKWCLqX5Op"
CALLER_SPAN = "00f067aa0ba902b7"
"""The caller's own span: OpenRouter copies a request's ``trace.parent_span_id`` into its root span's parent."""


def attr(key: str, kind: str, value: object) -> dict[str, Any]:
    return {"key": key, "value": {kind: value}}


def export(*spans: dict[str, Any], gen: str = GEN) -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        attr("service.name", "stringValue", "openrouter"),
                        attr("openrouter.trace.id", "stringValue", gen),
                    ]
                },
                "scopeSpans": [{"scope": {"name": "openrouter"}, "spans": list(spans)}],
            }
        ]
    }


def root_span(
    gen: str = GEN, cost: object = 0.005334, end_ns: int = 1790606298041000000, parent: str | None = None
) -> dict[str, Any]:
    """The trimmed real root span of the reference, with user, session and custom metadata added (``parent``: the
    caller's span it is nested in, as OpenRouter sends it when the request carried ``trace.parent_span_id``)."""
    attributes = [
        attr("gen_ai.request.model", "stringValue", "anthropic/claude-haiku-4.5"),
        attr("gen_ai.response.id", "stringValue", gen),
        attr("gen_ai.usage.input_tokens", "intValue", 2489),
        attr("gen_ai.usage.output_tokens", "intValue", 569),
        attr("gen_ai.usage.total_cost", "doubleValue", cost),
        attr("gen_ai.usage.output_tokens.reasoning", "intValue", 145),
        attr("trace.metadata.openrouter.api_key_name", "stringValue", "fixture key"),
        attr("trace.metadata.openrouter.provider_name", "stringValue", "Amazon Bedrock"),
        attr("user.id", "stringValue", "u-42"),
        attr("session.id", "stringValue", "s-7"),
        attr("trace.metadata.team", "stringValue", "search"),
    ]
    span = {
        "traceId": "9b1de41a703bf6c7f0831bba77573c3e",
        "spanId": "9b1de41a703bf6c7",
        "name": "LLM Generation",
        "kind": 3,
        "startTimeUnixNano": str(end_ns - 3_723_000_000),
        "endTimeUnixNano": str(end_ns),
        "status": {"code": 1},
        "attributes": attributes,
    }
    if parent is not None:
        span["parentSpanId"] = parent
    return span


def child_spans(gen: str = GEN) -> list[dict[str, Any]]:
    """The two children the captured request also produced: they repeat figures and must not count."""
    common = {
        "traceId": "9b1de41a703bf6c7f0831bba77573c3e",
        "parentSpanId": "9b1de41a703bf6c7",
        "kind": 1,
        "startTimeUnixNano": "1790606294400000000",
        "endTimeUnixNano": "1790606298000000000",
        "status": {"code": 1},
    }
    return [
        {
            **common,
            "spanId": "a1",
            "name": "provider attempt 0: Amazon Bedrock",
            "attributes": [
                attr("gen_ai.response.id", "stringValue", f"{gen}:attempt-0"),
                attr("gen_ai.usage.total_cost", "doubleValue", 0.005334),
            ],
        },
        {
            **common,
            "spanId": "a2",
            "name": "generation",
            "attributes": [
                attr("gen_ai.response.id", "stringValue", f"{gen}:generation"),
                attr("gen_ai.usage.total_cost", "doubleValue", 0.005334),
            ],
        },
    ]


def captured(
    gen: str = GEN, cost: object = 0.005334, end_ns: int = 1790606298041000000, parent: str | None = None
) -> bytes:
    """The captured delivery: the root span and its two children (``end_ns``: when the generation ended)."""
    return json.dumps(export(root_span(gen, cost, end_ns, parent), *child_spans(gen), gen=gen)).encode()


def plain_id_child(root: dict[str, Any], cost: object, parent: str | None = None) -> dict[str, Any]:
    """A span named like a root and carrying the root's own id (no ``:attempt-N`` suffix), nested under ``parent``
    (the root's span by default) and inside the root's time: it belongs to the root's generation and its figures
    must not count."""
    span: dict[str, Any] = json.loads(json.dumps(root))
    span["attributes"] = [
        attr(a["key"], "doubleValue", cost) if a["key"] == "gen_ai.usage.total_cost" else a for a in span["attributes"]
    ]
    span.update(spanId="c0ffee0000000001", parentSpanId=parent or root["spanId"])
    span["startTimeUnixNano"] = str(int(root["startTimeUnixNano"]) + 1_000_000)
    span["endTimeUnixNano"] = str(int(root["endTimeUnixNano"]) - 1_000_000)
    return span


def official_example(gen: str = "gen-official-1", end_ns: int = 1790606295000000000) -> bytes:
    """The webhook guide's shape: a span named ``chat``, intValue as strings, prompt/completion token names."""
    span = {
        "traceId": "0af7651916cd43dd8448eb211c80319c",
        "spanId": "b7ad6b7169203331",
        "name": "chat",
        "kind": 3,
        "startTimeUnixNano": str(end_ns - 1_000_000_000),
        "endTimeUnixNano": str(end_ns),
        "status": {"code": 1},
        "attributes": [
            attr("gen_ai.request.model", "stringValue", "openai/gpt-4o"),
            attr("gen_ai.response.id", "stringValue", gen),
            attr("gen_ai.usage.prompt_tokens", "intValue", "100"),
            attr("gen_ai.usage.completion_tokens", "intValue", "50"),
            attr("gen_ai.usage.total_cost", "doubleValue", "0.0015"),
        ],
    }
    return json.dumps(export(span, gen=gen)).encode()


def test_generation(end_ns: int = 1790606298041000000) -> bytes:
    span = root_span("gen-test-button", 0.001, end_ns)
    span["name"] = "Test Generation"
    return json.dumps(export(span, gen="gen-test-button")).encode()


def error_span(gen: str = "gen-error-1", end_ns: int = 1790606298041000000) -> bytes:
    span = root_span(gen, end_ns=end_ns)
    span["attributes"] = [a for a in span["attributes"] if not a["key"].startswith("gen_ai.usage")]
    span["status"] = {"code": 2, "message": "The client has disconnected"}
    span["level"] = "ERROR"
    return json.dumps(export(span, gen=gen)).encode()
