"""Sending one message through one apprise URL, with the outcome translated into guardd's terms.

apprise never raises on a failed delivery: it returns a result whose status and logs say what happened. This
adapter turns that into success or :class:`DeliveryError` (``permanent`` when the URL itself is unusable, so
retrying cannot help). Each notifier gets its own ``Apprise`` object and is notified with an explicit tag of
its own: an apprise call *without* a tag notifies every service, tagged ones included.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from guardd.core.redact import redact_text, redact_url
from guardd.errors import DeliveryError

log = logging.getLogger("guardd.notify")

_TAG = "guardd-target"


def _apprise() -> Any:
    import warnings

    with warnings.catch_warnings():  # apprise 2.2 imports the deprecated imghdr module on Python 3.11
        warnings.simplefilter("ignore", DeprecationWarning)
        import apprise
    return apprise


@dataclass(frozen=True, slots=True)
class Channel:
    """One configured notifier: its index, secret URL, redacted URL, tags and minimum severity."""

    index: int
    url: str
    display: str
    tags: tuple[str, ...]
    min_severity: str

    @classmethod
    def build(cls, index: int, url: str, tags: list[str], min_severity: str) -> Channel:
        return cls(index, url, redact_url(url), tuple(tags), min_severity)


def check_url(url: str) -> str | None:
    """Return why apprise cannot use ``url`` (None when it can)."""
    apprise = _apprise()
    if apprise.Apprise.instantiate(url) is None:
        return f"apprise does not understand {redact_url(url)} (unknown scheme or missing parts)"
    return None


async def send(channel: Channel, title: str, body: str, severity: str, timeout: float = 30.0) -> None:
    """Deliver one message through ``channel``; raise DeliveryError when it was not delivered."""
    apprise = _apprise()
    instance = apprise.Apprise()
    if not instance.add(channel.url, tag=_TAG):
        raise DeliveryError(f"{channel.display}: apprise does not understand this URL", permanent=True)
    notify_type = {
        "critical": apprise.NotifyType.FAILURE,
        "warning": apprise.NotifyType.WARNING,
        "info": apprise.NotifyType.INFO,
    }.get(severity, apprise.NotifyType.INFO)
    try:
        result = await instance.async_notify(
            body=redact_text(body),
            title=redact_text(title),
            notify_type=notify_type,
            body_format=apprise.NotifyFormat.MARKDOWN,
            tag=_TAG,
        )
    except Exception as exc:  # apprise plugins may raise despite the contract; keep the daemon alive
        raise DeliveryError(f"{channel.display}: {redact_text(str(exc))}") from exc
    if bool(result):
        return
    reasons: list[str] = []
    for item in getattr(result, "results", ()):
        for entry in item.logs() if callable(getattr(item, "logs", None)) else ():
            message = getattr(entry, "message", "")
            if message and getattr(entry, "level", "") in ("WARNING", "ERROR"):
                reasons.append(redact_text(str(message)))
    detail = "; ".join(dict.fromkeys(reasons)) or f"status {getattr(result, 'status', 'unknown')}"
    # apprise logs HTTP failures as "...: Not Found - error=404."; a 4xx other than 408/429 will not heal itself.
    codes = [int(c) for c in re.findall(r"error=(\d{3})\b", detail)]
    permanent = bool(codes) and all(400 <= c < 500 and c not in (408, 429) for c in codes)
    raise DeliveryError(f"{channel.display}: {detail}", permanent=permanent)
