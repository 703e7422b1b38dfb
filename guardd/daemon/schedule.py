"""The daemon's timetable: APScheduler jobs that only *request* steps from the worker (:mod:`guardd.services.worker`).

Every job has an explicit zone, ``max_instances=1``, ``coalesce`` and a generous ``misfire_grace_time``; none of
them does any work itself, so a slow step can never make two jobs overlap. Jobs: full evaluation every
``evaluate_every``, delivery every 2 s, OpenRouter polling every ``poll_every`` (first at once), the daily digest at
``digest_at``, and a date job a hair after the next window boundary, so a rollover releases the switch at that
instant (the worker's rollover step schedules the next one).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from guardd.config import Config
from guardd.core.periods import window_at
from guardd.services.worker import Step


class Timetable:
    """The jobs of one running scheduler. ``request`` asks the worker for a step; ``evaluate_all`` for a full
    evaluation."""

    def __init__(self, scheduler: Any, request: Callable[[Step], None], evaluate_all: Callable[[], None]) -> None:
        self.scheduler = scheduler
        self.request = request
        self.evaluate_all = evaluate_all

    def build(self, config: Config) -> None:
        """(Re)build every job from ``config`` (a reload calls it again)."""
        from apscheduler.triggers.interval import IntervalTrigger

        scheduler, tz = self.scheduler, config.zone
        common: dict[str, Any] = {
            "max_instances": 1,
            "coalesce": True,
            "misfire_grace_time": 300,
            "replace_existing": True,
        }
        every = config.settings.guardd.evaluate_every.total_seconds()
        scheduler.add_job(self._job(None), IntervalTrigger(seconds=every, timezone=tz), id="evaluate", **common)
        scheduler.add_job(self._job(Step.DELIVER), IntervalTrigger(seconds=2, timezone=tz), id="deliver", **common)
        for optional in ("openrouter", "digest"):  # a reload may have removed them
            if scheduler.get_job(optional) is not None:
                scheduler.remove_job(optional)
        orr = config.settings.openrouter
        if orr is not None:
            scheduler.add_job(
                self._job(Step.OPENROUTER),
                IntervalTrigger(seconds=orr.poll_every.total_seconds(), timezone=tz),
                id="openrouter",
                next_run_time=datetime.now(tz),
                **common,
            )
        if config.settings.alerts.digest_at:
            from apscheduler.triggers.cron import CronTrigger

            hour, minute = map(int, config.settings.alerts.digest_at.split(":"))
            scheduler.add_job(
                self._job(Step.DIGEST), CronTrigger(hour=hour, minute=minute, timezone=tz), id="digest", **common
            )
        self.schedule_rollover(config)

    def schedule_rollover(self, config: Config) -> None:
        """Schedule the rollover job at the next end of any budget's calendar window."""
        from apscheduler.triggers.date import DateTrigger

        now = datetime.now(UTC)
        settings = config.settings.guardd
        ends = [
            window_at(kind, settings.zone, now, settings.weekday).end
            for b in config.budgets
            for kind, _ in b.calendar_limits()
        ]
        if not ends:
            return
        at = min(ends) + timedelta(milliseconds=50)  # a hair after the boundary: the new window is the current one
        self.scheduler.add_job(
            self._job(Step.ROLLOVER),
            DateTrigger(run_date=at, timezone=UTC),
            id="rollover",
            replace_existing=True,
            misfire_grace_time=3600,
        )

    def shutdown(self) -> None:
        self.scheduler.shutdown(wait=False)

    def _job(self, step: Step | None) -> Callable[[], Awaitable[None]]:
        """A job that requests ``step`` (None: a full evaluation; a rollover also evaluates everything)."""

        async def job() -> None:
            if step is None or step is Step.ROLLOVER:
                self.evaluate_all()
            if step is not None:
                self.request(step)

        return job
