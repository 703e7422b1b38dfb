"""Warning log lines for ledger lines set aside (contract §7): each with its ledger file, offset and reason, at most
10 a minute per ledger file, then one summary line (``guardd quarantine`` lists every one).

Called by the event stores once a batch has committed, so a line is logged only when its record exists.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from guardd.core.batch import QuarantinedLine
from guardd.core.ratelimit import RateLimit, Verdict

log = logging.getLogger("guardd.ledger")
PER_MINUTE = 10
_limit = RateLimit(PER_MINUTE, 60.0)


def log_set_aside(lines: Sequence[QuarantinedLine], now: float | None = None) -> None:
    """Log ``lines`` at warning level, rate-limited per ledger file (``now``: monotonic seconds)."""
    moment = time.monotonic() if now is None else now
    for line in lines:
        decision = _limit.check(line.path, moment)
        ctx = {"ledger": line.path}
        if decision.missed:
            log.warning(
                "%d more lines were set aside in the previous minute without a line each here (guardd quarantine)",
                decision.missed,
                extra={"ctx": ctx},
            )
        if decision.verdict is Verdict.LOG:
            excerpt = line.excerpt if len(line.excerpt) <= 80 else line.excerpt[:79] + "…"
            log.warning(
                "ledger line set aside: %s", line.reason, extra={"ctx": {**ctx, "offset": line.offset, "line": excerpt}}
            )
        elif decision.verdict is Verdict.SUMMARY:
            log.warning(
                "more lines are being set aside; logging at most %d a minute per ledger (guardd quarantine lists all)",
                PER_MINUTE,
                extra={"ctx": ctx},
            )
