"""Reading a kill-switch document as a client must (contract §3, §7): validation and liveness.

:func:`read_document` turns whatever JSON a switch file held into a :class:`SwitchView`, or a
:class:`Malformed` naming the first problem: another ``schema`` than 1, scopes that are not an object, a
``tripped`` that is not a boolean, a ``headroom`` that is not a decimal string, a time that does not parse.
A malformed document says nothing trustworthy and is treated like a missing file.

:func:`liveness` says whether the guard that wrote a document is alive at ``now``: the document exists, parses,
and its ``expires_at`` (``heartbeat_at`` plus ``guardd.stale_after``) has not passed. A heartbeat more than
:data:`CLOCK_SKEW` in the future is treated as expired too (a clock that jumped, or a document from elsewhere).

Pure and standard-library only: the client (:mod:`guardd.client`) and the commands both use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation

SCHEMA = 1
CLOCK_SKEW = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class ScopeView:
    """One scope as a client needs it."""

    tripped: bool
    reason: str | None
    until: str | None
    headroom: Decimal | None


@dataclass(frozen=True, slots=True)
class SwitchView:
    """A valid switch document, reduced to what decides whether a request may proceed."""

    tripped: bool
    heartbeat_at: datetime | None
    expires_at: datetime | None
    scopes: dict[str, ScopeView]


@dataclass(frozen=True, slots=True)
class Malformed:
    """Why a document cannot be trusted."""

    problem: str


@dataclass(frozen=True, slots=True)
class Liveness:
    """Whether the guard is alive, its last heartbeat (None when unknown) and, when dead, why."""

    alive: bool
    heartbeat_at: datetime | None
    expires_at: datetime | None
    reason: str | None

    def to_json(self) -> dict[str, object]:
        return {
            "alive": self.alive,
            "heartbeat_at": _iso(self.heartbeat_at),
            "expires_at": _iso(self.expires_at),
            "reason": self.reason,
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _time(raw: dict[str, object], name: str) -> datetime | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} is not a time")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"{name} has no time zone")
    return moment


def _scope(name: str, raw: object) -> ScopeView:
    if not isinstance(raw, dict):
        raise ValueError(f"scope {name!r} is not an object")
    tripped = raw.get("tripped", False)
    if not isinstance(tripped, bool):
        raise ValueError(f"scope {name!r}: tripped is not true or false")
    headroom = raw.get("headroom")
    amount = None
    if headroom is not None:
        if not isinstance(headroom, str | int) or isinstance(headroom, bool):
            raise ValueError(f"scope {name!r}: headroom is not a decimal string")
        try:
            amount = Decimal(headroom)
        except InvalidOperation:
            raise ValueError(f"scope {name!r}: headroom {headroom!r} is not a decimal") from None
        if not amount.is_finite():
            raise ValueError(f"scope {name!r}: headroom {headroom!r} is not finite")
    reason, until = raw.get("reason"), raw.get("until")
    return ScopeView(
        tripped,
        reason if isinstance(reason, str) else None,
        until if isinstance(until, str) else None,
        amount,
    )


def read_document(raw: object) -> SwitchView | Malformed:
    """Validate a parsed switch document; return its view, or why it cannot be trusted."""
    if not isinstance(raw, dict):
        return Malformed("the document is not a JSON object")
    if raw.get("schema") != SCHEMA:
        return Malformed(f"the document has schema {raw.get('schema')!r}, not {SCHEMA}")
    tripped = raw.get("tripped", False)
    if not isinstance(tripped, bool):
        return Malformed("tripped is not true or false")
    scopes = raw.get("scopes", {})
    if not isinstance(scopes, dict):
        return Malformed("scopes is not an object")
    try:
        views = {str(name): _scope(str(name), scope) for name, scope in scopes.items()}
        heartbeat, expires = _time(raw, "heartbeat_at"), _time(raw, "expires_at")
    except ValueError as exc:
        return Malformed(str(exc))
    return SwitchView(tripped, heartbeat, expires, views)


def liveness(
    view: SwitchView | Malformed | None,
    now: datetime,
    max_age: timedelta | None = None,
    missing: str = "there is no kill-switch file",
    tz: tzinfo = UTC,
) -> Liveness:
    """Return whether the guard that wrote ``view`` is alive at ``now``.

    ``view`` None means there is no document (``missing`` says why). ``max_age``, when given, also expires a
    document whose heartbeat is older than that — and stands in for ``expires_at`` in a document from a guardd
    that wrote none. The reason gives its times in ``tz`` (``status`` and ``check``: the configured zone).
    """
    if view is None:
        return Liveness(False, None, None, missing)
    if isinstance(view, Malformed):
        return Liveness(False, None, None, f"the kill-switch file cannot be trusted: {view.problem}")
    heartbeat, expires = view.heartbeat_at, view.expires_at
    if heartbeat is not None and max_age is not None:
        by_age = heartbeat + max_age
        expires = by_age if expires is None else min(expires, by_age)
    if heartbeat is None:
        return Liveness(False, None, expires, "the kill-switch file carries no heartbeat")
    if expires is None:
        return Liveness(False, heartbeat, None, "the kill-switch file carries no expires_at")
    if heartbeat > now + CLOCK_SKEW:
        return Liveness(False, heartbeat, expires, f"the heartbeat {_iso(heartbeat.astimezone(tz))} is in the future")
    if now >= expires:
        return Liveness(False, heartbeat, expires, f"the kill-switch file expired at {_iso(expires.astimezone(tz))}")
    return Liveness(True, heartbeat, expires, None)


def leader_liveness(
    leader: str | None,
    last_leader: str | None,
    seen: datetime | None,
    now: datetime,
    max_age: timedelta,
    tz: tzinfo = UTC,
) -> Liveness:
    """Whether the guard of a shared store is alive at ``now`` (contract §7, §9), as a mirror's file would say it.

    Its heartbeat is when the leader (``leader``: the instance holding the lease now; else ``last_leader``, the one
    that held it last) last reached the store (``seen``), and ``expires_at`` that plus ``max_age``
    (``guardd.stale_after``). A leader in its term is alive. With none, the last one's decision holds until its
    ``expires_at`` (as a ``run --once`` file does on one host), then the guard is dead: nothing evaluates.
    """
    if last_leader is None:
        return Liveness(False, None, None, "no guardd instance has ever led the shared store: nothing was evaluated")
    if seen is None:
        return Liveness(False, None, None, f"the leader {last_leader} has no heartbeat in the shared store")
    expires = seen + max_age
    if leader is not None:
        return Liveness(True, seen, expires, None)
    if now >= expires:
        when = _iso(expires.astimezone(tz))
        why = f"no guardd instance leads the shared store; the last leader, {last_leader}, expired at {when}"
        return Liveness(False, seen, expires, why)
    return Liveness(True, seen, expires, None)


@dataclass(frozen=True, slots=True)
class LocalAgreement:
    """How this host's switch file stands against the switch a shared store holds: ``agrees``, ``disagrees``
    (it trips other scopes than the store's decision), ``missing``, ``stale`` (expired, or its daemon stopped)
    or ``unreadable``. Local clients read the file, so anything but ``agrees`` is what they act on wrongly."""

    state: str
    reason: str | None


def _tripped_scopes(view: SwitchView) -> set[str]:
    return {name for name, scope in view.scopes.items() if scope.tripped} | ({"(top level)"} if view.tripped else set())


def local_agreement(
    local: SwitchView | Malformed | None, local_guard: Liveness, shared: SwitchView | Malformed | None
) -> LocalAgreement:
    """Compare this host's switch file (``local``, None when missing; ``local_guard`` its liveness, from
    :func:`liveness`) with the document the shared store holds (``shared``, None when none was committed yet).

    Only the decision is compared (which scopes are tripped, and the top-level ``tripped``): headroom and spend
    move at every evaluation, and a mirror rewrites them within a second.
    """
    if local is None:
        return LocalAgreement("missing", local_guard.reason)
    if isinstance(local, Malformed):
        return LocalAgreement("unreadable", local_guard.reason)
    if not local_guard.alive:
        return LocalAgreement("stale", local_guard.reason)
    if shared is None or isinstance(shared, Malformed):
        mine = _tripped_scopes(local)
        return LocalAgreement("disagrees", "the shared store holds no switch decision yet") if mine else _AGREES
    mine, theirs = _tripped_scopes(local), _tripped_scopes(shared)
    if mine == theirs:
        return _AGREES
    return LocalAgreement(
        "disagrees", f"this host's file trips {_names(mine)}; the shared store's switch trips {_names(theirs)}"
    )


_AGREES = LocalAgreement("agrees", None)


def _names(scopes: set[str]) -> str:
    return ", ".join(sorted(scopes)) or "nothing"
