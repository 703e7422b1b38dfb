"""guardd's HTTP service (contract §8): the status API, metrics, the remote kill-switch, push ingestion and the
status page, served inside the daemon.

- :mod:`.app` — the Starlette application: routes, token rules, body limit, JSON errors.
- :mod:`.backend` — the narrow interface the routes call; the daemon implements it (one writer).
- :mod:`.feed` — the kill-switch document as served: its ETag and the long-poll wake-up.
- :mod:`.push` and :mod:`.broadcast` — pushed ledger lines and OpenRouter Broadcast (OTLP JSON) into batches.
- :mod:`.metrics` — the Prometheus collector; :mod:`.page` — the status page; :mod:`.openapi` — the schema.
- :mod:`.server` — uvicorn inside the daemon's event loop.
"""
