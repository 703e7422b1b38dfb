"""The kill-switch file as a client reads it (contract §3): :class:`KillSwitch` and :class:`BudgetExceeded`.

Standard library only (httpx for a switch read over HTTP); re-exported by :mod:`guardd.client`. The validation
and liveness rules are the ones the ``guardd`` commands use (:mod:`guardd.core.switch_read`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from guardd.core.switch_read import CLOCK_SKEW, Malformed, SwitchView, liveness, read_document

__all__ = ["BudgetExceeded", "KillSwitch"]

_log = logging.getLogger("guardd.client")
GLOBAL = "*"


class BudgetExceeded(RuntimeError):
    """A request was refused because a budget's kill-switch is tripped (or its headroom is too small)."""

    def __init__(self, message: str, scope: str | None = None, until: str | None = None) -> None:
        super().__init__(message)
        self.scope = scope
        self.until = until


class KillSwitch:
    """The switch file as a client sees it (contract §3).

    ``check()`` refuses (raises :class:`BudgetExceeded`) when the document's top-level ``tripped`` is true, when a
    scope in ``budgets`` (every scope when ``budgets`` is None) or the global ``*`` is tripped, or when an
    ``estimate`` does not fit a relevant scope's ``headroom``.

    **A dead guard** — no file, an unreadable one, another ``schema``, a malformed document (treated like a
    missing file), a document past its ``expires_at`` or with a heartbeat more than a minute in the future — is
    this client's explicit choice: ``fail_closed=False`` (the default) allows requests, ``fail_closed=True``
    refuses them — except that a valid document whose trip concerns this client still refuses after it expired:
    a guard's death never turns its last "stop" into permission. Either way a warning is logged on the
    ``guardd.client`` logger at most once a minute while the guard stays dead. ``max_age`` (seconds, optional,
    kept for older callers) also expires a document whose heartbeat is older than that. ``check()`` never raises
    anything but :class:`BudgetExceeded` (and ``ValueError`` for an ``estimate`` that is not a number).

    Cost: one ``stat`` and a clock read per call while the file is unchanged (≈ 3 µs); the file is re-read and
    validated only when its ``stat`` changes.

    ``path`` may also be the URL of guardd's ``/v1/killswitch`` (``http://guard:9787/v1/killswitch``, or just the
    service's base URL). Then ``check()`` answers from the last document it fetched, and at most once every
    ``refresh`` seconds (default 1) it first asks again with ``If-None-Match`` — a 304 costs no body and brings
    the current heartbeat and expiry in the ``Guardd-Heartbeat-At``/``Guardd-Expires-At`` headers. The request is
    made inside that one ``check()`` (``timeout`` seconds at most, default 2), so no thread is started. A failed
    request keeps the last document: it then expires like a file nobody refreshes; before any success the guard
    counts as missing. GETs need no token.
    """

    WARN_EVERY = 60.0

    def __init__(
        self,
        path: str | os.PathLike[str],
        budgets: Iterable[str] | None = None,
        max_age: float | None = None,
        fail_closed: bool = False,
        refresh: float = 1.0,
        timeout: float = 2.0,
    ) -> None:
        self.path = os.fspath(path)
        self._remote = _RemoteSwitch(self.path, refresh, timeout) if _is_url(self.path) else None
        self.budgets = None if budgets is None else frozenset(budgets)
        self.max_age = max_age
        self.fail_closed = fail_closed
        self._stat: tuple[int, int, int] | None = None
        self._raw: dict[str, Any] | None = None
        self._view: SwitchView | Malformed | None = None
        self._missing = f"there is no kill-switch file at {self.path}"
        self._alive_from, self._alive_until = float("inf"), float("-inf")  # epoch s: alive while from <= now < until
        self._refusal: tuple[str, str | None, str | None] | None = None  # message, scope, until
        self._headrooms: list[tuple[str, Decimal, str | None]] = []
        self._warned_at: float | None = None

    def close(self) -> None:
        """Close the HTTP connection of a remote switch (nothing to do for a file)."""
        if self._remote is not None:
            self._remote.http.close()

    def __enter__(self) -> KillSwitch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def status(self) -> dict[str, Any] | None:
        """Return the current switch document (None when there is none, or it cannot be read or trusted)."""
        self._refresh_safely()
        return self._raw

    def _refresh_safely(self) -> None:
        try:
            self._refresh()
        except Exception as exc:  # whatever goes wrong reading the file, it is a dead guard, never a crash
            self._stat, self._raw, self._view = None, None, None
            self._alive_from, self._alive_until = float("inf"), float("-inf")
            self._missing = f"cannot read the kill-switch file {self.path}: {exc}"

    def _refresh(self) -> None:
        if self._remote is not None:
            self._refresh_remote(self._remote)
            return
        try:
            st = os.stat(self.path)
        except OSError as exc:
            self._stat, self._raw, self._view = None, None, None
            self._missing = f"there is no readable kill-switch file at {self.path} ({exc.strerror})"
            return
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key == self._stat:
            return
        self._stat = key
        self._alive_from, self._alive_until = float("inf"), float("-inf")  # until a valid document says otherwise
        try:
            with open(self.path, encoding="utf-8") as handle:
                raw = json.load(handle)
        except (OSError, ValueError) as exc:
            self._raw, self._view = None, None
            self._missing = f"cannot read the kill-switch file {self.path}: {exc}"
            return
        self._take(raw)

    def _refresh_remote(self, remote: _RemoteSwitch) -> None:
        if time.monotonic() < remote.next_at:
            return
        raw, error = remote.fetch(self._raw)
        if raw is None:
            self._raw, self._view = None, None
            self._alive_from, self._alive_until = float("inf"), float("-inf")
            self._missing = error or f"no kill-switch document from {remote.url}"
        elif raw is not self._raw:
            self._take(raw)

    def _take(self, raw: object) -> None:
        """Validate a freshly read document and keep it, or keep why it cannot be trusted."""
        view = read_document(raw)
        self._view = view
        self._raw = raw if isinstance(view, SwitchView) and isinstance(raw, dict) else None
        if isinstance(view, SwitchView):
            self._digest(view)

    def _digest(self, view: SwitchView) -> None:
        """Precompute what ``check()`` needs from a valid document, so that the fast path only compares."""
        beat, expires = view.heartbeat_at, view.expires_at
        if beat is not None and self.max_age is not None:
            by_age = beat + timedelta(seconds=self.max_age)
            expires = by_age if expires is None else min(expires, by_age)
        self._alive_from = (beat - CLOCK_SKEW).timestamp() if beat is not None else float("inf")
        self._alive_until = expires.timestamp() if expires is not None else float("-inf")
        self._refusal = None
        self._headrooms = []
        for name, scope in view.scopes.items():
            if self.budgets is not None and name != GLOBAL and name not in self.budgets:
                continue
            if scope.tripped and self._refusal is None:
                until = f" (until {scope.until})" if scope.until else " (until released)"
                self._refusal = (f"budget {name!r} is over its limit: {scope.reason}{until}", name, scope.until)
            if scope.headroom is not None:
                self._headrooms.append((name, scope.headroom, scope.until))
        if view.tripped and self._refusal is None and not any(s.tripped for s in view.scopes.values()):
            self._refusal = ("guardd's kill-switch is tripped (top level, no scope named)", None, None)

    def check(self, estimate: float | Decimal | str | None = None) -> None:
        """Return if a request may proceed; raise :class:`BudgetExceeded` if not.

        ``estimate`` (USD) is compared with each relevant scope's ``headroom``.
        """
        if self._remote is not None:
            self._refresh_safely()
        else:
            try:
                st = os.stat(self.path)
                unchanged = (st.st_ino, st.st_mtime_ns, st.st_size) == self._stat
            except OSError:
                unchanged = False
            if not unchanged:
                self._refresh_safely()
        now = time.time()
        if not self._alive_from <= now < self._alive_until or not isinstance(self._view, SwitchView):
            if self._refusal is not None and isinstance(self._view, SwitchView):
                # A trip outlives the guard: a valid document that says stop (the daemon's last decision, or a
                # manual trip made while it is down) is never turned into permission by the guard's death.
                message, scope, until = self._refusal
                raise BudgetExceeded(message, scope, until)
            self._dead(now)
            return
        if self._refusal is not None:
            message, scope, until = self._refusal
            raise BudgetExceeded(message, scope, until)
        if estimate is None:
            return
        try:
            want = Decimal(str(estimate))
        except InvalidOperation:
            raise ValueError(f"estimate {estimate!r} is not a number of USD") from None
        for name, headroom, until in self._headrooms:
            if want > headroom:
                raise BudgetExceeded(
                    f"estimated ${want} does not fit budget {name!r} (headroom ${headroom})", name, until
                )

    def _dead(self, now: float) -> None:
        """Apply the dead-guard policy; warn at most once a minute."""
        tick = time.monotonic()
        warn = self._warned_at is None or tick - self._warned_at >= self.WARN_EVERY
        if not warn and not self.fail_closed:
            return  # the fast way through for a client that allows requests while the guard is down
        max_age = None if self.max_age is None else timedelta(seconds=self.max_age)
        guard = liveness(self._view, datetime.fromtimestamp(now, UTC), max_age, self._missing)
        reason = f"guardd is not running: {guard.reason}"
        if warn:
            self._warned_at = tick
            action = "refusing" if self.fail_closed else "allowing"
            _log.warning("%s; %s requests (fail_closed=%s)", reason, action, self.fail_closed)
        if self.fail_closed:
            raise BudgetExceeded(f"{reason}; failing closed")


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


