"""The kill-switch on a shared store (contract §9), as ``status``, ``check`` and ``killswitch show`` report it.

On one host the switch file is the guard's word. On a shared store the leader commits each decision to the store
(``switch_state``) and every running instance mirrors it into its own file; a host with no daemon has no file, or an
old one. So the commands answer from the store: the document the leader committed, its ``heartbeat_at`` the time
the leader last reached the store as leader and ``expires_at`` that plus ``stale_after`` (what a mirror writes), the
guard alive while an instance holds the lease (:func:`~guardd.core.switch_read.leader_liveness`). And they compare
this host's own file with it (:func:`~guardd.core.switch_read.local_agreement`): local clients read that file, so a
file that is missing, stale or says otherwise is said, never hidden behind the store's answer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from guardd.adapters.instance_lock import read_record
from guardd.config.view import ConfigView
from guardd.core.switch_read import (
    Liveness,
    LocalAgreement,
    Malformed,
    leader_liveness,
    local_agreement,
    read_document,
)
from guardd.services.status import read_switch
from guardd.store.api import StateAPI

_SAYS = {
    "missing": "is missing",
    "stale": "is stale",
    "unreadable": "cannot be read",
    "disagrees": "disagrees with the shared store",
}


@dataclass(frozen=True, slots=True)
class SharedSwitch:
    """The switch a shared store holds (``document``: its JSON form, None when no leader committed one yet), the
    guard's liveness, and how this host's switch file (``path``) stands against it. ``daemon_here``: a guardd
    daemon runs on this host's state (its mirror should keep the file in step)."""

    document: dict[str, Any] | None
    guard: Liveness
    local: LocalAgreement
    path: Path
    daemon_here: bool

    def local_json(self) -> dict[str, Any]:
        """``cluster.local_switch`` in ``status --json``: ``{"path", "state", "reason", "daemon"}``."""
        return {
            "path": str(self.path),
            "state": self.local.state,
            "reason": self.local.reason,
            "daemon": self.daemon_here,
        }

    @property
    def warning(self) -> str | None:
        """One line when this host's file is not in step with the store (None when it is)."""
        if self.local.state == "agrees":
            return None
        here = "a guardd daemon runs here" if self.daemon_here else "no guardd daemon runs on this host"
        why = f" ({self.local.reason})" if self.local.reason else ""
        return (
            f"this host's kill-switch file {self.path} {_SAYS[self.local.state]}{why}; {here}, and local clients "
            "read that file, not the shared store"
        )

    @property
    def warns_check(self) -> bool:
        """Whether ``check`` is WARNING for this host's file: any disagreement, except a missing file on a host
        that runs no daemon (nothing there was meant to write one, and no client can have read it)."""
        return self.local.state != "agrees" and (self.local.state != "missing" or self.daemon_here)

    @property
    def tripped(self) -> bool:
        return bool(self.document and self.document.get("tripped"))


def _leader_seen(cluster: dict[str, Any]) -> datetime | None:
    """The last time the last leader reached the store as leader (never after its term ended: a leader that lost
    its term and still reaches the store, its work stuck, evaluates nothing), as its mirrors' files say it."""
    seen = cluster.get("last_leader_seen")
    return None if seen is None else datetime.fromisoformat(str(seen))


async def read_shared(config: ConfigView, state: StateAPI, cluster: dict[str, Any], now: datetime) -> SharedSwitch:
    """Return the shared store's switch at ``now``, from its ``state`` and its ``cluster`` section
    (:meth:`guardd.store.api.ClusterAPI.status`), with this host's file compared to it."""
    last = cluster.get("last_leader")
    guard = leader_liveness(cluster.get("leader"), last, _leader_seen(cluster), now, config.stale_after, config.zone)
    stored = await state.switch_doc()
    document = None
    if stored is not None:
        beat = guard.heartbeat_at
        document = (stored if beat is None else replace(stored, heartbeat_at=beat, ttl=config.stale_after)).to_json()
    raw, local_guard, error = read_switch(config, now)
    mine = Malformed(error) if error is not None else None if raw is None else read_document(raw)
    theirs = None if document is None else read_document(document)
    local = local_agreement(mine, local_guard, theirs)
    return SharedSwitch(document, guard, local, config.killswitch_path, read_record(config.state_dir).running)
