"""``/openapi.json``: an OpenAPI 3.1 description of every endpoint of the HTTP service (contract §8)."""

from __future__ import annotations

from typing import Any

from guardd import __version__

ERROR = {"$ref": "#/components/schemas/Error"}
MONEY = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "description": "USD as an exact decimal string"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "the body or a parameter is invalid",
        401: "no or a wrong bearer token",
        403: "no token is configured: every POST is refused",
        413: "the body is over 10 MiB",
        415: "an unsupported Content-Type",
        503: "not available now: the reason says why (the state cannot be written: with Retry-After)",
    }
    return {str(c): _json(ERROR, text[c]) for c in codes}


POST_ERRORS = (400, 401, 403, 413)

MANUAL_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "budget": {"type": ["string", "null"], "description": "a budget name; null: every scope"},
                    "reason": {"type": ["string", "null"]},
                    "for": {"type": ["string", "null"], "description": 'a duration such as "30m"; null: default'},
                },
            }
        }
    },
}


def document() -> dict[str, Any]:
    """Return the OpenAPI 3.1 document."""
    switch = {"$ref": "#/components/schemas/KillSwitch"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "guardd",
            "version": __version__,
            "description": "The HTTP service of guardd, a budget guard for LLM spend (contract §8).",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
                "KillSwitch": {
                    "type": "object",
                    "required": ["schema", "updated_at", "heartbeat_at", "tripped", "scopes"],
                    "properties": {
                        "schema": {"const": 1},
                        "updated_at": {"type": "string"},
                        "heartbeat_at": {"type": "string"},
                        "expires_at": {"type": "string"},
                        "tripped": {"type": "boolean"},
                        "scopes": {
                            "type": "object",
                            "additionalProperties": {
                                "type": "object",
                                "required": ["tripped", "headroom"],
                                "properties": {
                                    "tripped": {"type": "boolean"},
                                    "reason": {"type": ["string", "null"]},
                                    "until": {"type": ["string", "null"]},
                                    "window": {"type": ["string", "null"]},
                                    "spent": {"oneOf": [MONEY, {"type": "null"}]},
                                    "limit": {"oneOf": [MONEY, {"type": "null"}]},
                                    "headroom": {"oneOf": [MONEY, {"type": "null"}]},
                                    "override": {"type": ["object", "null"]},
                                },
                            },
                        },
                    },
                },
                "IngestSummary": {
                    "type": "object",
                    "required": ["read", "stored", "duplicates", "quarantined", "unpriced", "seconds"],
                    "properties": {
                        "read": {"type": "integer", "minimum": 0},
                        "stored": {"type": "integer", "minimum": 0},
                        "duplicates": {"type": "integer", "minimum": 0},
                        "quarantined": {"type": "integer", "minimum": 0},
                        "unpriced": {"type": "integer", "minimum": 0},
                        "seconds": {"type": "number", "minimum": 0},
                    },
                },
            },
        },
        "paths": {
            "/": {
                "get": {
                    "summary": "The status page (HTML, no external assets)",
                    "responses": {"200": {"description": "the page", "content": {"text/html": {"schema": {}}}}},
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness: 200 while the cycle runs, 503 with the reason otherwise",
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["ok"],
                                "properties": {"ok": {"const": True}, "heartbeat_at": {"type": ["string", "null"]}},
                            },
                            "the daemon's cycle runs",
                        ),
                        "503": _json(
                            {
                                "type": "object",
                                "required": ["ok", "reason"],
                                "properties": {"ok": {"const": False}, "reason": {"type": "string"}},
                            },
                            "the guard is stale or the store cannot be written",
                        ),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus text exposition",
                    "responses": {"200": {"description": "metrics", "content": {"text/plain": {"schema": {}}}}},
                }
            },
            "/openapi.json": {
                "get": {"summary": "This document", "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")}}
            },
            "/v1/status": {
                "get": {
                    "summary": "The `guardd status --json` document, computed per request",
                    "responses": {
                        "200": _json(
                            {"type": "object", "required": ["schema", "budgets", "killswitch"]}, "status (schema 1)"
                        )
                    },
                }
            },
            "/v1/killswitch": {
                "get": {
                    "summary": "The kill-switch document with an ETag; If-None-Match answers 304; ?wait long-polls",
                    "parameters": [
                        {
                            "name": "wait",
                            "in": "query",
                            "required": False,
                            "description": "hold up to N seconds (at most 60; more is taken as 60) for a change",
                            "schema": {"type": "number", "minimum": 0},
                        },
                        {
                            "name": "If-None-Match",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string"},
                        },
                    ],
                    "responses": {
                        "200": {
                            **_json(switch, "the document"),
                            "headers": {"ETag": {"schema": {"type": "string"}, "required": True}},
                        },
                        "304": {"description": "unchanged (If-None-Match matched)"},
                        **_errors(400, 503),
                    },
                }
            },
            "/v1/killswitch/trip": {
                "post": {
                    "summary": "Trip a budget's scope, or the global scope `*` with budget null",
                    "security": [{"bearer": []}],
                    "requestBody": MANUAL_BODY,
                    "responses": {"200": _json(switch, "the new document"), **_errors(*POST_ERRORS, 503)},
                }
            },
            "/v1/killswitch/release": {
                "post": {
                    "summary": "Release a budget's scope, or every tripped scope with budget null",
                    "security": [{"bearer": []}],
                    "requestBody": MANUAL_BODY,
                    "responses": {"200": _json(switch, "the new document"), **_errors(*POST_ERRORS, 503)},
                }
            },
            "/v1/events": {
                "post": {
                    "summary": "Push ledger lines (JSONL, any ledger form); answers the ingest summary",
                    "security": [{"bearer": []}],
                    "parameters": [
                        {
                            "name": "format",
                            "in": "query",
                            "schema": {"type": "string", "enum": ["auto", "guardd", "openrouter", "record"]},
                        },
                        {
                            "name": "label",
                            "in": "query",
                            "description": "K=V, repeatable",
                            "schema": {"type": "array", "items": {"type": "string"}},
                            "style": "form",
                            "explode": True,
                        },
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "description": "keys lines without an id (with their line number, from 1)",
                            "schema": {"type": "string"},
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            t: {"schema": {"type": "string"}}
                            for t in ("application/x-ndjson", "application/jsonl", "text/plain")
                        },
                    },
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/IngestSummary"}, "committed"),
                        **_errors(*POST_ERRORS, 415, 503),
                    },
                }
            },
            "/v1/openrouter/broadcast": {
                "post": {
                    "summary": "OpenRouter Broadcast webhook (OTLP JSON traces)",
                    "security": [{"bearer": []}],
                    "parameters": [
                        {"name": "X-Test-Connection", "in": "header", "schema": {"type": "string"}},
                    ],
                    "requestBody": {
                        "required": False,
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["ok", "generations", "stored"],
                                "properties": {
                                    "ok": {"const": True},
                                    "generations": {"type": "integer"},
                                    "stored": {"type": "integer"},
                                    "skipped": {"type": "integer"},
                                    "skipped_why": {
                                        "type": "object",
                                        "additionalProperties": {"type": "integer"},
                                        "description": "skipped spans by reason (child of its generation, …)",
                                    },
                                },
                            },
                            "accepted (connection tests and test spans store nothing)",
                        ),
                        **_errors(*POST_ERRORS, 503),
                    },
                }
            },
        },
    }
