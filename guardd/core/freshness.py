"""Whether a polled source (``openrouter``) is fresh: pure, ``now`` passed in.

A source is stale when nothing it says can be trusted at ``now``:

- it was never polled, or no poll of it ever succeeded (a first poll that failed leaves no figure at all: what
  it would say is unknown from that moment, not after ``stale_after``);
- it has failed for longer than ``stale_after`` (the figures from its last success are that old);
- its last success is older than ``stale_after`` (one second of grace: a poll every ``stale_after`` lands on time).

A source that failed after a success stays fresh for ``stale_after`` (a blip is not an outage): its last figures
are recent.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from guardd.core.evaluate import Staleness

GRACE = timedelta(seconds=1)


def source_staleness(
    name: str,
    ok_at: datetime | None,
    failing_since: datetime | None,
    error: str | None,
    now: datetime,
    stale_after: timedelta,
    polled: bool = True,
) -> Staleness:
    """Return the staleness of source ``name`` at ``now`` from its last success ``ok_at``, the start of its current
    run of failures ``failing_since`` and the last ``error`` (``polled`` False: it has no record at all)."""
    if not polled or (ok_at is None and failing_since is None):
        return Staleness(True, None, f"{name} has not been polled yet")
    if ok_at is None:
        why = error or "polling fails"
        return Staleness(True, failing_since, f"{name} has not answered a poll yet: its figures are unknown ({why})")
    if failing_since is not None and now - failing_since > stale_after:
        return Staleness(True, failing_since, error or "polling fails")
    if now - ok_at > stale_after + GRACE:
        return Staleness(True, ok_at, f"no successful poll since {ok_at.isoformat()}")
    return Staleness()
