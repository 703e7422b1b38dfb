"""Many guardd instances on one shared PostgreSQL store (contract §9): one leader, every instance's switch file.

Every instance ingests its own ledgers (through the plain store, always). On top of that, one :class:`Cluster`
per daemon runs a **control loop** on a dedicated connection (:class:`guardd.store.api.ClusterAPI`, implemented
in :mod:`guardd.store.postgres.cluster`) every :data:`TICK` seconds, and whenever the switch changed:

1. **Heartbeat and lease** (one transaction): refresh this instance's row (``last_seen`` by the database's clock,
   its ledgers, version and ``config_digest``) and take or renew the leader lease for :data:`LEASE_TTL`. The
   lease's remaining time as the database measured it becomes a deadline on this host's monotonic clock, counted
   from *before* the request was sent — so it ends no later than the database's lease, whatever the hosts' wall
   clocks say. :attr:`Cluster.leading` is true only before that deadline (less :data:`MARGIN`), without waiting
   for the loop: a leader that loses the database stops leading on time even while its calls hang.
2. **Mirror**: read the switch document the leader committed and write this host's own kill-switch file, with
   the guard's ``heartbeat_at`` — the last time a leader reached the store as leader (the holder's ``last_seen``,
   never after its term ended), read in the same statement as an age by the database's clock and placed on this
   host's clock (:func:`heartbeat_here`) — and ``expires_at = heartbeat_at + stale_after``. While a leader runs
   that is at most a round old; when none leads (every instance stuck, or none may take the lease), it stops
   moving and the file expires ``stale_after`` after the last term ended, however well this host reaches the
   store: local clients then apply their dead-guard policy, as ``status`` and ``check`` say the guard is down
   (:func:`guardd.core.switch_read.leader_liveness`). The file is rewritten at once when the document changed,
   else every :data:`HEARTBEAT_EVERY`. A ``LISTEN`` connection wakes the loop within milliseconds of a commit;
   the 1 s tick is the backstop when a notification is lost (the listening connection reconnects by itself).
   When the store cannot be reached, nothing is written: the heartbeat ages, ``expires_at`` passes, and local
   clients apply their dead-guard policy.

Exactly one leader at a time evaluates, polls OpenRouter and delivers: the daemon runs those steps only while
:attr:`Cluster.leading`, and writes through :meth:`Cluster.state` (fenced state) whose every write
transaction re-checks the term in that same transaction. A leader that stops or loses the database is replaced
within ``LEASE_TTL + TICK`` (11 s) plus the successor's first evaluation.

Failure modes handled:

- **Pooled connections**: nothing depends on a session. The lease is a row (no session advisory lock a pooled
  connection could keep or a reset could drop); the control plane has its own connection, so a pool busy with
  ingestion never delays a renewal; a terminated backend (``pg_terminate_backend``) costs one failed call, after
  which the link, the listener and the pool reconnect.
- **A cancelled task**: every write is one transaction, rolled back whole when cancelled; a leader stopped
  cleanly ends its term at once (:meth:`Cluster.leave`), one killed lets its lease lapse.
- **A network partition or a stalled process**: the deposed leader's deadline passes before its lease ends, so
  it stops leading on its own; anything it still tries fails the term check in its transaction (a transaction
  left open by a vanished client is ended by ``idle_in_transaction_session_timeout`` so it cannot block the
  takeover). A send starts only while the term runs (:meth:`Cluster.fence`), and a claimed message stays claimed
  until the term's end plus the send bound, so a successor resends only what the old leader may have handed to
  the channel without recording it (the documented at-least-once window).
- **Clock differences between hosts**: the lease, claims and ``last_seen`` use the database's clock only; a host
  compares durations on its own monotonic clock. The switch file carries times of this host's clock (the
  leader's heartbeat is read as an age, by the database's clock), which is what its local clients compare
  against. Windows never re-open when a new leader's clock is behind (the persisted high-water mark of evaluated
  time; :meth:`Engine` state is reset at every new term).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from guardd import __version__
from guardd.adapters import killswitch
from guardd.adapters.instance_lock import pid_space
from guardd.config import Config
from guardd.core.switch import SwitchDoc
from guardd.errors import NotLeader, StoreError, SwitchFileError
from guardd.services.follower import APPLY_WITHIN, Applied, wait_applied
from guardd.services.jobs import Engine
from guardd.store.api import ClusterAPI, InstanceInfo, StateAPI, Term

log = logging.getLogger("guardd.cluster")

LEASE_TTL = timedelta(seconds=10)
TICK = 1.0  # seconds between control rounds: renewal, heartbeat, takeover attempts, the mirror's backstop poll
MARGIN = 0.5  # seconds before the local deadline at which this instance stops leading
HEARTBEAT_EVERY = 5.0  # seconds between rewrites of an unchanged switch file
ALIVE_WITHIN = timedelta(seconds=15)  # an instance not seen for longer is not running (its name may be taken)


def config_digest(config: Config) -> str:
    """The hash of the sections every instance must share (:func:`guardd.config.digest.shared_digest`)."""
    return config.config_digest


def heartbeat_here(asked: datetime, age: float) -> datetime:
    """The guard's heartbeat on this host's clock: ``age`` seconds (measured by the database's clock) before
    ``asked`` (this host's time when it sent the request, so never later than the truth), in whole seconds
    rounded down. A host whose clock differs from the database's writes its own clients' time."""
    return (asked - timedelta(seconds=max(0.0, age))).replace(microsecond=0)


class Cluster:
    """This instance's membership of a shared store: its term as leader (if any) and its switch mirror.

    ``on_elected(epoch)`` runs when a term begins, ``on_deposed()`` when it ends (both in the control loop; keep
    them quick — request steps, reset state). ``on_file(doc, error)`` runs after each attempt to write the local
    file: the document written (None when the write failed) and why it failed (None when it was written).
    ``lead=False`` (a dry run) never takes the lease; ``write_file=False`` (a dry run) writes no switch file.
    """

    def __init__(
        self,
        backend: ClusterAPI,
        config: Config,
        *,
        lead: bool = True,
        write_file: bool = True,
        ttl: timedelta = LEASE_TTL,
        tick: float = TICK,
    ) -> None:
        self.backend = backend
        self.config = config
        self.lead = lead
        self.write_file = write_file
        self.ttl = ttl
        self.tick = tick
        self.me = InstanceInfo(
            config.instance,
            os.uname().nodename,
            os.getpid(),
            f"{pid_space()}/{secrets.token_hex(8)}",  # where its pid means something, then who holds the name
            list(config.ledger_paths),
            __version__,
            config_digest(config),
        )
        self.epoch: int | None = None
        self._deadline = 0.0
        self.reachable: bool | None = None
        self.switch_error: str | None = None
        self.written: SwitchDoc | None = None
        self.name_lost = asyncio.Event()
        self.healthy: Callable[[], bool] = lambda: True
        """Whether this instance can do a leader's work now: when not, it stops renewing its term (a leader whose
        worker is stuck makes way for another within the lease's time)."""
        self.on_elected: Callable[[int], None] = lambda epoch: None
        self.on_deposed: Callable[[], None] = lambda: None
        self.on_events: Callable[[], None] = lambda: None
        """Called, while this instance leads, when any instance committed a batch of events or recorded an override
        (:meth:`until_applied`): evaluate again."""
        self.on_file: Callable[[SwitchDoc | None, str | None], None] = lambda doc, error: None
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._shared: SwitchDoc | None = None
        self.committed: SwitchDoc | None = None
        """The switch document the leader committed, as this instance last read it (every round)."""
        self._read = asyncio.Event()
        self._last_write = 0.0
        self._last_error: str | None = None
        self._no_heartbeat = False

    # ---- leadership -------------------------------------------------------------------------------------
    @property
    def leading(self) -> bool:
        """True while this instance holds a term whose deadline (less :data:`MARGIN`) has not passed."""
        return self.epoch is not None and time.monotonic() < self._deadline - MARGIN

    def term(self) -> int | None:
        """The epoch of the running term, or None (what fenced writes are checked against)."""
        return self.epoch if self.leading else None

    def fence(self) -> None:
        """Raise NotLeader unless a leader step (a send) may start now: only within the term."""
        if not self.leading:
            raise NotLeader(f"{self.me.name} does not lead now")

    def state(self) -> StateAPI:
        """The state store for leader steps: every write re-checks this instance's term in its transaction."""
        return self.backend.fenced_state(self.term)

    def attach(self, engine: Engine) -> None:
        """Make ``engine`` a cluster member's: it decides and saves (through :meth:`state`) but writes no switch
        file — this mirror does, on every instance — and starts a send only within the term (:meth:`fence`).
        What the mirror writes becomes the engine's ``written`` document (metrics, ``/healthz``) and is published
        where the engine published its decisions (the HTTP service)."""
        engine.writes_file = False
        engine.fence = self.fence
        publish, engine.on_switch = engine.on_switch, None

        def on_file(doc: SwitchDoc | None, error: str | None) -> None:
            engine.switch_error = error
            if doc is not None:
                engine.written = doc
                if publish is not None:
                    publish(doc)

        self.on_file = on_file

    def reconfigure(self, config: Config) -> None:
        """A reloaded configuration: its ledgers, digest and switch file apply from the next round."""
        self.config = config
        me = self.me
        self.me = InstanceInfo(
            me.name, me.host, me.pid, me.token, list(config.ledger_paths), me.version, config_digest(config)
        )
        self._last_write = 0.0

    # ---- life ---------------------------------------------------------------------------------------------
    async def join(self) -> None:
        """Enter this instance in the store (InstanceTaken when a live guardd has its name) and run a first
        round, so the switch file is current before the daemon says it is ready."""
        try:
            await self._not_renamed()
            await self.backend.register(self.me, ALIVE_WITHIN)
        except BaseException:
            await self.backend.close()
            raise
        await self._round(beat=True)
        self._tasks = [
            asyncio.create_task(self._control(), name="cluster control"),
            asyncio.create_task(self._listen(), name="cluster listen"),
        ]

    async def _not_renamed(self) -> None:
        """Raise InstanceRenamed when this host's ledger files were read under another instance name that is not
        running (review F13). Lines without an id are keyed by instance, file identity and offset (contract §9),
        so reading the files again under this name would count each such line once more. Refusing loses nothing
        and doubles nothing: the old name, set back, reads on from its checkpoints. Taking its checkpoints over
        instead would double whatever it reads if it ever came back (its keys, not this name's)."""
        from guardd.errors import InstanceRenamed
        from guardd.ledger.identities import file_identities

        files = await asyncio.to_thread(file_identities, self.config.ledger_paths)
        found = await self.backend.previous_readers(self.me.name, files, ALIVE_WITHIN)
        if not found:
            return
        old = sorted({instance for instance, _ in found})
        paths = ", ".join(sorted({path for _, path in found})[:3]) + (" …" if len(found) > 3 else "")
        raise InstanceRenamed(
            f"this host's ledger files ({paths}) were read into the shared store by instance {old[0]!r}, which is "
            f"not running, and never by {self.me.name!r}: under a new name guardd would count every line without "
            f'an id again. Set [guardd] instance = "{old[0]}" (or GUARDD_GUARDD__INSTANCE={old[0]}) to read on '
            "where it stopped; in a container, set the instance name explicitly: the host name changes at each "
            "restart" + (f" (other old names: {', '.join(old[1:])})" if len(old) > 1 else "")
        )

    async def leave(self) -> None:
        """Stop: end the term at once (a successor need not wait out the lease) and mark the instance stopped."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        epoch, self.epoch = self.epoch, None
        try:
            await self.backend.retire(self.me, epoch)
        except StoreError as exc:
            log.warning("could not record this instance's stop: %s", exc)
        await self.backend.close()

    async def _control(self) -> None:
        next_beat = time.monotonic() + self.tick
        while True:
            timeout = max(0.0, next_beat - time.monotonic())
            try:  # (not asyncio.wait_for: on Python 3.11 it can lose a cancellation racing the wake-up)
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            beat = time.monotonic() >= next_beat
            if beat:
                next_beat = time.monotonic() + self.tick
            try:
                await self._round(beat)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep the loop: it is what keeps the guard honest
                log.exception("cluster round failed: %s", exc)
            if self.name_lost.is_set():
                return

    async def _round(self, beat: bool) -> None:
        """One round: (with ``beat``) heartbeat and lease, then the mirror."""
        try:
            if beat:
                started = time.monotonic()
                lead = self.lead and self.healthy()
                if self.lead and not lead and self.epoch is not None:
                    log.error("this instance's work is stuck; it stops renewing its term so another can lead")
                owns, term = await self.backend.beat(self.me, self.ttl, lead)
                if not owns:
                    log.critical(
                        "another guardd took the instance name %r on this store; stopping this one", self.me.name
                    )
                    self._depose()
                    self.name_lost.set()
                    return
                self._term(term, started)
            elif self.epoch is not None and not self.leading:
                self._depose()
            asked = datetime.now(UTC)  # before the request: so the heartbeat placed on this clock is never late
            read = await self.backend.read_switch()
        except StoreError as exc:
            self._unreachable(exc)
            if self.epoch is not None and not self.leading:
                self._depose()
            return
        if self.reachable is False:
            log.warning("the shared store answers again")
        self.reachable, self._last_error = True, None
        self.committed = read.doc
        self._read.set()
        self._mirror(read.doc, None if read.leader_age is None else heartbeat_here(asked, read.leader_age))

    async def until_applied(self, applied: Applied, timeout: float = APPLY_WITHIN) -> SwitchDoc | None:
        """Wake the leader (this instance recorded an override but does not decide the switch) and wait until the
        document it commits satisfies ``applied``: return that document, or None when ``timeout`` seconds pass
        first (no leader now, or one that cannot evaluate). StoreError when the leader cannot be woken. The
        control loop reads the document (at once when the leader commits, else within a tick)."""
        await self.backend.wake_leader()

        async def committed() -> SwitchDoc | None:
            return self.committed

        return await wait_applied(applied, committed, self._read, timeout)

    def _term(self, term: Term | None, started: float) -> None:
        if term is None:
            if self.epoch is not None:
                self._depose()
            return
        self._deadline = started + term.remaining
        if term.epoch != self.epoch:
            if self.epoch is not None:
                self._depose()
            self.epoch = term.epoch
            log.warning("this instance (%s) leads now (term %d)", self.me.name, term.epoch)
            self.on_elected(term.epoch)

    def _depose(self) -> None:
        if self.epoch is None:
            return
        log.warning("this instance (%s) no longer leads (term %d ended)", self.me.name, self.epoch)
        self.epoch = None
        self.on_deposed()

    def _unreachable(self, exc: StoreError) -> None:
        self.reachable = False
        text = str(exc)
        if text != self._last_error:
            log.error("%s; the switch file's heartbeat is not refreshed until it answers", text)
            self._last_error = text

    # ---- the switch mirror ----------------------------------------------------------------------------------
    def _mirror(self, doc: SwitchDoc | None, heartbeat: datetime | None) -> None:
        """Write ``doc`` with the guard's ``heartbeat`` (on this host's clock): the last time a leader reached
        the store as leader. Not the time this host reached it: with no leader nothing evaluates, and the file
        must expire then, however well this host reaches the store (contract §7)."""
        if doc is None or not self.write_file:
            return
        if heartbeat is None:  # no instance that led has a heartbeat in the store: nothing vouches for the decision
            if not self._no_heartbeat:
                log.error("the shared store holds a switch decision but no leader's heartbeat; not mirrored")
            self._no_heartbeat = True
            return
        self._no_heartbeat = False
        shared = self._shared
        changed = shared is None or (doc.updated_at, doc.scopes) != (shared.updated_at, shared.scopes)
        if not changed and time.monotonic() - self._last_write < HEARTBEAT_EVERY:
            return
        mine = replace(doc, heartbeat_at=heartbeat, ttl=self.config.settings.guardd.stale_after)
        section = self.config.settings.killswitch
        try:
            killswitch.write_atomic(self.config.killswitch_path, mine.to_json(), section.mode_bits, section.group)
        except SwitchFileError as exc:
            if self.switch_error != str(exc):
                log.error("%s", exc)
            self.switch_error = str(exc)
            self._announce(None, str(exc))
            return
        self.switch_error = None
        self._shared, self._last_write, self.written = doc, time.monotonic(), mine
        self._announce(mine, None)

    def _announce(self, doc: SwitchDoc | None, error: str | None) -> None:
        try:
            self.on_file(doc, error)
        except Exception:
            log.exception("publishing the switch document failed")

    async def _listen(self) -> None:
        """Wake the control loop at every committed switch change, and the leader's evaluation at every batch of
        events stored by any instance; reconnect (and poll once) when the listening connection is lost."""
        while True:
            try:
                async with self.backend.wakeups() as changes:
                    self._wake.set()  # whatever changed while not listening
                    async for change in changes:
                        if change == "switch":
                            self._wake.set()
                        elif self.leading:
                            self.on_events()
            except StoreError as exc:
                log.debug("switch notifications interrupted (%s); the 1 s poll covers the gap", exc)
            await asyncio.sleep(self.tick)
