"""The daemon's execution model: one worker does all the work, one step at a time.

Nothing else in the daemon touches shared state. The scheduler's jobs, file notifications, the stat backstop and
signals only *request* steps (:meth:`Worker.request`): a request sets a flag and wakes the worker, so requests
coalesce and never pile up. The worker runs a **turn**: first the work submitted from outside
(:meth:`Worker.run_exclusive`: the HTTP service's pushed batches and manual switch changes, a configuration
reload), then each requested step in the fixed order of :data:`ORDER` — ingest → OpenRouter poll → evaluate →
deliver → digest → rollover — so a turn's evaluation sees what its ingest committed, and what it announces is
delivered in the same turn. A step requested by an earlier step of the same turn runs in that turn.

A step that fails is logged with its cause — once a minute for the same error, whichever steps hit it, then a line
when it works again — and requested again after :data:`RETRY_AFTER`; it never takes another step's work down.
The stop flag is checked between steps (and by ingestion between batches), so SIGTERM ends a turn within one
batch, even in the middle of a large backlog. One exception to "all work in the worker", for liveness: the HTTP
fetches of an OpenRouter poll run beside it (an outage's timeouts and retries must not hold up ingestion); their
snapshot writes are store transactions, serialised with the worker's by the store, and the decisions taken on
them (the OpenRouter checks, evaluation) run in the worker's ``openrouter poll`` step
(:mod:`guardd.services.openrouter.steps`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from guardd.errors import GuarddError

log = logging.getLogger("guardd.daemon.server")

T = TypeVar("T")

RETRY_AFTER = 2.0  # seconds before a failed step is tried again
REPEAT_LOG_AFTER = 60.0  # seconds: the same failure is logged at most once a minute
DEBOUNCE = 0.005  # let a burst of appends land; one turn covers them


class Step(enum.Enum):
    """A unit of the daemon's work; requested by name, run by the worker in :data:`ORDER`."""

    INGEST = "ingest"
    OPENROUTER = "openrouter poll"
    EVALUATE = "evaluation"
    DELIVER = "delivery"
    DIGEST = "digest"
    ROLLOVER = "rollover"


ORDER = (Step.INGEST, Step.OPENROUTER, Step.EVALUATE, Step.DELIVER, Step.DIGEST, Step.ROLLOVER)


class FailureLog:
    """Logs a failing step once with its cause, repeats of the same error once a minute, and the recovery."""

    def __init__(self) -> None:
        self._errors: dict[str, tuple[float, int]] = {}  # error text -> (logged at, repeats not logged since)
        self._failing: dict[str, int] = {}  # step -> consecutive failures

    def failed(self, name: str, exc: BaseException) -> None:
        self._failing[name] = self._failing.get(name, 0) + 1
        text = f"{type(exc).__name__}: {exc}" if not isinstance(exc, GuarddError) else str(exc)
        now = time.monotonic()
        logged_at, repeats = self._errors.get(text, (None, 0))
        if logged_at is not None and now - logged_at < REPEAT_LOG_AFTER:
            self._errors[text] = (logged_at, repeats + 1)
            return
        self._errors[text] = (now, 0)
        more = f" ({repeats} more time(s) in the last minute)" if repeats else ""
        log.error(
            "%s failed: %s%s; retrying in %gs (the same error is logged once a minute)",
            name,
            text,
            more,
            RETRY_AFTER,
            exc_info=exc if not isinstance(exc, GuarddError) else None,
        )

    def succeeded(self, name: str) -> None:
        failures = self._failing.pop(name, 0)
        if failures:
            log.info("%s works again after %d failed attempt(s)", name, failures)
        if not self._failing:
            self._errors.clear()


class Worker:
    """Runs the daemon's steps one at a time (see the module docstring). Use from one event loop."""

    def __init__(
        self,
        steps: dict[Step, Callable[[], Awaitable[None]]],
        stop: asyncio.Event,
        after_step: Callable[[], None] = lambda: None,
        backstop: float = 2.0,
    ) -> None:
        self.steps = steps
        self.stop = stop
        self.after_step = after_step
        self.backstop = backstop
        self.failures = FailureLog()
        self._due: set[Step] = set()
        self._wake = asyncio.Event()
        self._jobs: deque[tuple[Callable[[], Awaitable[Any]], asyncio.Future[Any]]] = deque()
        self._retries: dict[Step, asyncio.TimerHandle] = {}
        self._ingested_at = time.monotonic()
        """When the ingest step last started (the backstop counts from it)."""
        self.turned = asyncio.Event()
        """Set once the first turn has run (start-up: READY=1 follows it)."""
        self.busy_since: float | None = None
        """When (monotonic) the step running now began; None between steps. A step running for minutes is stuck."""

    def request(self, *steps: Step) -> None:
        """Ask for ``steps`` to run in the next turn (or the current one, if their place in it is still ahead)."""
        self._due.update(steps)
        self._wake.set()

    async def run_exclusive(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work()`` in the worker's next turn, serialised with every step, and return its result (or raise
        its exception). The one entry point for writers outside the worker (the HTTP service, a reload).
        Raise :class:`GuarddError` when the daemon is stopping."""
        if self.stop.is_set():
            raise GuarddError("guardd is stopping")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.append((work, future))
        self._wake.set()
        return await future

    async def run(self) -> None:
        """Run turns until the stop flag is set; then refuse the work still waiting."""
        try:
            while not self.stop.is_set():
                await self._wait()
                if not self.stop.is_set():
                    await self.turn()
        finally:
            for handle in self._retries.values():
                handle.cancel()
            while self._jobs:
                _work, future = self._jobs.popleft()
                if not future.done():
                    future.set_exception(GuarddError("guardd is stopping"))

    async def turn(self) -> None:
        """Run the waiting outside work, then every requested step in :data:`ORDER`."""
        self._wake.clear()
        while self._jobs and not self.stop.is_set():
            work, future = self._jobs.popleft()
            if future.done():  # its caller gave up waiting
                continue
            try:
                result = await work()
            except asyncio.CancelledError:
                future.cancel()
                raise
            except Exception as exc:
                if not future.done():  # the caller may have given up while its work ran: nobody to tell
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(result)
            finally:
                self.after_step()
        for step in ORDER:
            if self.stop.is_set():
                return
            if step in self._due:
                self._due.discard(step)
                await self._run(step)
        self.turned.set()

    async def _wait(self) -> None:
        # The stat backstop: file notifications can be lost (or be unavailable), so the ledgers are read at least
        # every ``backstop`` seconds — counted from the last ingest, so other wake-ups cannot starve it.
        if not self._wake.is_set():
            left = self.backstop - (time.monotonic() - self._ingested_at)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(left, 0.0))
        if time.monotonic() - self._ingested_at >= self.backstop:
            self._due.add(Step.INGEST)
        await asyncio.sleep(DEBOUNCE)

    async def _run(self, step: Step) -> None:
        run = self.steps.get(step)
        if run is None:
            return
        if step is Step.INGEST:
            self._ingested_at = time.monotonic()
        self.busy_since = time.monotonic()
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failures.failed(step.value, exc)
            if step not in self._retries:
                self._retries[step] = asyncio.get_running_loop().call_later(RETRY_AFTER, self._retry, step)
        else:
            self.failures.succeeded(step.value)
        finally:
            self.busy_since = None
            self.after_step()

    def _retry(self, step: Step) -> None:
        self._retries.pop(step, None)
        self.request(step)