class _RemoteSwitch:
    """The switch document over HTTP, fetched conditionally at most once per ``refresh`` seconds."""

    def __init__(self, url: str, refresh: float, timeout: float) -> None:
        import httpx

        self.url = url if url.rstrip("/").endswith("/v1/killswitch") else url.rstrip("/") + "/v1/killswitch"
        self.refresh = refresh
        self.next_at = 0.0
        self.etag: str | None = None
        self.http = httpx.Client(timeout=timeout, headers={"Accept": "application/json"})

    def fetch(self, doc: dict[str, Any] | None) -> tuple[Any, str | None]:
        """Return ``(document, error)``: the new document, or ``doc`` itself when unchanged or unreachable."""
        import httpx

        self.next_at = time.monotonic() + self.refresh
        headers = {"If-None-Match": self.etag} if self.etag and doc is not None else {}
        try:
            answer = self.http.get(self.url, headers=headers)
            if answer.status_code == 304 and doc is not None:
                heartbeat = answer.headers.get("guardd-heartbeat-at")
                if not heartbeat:
                    return doc, None
                # the decision is unchanged; only the liveness times moved
                fresh = {**doc, "heartbeat_at": heartbeat}
                expires = answer.headers.get("guardd-expires-at")
                if expires:
                    fresh["expires_at"] = expires
                return fresh, None
            if answer.status_code != 200:
                return doc, f"{self.url} answered HTTP {answer.status_code}"
            fresh = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            return doc, f"cannot reach guardd at {self.url}: {exc}"
        self.etag = answer.headers.get("etag")
        return fresh, None
