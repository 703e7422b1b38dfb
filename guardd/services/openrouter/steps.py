"""The daemon's OpenRouter work, split along the execution model (:mod:`guardd.services.worker`).

The HTTP fetches of a poll — timeouts, retries, ``Retry-After`` waits — run *beside* the worker, so an OpenRouter
outage never holds up ingestion or evaluation; the snapshot rows they write are store transactions, which the store
serialises with the worker's. Every decision on what was fetched (the balance, runway and drift checks, and the
evaluation of OpenRouter-sourced budgets) is taken *in* the worker's ``openrouter poll`` step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from guardd.services.worker import Step, Worker

STOP_TIMEOUT = 10.0


class OpenRouterSteps:
    """The poller, its checks and the fetch in flight of one daemon (all None without ``[openrouter]``)."""

    def __init__(self, worker: Worker, request_evaluation: Callable[[], None]) -> None:
        self.worker = worker
        self.request_evaluation = request_evaluation
        self.remote: Any = None  # guardd.services.openrouter.poll.RemotePoller
        self.checks: Any = None  # guardd.services.openrouter.checks.RemoteChecks
        self._fetch: asyncio.Task[None] | None = None
        self._fetched_at: datetime | None = None

    def setup(self, parts: tuple[Any, Any] | None) -> None:
        """Take the poller (kept across reloads) and its checks, as :meth:`guardd.app.App.openrouter` built them
        (the key switch set on the engine); ``parts`` None without ``[openrouter]``."""
        if parts is not None:
            self.remote, self.checks = parts

    async def step(self) -> None:
        """In the worker: run the checks on a finished fetch, or start a fetch (at most one in flight)."""
        if self.remote is None:
            return
        if self._fetched_at is not None:
            now, self._fetched_at = self._fetched_at, None
            await self.checks.run(now)
            self.request_evaluation()
        elif self._fetch is None or self._fetch.done():
            self._fetch = asyncio.create_task(self._fetch_now(), name="openrouter-fetch")

    async def _fetch_now(self) -> None:
        now = datetime.now(UTC)
        try:
            await self.remote.poll(now)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.worker.failures.failed("openrouter fetch", exc)
            return
        self.worker.failures.succeeded("openrouter fetch")
        self._fetched_at = now
        self.worker.request(Step.OPENROUTER)

    async def poll_inline(self) -> None:
        """Poll and run the checks at once (``run --once``)."""
        if self.remote is not None:
            now = datetime.now(UTC)
            await self.remote.poll(now)
            await self.checks.run(now)

    async def stop_fetch(self) -> None:
        if self._fetch is not None and not self._fetch.done():
            self._fetch.cancel()
            await asyncio.wait({self._fetch}, timeout=STOP_TIMEOUT)
        self._fetch = None

    async def aclose(self) -> None:
        """Stop a fetch in flight and close the poller's HTTP client (a reload builds a new one)."""
        await self.stop_fetch()
        if self.remote is not None:
            await self.remote.aclose()
            self.remote = None
