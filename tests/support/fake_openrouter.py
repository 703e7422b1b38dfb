"""A stand-in OpenRouter for tests: a real HTTP server on 127.0.0.1 serving the documented shapes.

Needs the ``test`` extra (starlette, uvicorn). Usage::

    with FakeOpenRouter() as fake:
        fake.add_key("sk-or-v1-abc…", name="prod", usage_daily="1.20", limit="50")
        base_url = fake.base_url                      # http://127.0.0.1:PORT/api/v1
        fake.fail("/key", status=429, times=2, retry_after=1)

The shapes are the documented ones (see ``openrouter-api.md``): ``/key``'s ``label`` is the masked key
(``sk-or-v1-0e6...1c96``) and it carries no name or hash; only ``/keys`` has them, in pages of 100 (``offset``),
without disabled keys unless ``include_disabled=true``.

Endpoints: ``GET /key``, ``/auth/key``, ``/credits``, ``/keys``, ``PATCH /keys/{hash}``, ``/models``,
``/generation``, ``POST /chat/completions`` (plain and streaming with usage in the final chunk). State (usage per
key, credits, disabled flags) is plain attributes; faults on demand: any status with an OpenRouter error body,
``Retry-After``, a delay beyond the client's timeout, or invalid JSON.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

MANAGEMENT_ONLY = "Only management keys can perform this operation"
KEYS_PAGE = 100  # GET /keys returns at most this many keys; page with ?offset=


@dataclass
class FakeKey:
    secret: str
    name: str
    label: str
    hash: str
    usage: Decimal = Decimal(0)
    usage_daily: Decimal = Decimal(0)
    usage_weekly: Decimal = Decimal(0)
    usage_monthly: Decimal = Decimal(0)
    limit: Decimal | None = None
    limit_reset: str | None = None
    disabled: bool = False

    def add(self, cost: Decimal) -> None:
        self.usage += cost
        self.usage_daily += cost
        self.usage_weekly += cost
        self.usage_monthly += cost

    def usage_fields(self) -> dict[str, Any]:
        """What ``/key`` and ``/keys`` share: the masked label, usage, byok usage and limits."""
        remaining = None if self.limit is None else float(max(Decimal(0), self.limit - self.usage))
        return {
            "byok_usage": 0,
            "byok_usage_daily": 0,
            "byok_usage_weekly": 0,
            "byok_usage_monthly": 0,
            "include_byok_in_limit": False,
            "label": self.label,
            "limit": None if self.limit is None else float(self.limit),
            "limit_remaining": remaining,
            "limit_reset": self.limit_reset,
            "usage": float(self.usage),
            "usage_daily": float(self.usage_daily),
            "usage_weekly": float(self.usage_weekly),
            "usage_monthly": float(self.usage_monthly),
        }

    def obj(self) -> dict[str, Any]:
        """The key object of the management ``/keys`` routes: the only place with the key's name and hash."""
        return {
            **self.usage_fields(),
            "created_at": "2026-01-01T00:00:00Z",
            "creator_user_id": None,
            "disabled": self.disabled,
            "expires_at": None,
            "hash": self.hash,
            "name": self.name,
            "updated_at": None,
            "workspace_id": None,
            "last_used_at": None,
            "external_user": None,
        }


@dataclass
class Fault:
    status: int = 500
    times: int = 1
    retry_after: float | None = None
    delay: float = 0.0
    invalid_json: bool = False
    message: str = "Internal Server Error"


@dataclass
class FakeState:
    keys: dict[str, FakeKey] = field(default_factory=dict)
    management_key: str | None = None
    total_credits: Decimal = Decimal(100)
    models: list[dict[str, Any]] = field(default_factory=list)
    generations: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: dict[str, Fault] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    limit_status: int = 403
    key_shape_2025_09: bool = False
    """``/key`` answers in its 2025-09 shape: no ``usage_daily``/``weekly``/``monthly`` (openrouter-api.md §2)."""


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": status, "message": message}}, status_code=status, headers=headers)


def _model(
    slug: str, name: str, context: int | None, pricing: dict[str, object], architecture: dict[str, str] | None = None
) -> dict[str, object]:
    """A ``/models`` entry in the documented shape; only what guardd reads differs between entries."""
    return {
        "id": slug,
        "canonical_slug": slug,
        "name": name,
        "created": 1,
        "context_length": context,
        "architecture": architecture or {},
        "top_provider": {},
        "per_request_limits": None,
        "supported_parameters": [],
        "default_parameters": None,
        "supported_voices": None,
        "links": {},
        "pricing": pricing,
    }


