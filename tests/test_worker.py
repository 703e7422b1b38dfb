"""The daemon's one worker: steps in a fixed order, never overlapping, a failure contained and logged once."""

from __future__ import annotations

import asyncio
import logging

import pytest

from guardd.errors import GuarddError, StoreError
from guardd.services.worker import Step, Worker


def worker_with(steps, stop: asyncio.Event | None = None) -> Worker:
    return Worker(steps, stop or asyncio.Event())


async def test_requested_steps_run_in_order_one_at_a_time():
    ran: list[str] = []
    running = 0

    def step(name: str):
        async def run() -> None:
            nonlocal running
            running += 1
            assert running == 1
            await asyncio.sleep(0)
            ran.append(name)
            running -= 1

        return run

    worker = worker_with({s: step(s.value) for s in Step})
    worker.request(Step.DELIVER, Step.EVALUATE, Step.INGEST)
    await worker.turn()
    assert ran == ["ingest", "evaluation", "delivery"]


async def test_a_failing_step_does_not_stop_the_steps_after_it():
    ran: list[str] = []

    async def fail() -> None:
        raise StoreError("cannot write the state database x: database or disk is full")

    async def evaluate() -> None:
        ran.append("evaluate")

    worker = worker_with({Step.INGEST: fail, Step.EVALUATE: evaluate})
    worker.request(Step.INGEST, Step.EVALUATE)
    await worker.turn()
    assert ran == ["evaluate"]


async def test_the_same_failure_is_logged_once_and_the_recovery_once(caplog):
    broken = True

    async def ingest() -> None:
        if broken:
            raise StoreError("cannot write the state database x: database or disk is full")

    worker = worker_with({Step.INGEST: ingest})
    with caplog.at_level(logging.INFO, logger="guardd.daemon.server"):
        for _ in range(5):
            worker.request(Step.INGEST)
            await worker.turn()
        broken = False
        worker.request(Step.INGEST)
        await worker.turn()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "disk is full" in errors[0].getMessage()
    assert any("works again after 5 failed attempt(s)" in r.getMessage() for r in caplog.records)


async def test_outside_work_runs_in_the_worker_and_returns_its_result():
    worker = worker_with({})
    task = asyncio.create_task(worker.run_exclusive(lambda: asyncio.sleep(0, result=42)))
    await asyncio.sleep(0)
    await worker.turn()
    assert await task == 42


async def test_outside_work_is_refused_once_the_daemon_stops():
    stop = asyncio.Event()
    stop.set()
    with pytest.raises(GuarddError, match="stopping"):
        await worker_with({}, stop).run_exclusive(lambda: asyncio.sleep(0))


async def test_a_caller_that_gives_up_while_its_work_runs_does_not_stop_the_worker():
    started, release = asyncio.Event(), asyncio.Event()
    ingested = asyncio.Event()

    async def slow() -> str:
        started.set()
        await release.wait()
        return "done"

    async def ingest() -> None:
        ingested.set()

    stop = asyncio.Event()
    worker = worker_with({Step.INGEST: ingest}, stop)
    runner = asyncio.create_task(worker.run())
    caller = asyncio.create_task(worker.run_exclusive(slow))
    await asyncio.wait_for(started.wait(), 5)
    caller.cancel()  # an HTTP client hung up, or a reload was cancelled, while its work was running
    await asyncio.sleep(0)
    release.set()
    worker.request(Step.INGEST)
    await asyncio.wait_for(ingested.wait(), 5)
    assert not runner.done()
    stop.set()
    worker.request(Step.INGEST)
    await asyncio.wait_for(runner, 5)


async def test_the_stat_backstop_reads_ledgers_even_while_other_requests_keep_waking_the_worker():
    # File notifications can be lost or unavailable (inotify watches exhausted, NFS): the 2 s backstop is then the
    # only reader of the ledgers. Other wake-ups (evaluate_every = "1s", pushed events, polls) must not starve it.
    ingested = asyncio.Event()

    async def ingest() -> None:
        ingested.set()

    async def evaluate() -> None:
        pass

    stop = asyncio.Event()
    worker = Worker({Step.INGEST: ingest, Step.EVALUATE: evaluate}, stop, backstop=0.2)
    runner = asyncio.create_task(worker.run())

    async def keep_waking() -> None:
        while not stop.is_set():
            worker.request(Step.EVALUATE)
            await asyncio.sleep(0.05)

    waker = asyncio.create_task(keep_waking())
    try:
        await asyncio.wait_for(ingested.wait(), 10)  # before: never, however long it ran
    finally:
        stop.set()
        worker.request(Step.EVALUATE)
        await asyncio.wait_for(asyncio.gather(runner, waker), 5)
