"""Rows of many instances on a shared store (contract §9, :class:`~guardd.store.api.ClusterAPI`): a leader's term
and what an instance says about itself."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from guardd.core.switch import SwitchDoc


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """A ledger file as the store knows it (device, inode, fingerprint of its first line), at ``path`` now on this
    host (:func:`guardd.ledger.identities.file_identities`)."""

    path: str
    dev: int
    ino: int
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Term:
    """A term this instance holds as leader: its epoch (the fencing token) and how long the lease still ran when
    the store answered, by the store's clock (a host turns it into a deadline of its own monotonic clock)."""

    epoch: int
    remaining: float


@dataclass(frozen=True, slots=True)
class InstanceInfo:
    """What an instance says about itself in the shared store."""

    name: str
    host: str
    pid: int
    token: str
    """Who holds the name now: ``SPACE/RANDOM``, random per process after the process's pid space (where its pid
    means something: :func:`guardd.adapters.instance_lock.pid_space`)."""
    ledgers: Sequence[str]
    version: str
    config_digest: str


@dataclass(frozen=True, slots=True)
class CommittedSwitch:
    """The switch as a mirror reads it: the document the leader last committed (None when none was) and how many
    seconds ago, by the store's clock, a leader last reached the store as leader (None when no instance that led
    has a heartbeat there). That age is the guard's: with no leader it grows, and the mirrored file expires."""

    doc: SwitchDoc | None
    leader_age: float | None


class Forgotten(Enum):
    """What ``guardd store forget NAME`` did (:meth:`~guardd.store.api.ClusterAPI.forget`)."""

    FORGOTTEN = "forgotten"
    """It was not running: now it counts as stopped, and is no longer warned of."""
    RUNNING = "running"
    """Refused: it reached the store within the last seconds (a live guardd is never hidden)."""
    STOPPED = "stopped"
    """Nothing to do: it stopped cleanly (or was forgotten) already."""
    UNKNOWN = "unknown"
    """No instance has that name in this store."""