DEFAULT_MODELS = [
    _model(
        "openai/gpt-4o-mini",
        "GPT-4o mini",
        128000,
        {"prompt": "0.00000015", "completion": "0.0000006", "request": "0"},
        {"modality": "text->text"},
    ),
    # numbers, not strings, and a cache price: the 2025-09 spec typed prices number|string
    _model(
        "anthropic/claude-3.5-sonnet",
        "Sonnet",
        200000,
        {"prompt": 0.000003, "completion": 0.000015, "input_cache_read": "0.0000003"},
    ),
    # "-1" for a variable-price router (client fixtures, not the spec): an unknown price
    _model("openrouter/auto", "Auto", None, {"prompt": "-1", "completion": "-1"}),
]


def masked_label(secret: str) -> str:
    """OpenRouter's ``label`` of a key: its masked form, ``sk-or-v1-0e6...1c96`` (not the key's name)."""
    return f"{secret[:12]}...{secret[-4:]}"


class FakeOpenRouter:
    """The server; a context manager that runs it in a background thread."""

    def __init__(self) -> None:
        self.state = FakeState(models=[dict(m) for m in DEFAULT_MODELS])
        self.app = Starlette(routes=self._routes())
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # ---- control from tests -----------------------------------------------------------------------------
    def add_key(
        self,
        secret: str,
        name: str = "key",
        usage_daily: str | int = 0,
        usage: str | int | None = None,
        limit: str | int | None = None,
        disabled: bool = False,
    ) -> FakeKey:
        key = FakeKey(
            secret,
            name,
            masked_label(secret),
            hashlib.sha256(secret.encode()).hexdigest(),
            limit=None if limit is None else Decimal(str(limit)),
            disabled=disabled,
        )
        key.add(Decimal(str(usage_daily)))
        if usage is not None:
            key.usage = Decimal(str(usage))
        self.state.keys[secret] = key
        return key

    def fail(
        self,
        path: str,
        status: int = 500,
        times: int = 1,
        retry_after: float | None = None,
        delay: float = 0.0,
        invalid_json: bool = False,
        message: str = "Internal Server Error",
    ) -> None:
        self.state.faults[path] = Fault(status, times, retry_after, delay, invalid_json, message)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def __enter__(self) -> FakeOpenRouter:
        import uvicorn

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake OpenRouter did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        if self._thread:
            self._thread.join(5)

    # ---- the API ----------------------------------------------------------------------------------------
    def _routes(self) -> list[Route]:
        p = "/api/v1"
        return [
            Route(f"{p}/key", self._key),
            Route(f"{p}/auth/key", self._key),
            Route(f"{p}/credits", self._credits),
            Route(f"{p}/keys", self._keys),
            Route(f"{p}/keys/{{hash}}", self._patch_key, methods=["PATCH", "GET"]),
            Route(f"{p}/models", self._models),
            Route(f"{p}/generation", self._generation),
            Route(f"{p}/chat/completions", self._chat, methods=["POST"]),
        ]

    async def _fault(self, request: Request) -> Response | None:
        path = request.url.path.removeprefix("/api/v1")
        self.state.requests.append((request.method, path, dict(request.headers)))
        fault = self.state.faults.get(path)
        if fault is None or fault.times <= 0:
            return None
        fault.times -= 1
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.invalid_json:
            return Response("{not json", media_type="application/json")
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
        return _error(fault.status, fault.message, headers)

    def _auth(self, request: Request) -> FakeKey | str | None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return None
        secret = header[7:]
        if secret == self.state.management_key:
            return "management"
        return self.state.keys.get(secret)

    async def _key(self, request: Request) -> Response:
        if (fault := await self._fault(request)) is not None:
            return fault
        who = self._auth(request)
        if who is None:
            return _error(401, "User not found.")
        if who == "management":
            return JSONResponse(
                {
                    "data": {
                        "label": "management",
                        "usage": 0,
                        "limit": None,
                        "is_management_key": True,
                        "is_free_tier": False,
                        "limit_remaining": None,
                    }
                }
            )
        assert isinstance(who, FakeKey)
        if self.state.key_shape_2025_09:
            old = who.usage_fields()
            return JSONResponse(
                {
                    "data": {
                        **{k: old[k] for k in ("label", "limit", "usage", "limit_remaining")},
                        "is_free_tier": False,
                        "is_provisioning_key": False,
                        "rate_limit": {"requests": -1, "interval": "10s"},
                    }
                }
            )
        data = who.usage_fields()  # no name, no hash, no disabled flag: /key does not carry them
        data.update(
            {
                "creator_user_id": None,
                "expires_at": None,
                "is_free_tier": False,
                "is_management_key": False,
                "is_provisioning_key": False,
                "rate_limit": {"requests": -1, "interval": "10s", "note": "deprecated"},
                "free_model_daily_requests": {"used": 0, "limit": 50, "remaining": 50},
            }
        )
        return JSONResponse({"data": data})

    def _management(self, request: Request) -> Response | None:
        who = self._auth(request)
        if who is None:
            return _error(401, "Missing Authentication header")
        if who != "management":
            return _error(403, MANAGEMENT_ONLY)
        return None

    async def _credits(self, request: Request) -> Response:
        if (fault := await self._fault(request)) is not None:
            return fault
        if (denied := self._management(request)) is not None:
            return denied
        used = sum((k.usage for k in self.state.keys.values()), Decimal(0))
        return JSONResponse({"data": {"total_credits": float(self.state.total_credits), "total_usage": float(used)}})

    async def _keys(self, request: Request) -> Response:
        if (fault := await self._fault(request)) is not None:
            return fault
        if (denied := self._management(request)) is not None:
            return denied
        offset = int(request.query_params.get("offset", "0"))
        with_disabled = request.query_params.get("include_disabled") == "true"
        keys = [k.obj() for k in self.state.keys.values() if with_disabled or not k.disabled]
        return JSONResponse({"data": keys[offset : offset + KEYS_PAGE]})

    async def _patch_key(self, request: Request) -> Response:
        if (fault := await self._fault(request)) is not None:
            return fault
        if (denied := self._management(request)) is not None:
            return denied
        key = next((k for k in self.state.keys.values() if k.hash == request.path_params["hash"]), None)
        if key is None:
            return _error(404, "Key not found")
        if request.method == "PATCH":
            body = await request.json()
            if "disabled" in body:
                key.disabled = bool(body["disabled"])
        return JSONResponse({"data": key.obj()})

    async def _models(self, request: Request) -> Response:
        if (fault := await self._fault(request)) is not None:
            return fault
        return JSONResponse({"data": self.state.models, "total_count": len(self.state.models), "links": {"next": None}})

    async def _generation(self, request: Request) -> Response:
        if (fault := await self._fault(request)) is not None:
            return fault
        record = self.state.generations.get(request.query_params.get("id", ""))
        if record is None:
            return _error(404, "Generation not found")
        return JSONResponse({"data": record})

    async def _chat(self, request: Request) -> Response:
        if (fault := await self._fault(request)) is not None:
            return fault
        who = self._auth(request)
        if not isinstance(who, FakeKey):
            return _error(401, "User not found.")
        if who.disabled:
            return _error(401, "User not found.")
        if who.limit is not None and who.usage >= who.limit:
            return _error(
                self.state.limit_status,
                "Key limit exceeded (daily limit). Manage it using https://openrouter.ai/settings/keys",
            )
        body = await request.json()
        model = body.get("model", "openai/gpt-4o-mini")
        prompt = sum(len(str(m.get("content", ""))) // 4 + 1 for m in body.get("messages", []))
        completion = 12
        pricing: dict[str, Any] = next((m["pricing"] for m in self.state.models if m["id"] == model), {})
        cost = Decimal(str(pricing.get("prompt", 0))) * prompt + Decimal(str(pricing.get("completion", 0))) * completion
        cost = max(cost, Decimal(0))
        who.add(cost)
        gen_id = f"gen-{len(self.state.generations) + 1}-{int(time.time())}"
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "cost": float(cost),
            "is_byok": False,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
        self.state.generations[gen_id] = {
            "id": gen_id,
            "model": model,
            "total_cost": float(cost),
            "usage": float(cost),
            "tokens_prompt": prompt,
            "tokens_completion": completion,
            "native_tokens_prompt": prompt,
            "native_tokens_completion": completion,
        }
        created = int(time.time())
        if body.get("stream"):

            async def events() -> Any:
                yield ": OPENROUTER PROCESSING\n\n"
                chunk = {
                    "id": gen_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "provider": "OpenAI",
                    "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hello"}}],
                }
                yield f"data: {json.dumps(chunk)}\n\n"
                final = {
                    "id": gen_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "provider": "OpenAI",
                    "choices": [],
                    "usage": usage,
                }
                yield f"data: {json.dumps(final)}\n\n"
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream", headers={"X-Generation-Id": gen_id})
        return JSONResponse(
            {
                "id": gen_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "provider": "OpenAI",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "Hello"},
                        "finish_reason": "stop",
                        "native_finish_reason": "stop",
                    }
                ],
                "usage": usage,
            },
            headers={"X-Generation-Id": gen_id},
        )
