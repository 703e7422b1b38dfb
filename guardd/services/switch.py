"""The switch job: decide the kill-switch document from the evaluations and the overrides, and apply it.

:class:`SwitchWriter` is a base class of :class:`~guardd.services.jobs.Engine` (sharing its configuration, store and
dry-run flag). :meth:`SwitchWriter._switch` decides from the stored document (another process may have changed it),
writes the file inside the decision's transaction (unless :attr:`writes_file` is off: a shared store's mirrors write
it), saves the decision, publishes it and lets OpenRouter keys follow the committed document
(:meth:`~guardd.services.openrouter.keys.KeySwitch.reconcile`: whoever decided it, so a decision a command saved is
carried out too). A dry run decides and logs, and writes nothing.
A failed file write is kept in :attr:`switch_error` until one succeeds (contract §8).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from guardd.adapters import killswitch
from guardd.config import Config
from guardd.core.evaluate import BudgetEvaluation
from guardd.core.switch import Override, ScopeChange, SwitchDoc, decide
from guardd.errors import StoreError, SwitchFileError
from guardd.store.api import Message, StateAPI, SwitchDecision

log = logging.getLogger("guardd.services.jobs")

LIVENESS_FIELDS = ("heartbeat_at", "expires_at")


class SwitchWriter:
    """The switch job (see the module's docstring). Its attributes are set by :class:`~guardd.services.jobs.Engine`."""

    config: Config
    state: StateAPI
    dry_run: bool
    doc: SwitchDoc | None
    written: SwitchDoc | None
    switch_error: str | None
    writes_file: bool
    keeps_heartbeat: bool
    key_switch: Any
    on_switch: Callable[[SwitchDoc], None] | None
    fence: Callable[[], None]
    _system_messages: Callable[..., list[Message]]

    async def _switch(
        self, evaluations: list[BudgetEvaluation], now: datetime, causes: Mapping[str, str] | None = None
    ) -> SwitchDoc:
        overrides = await self.state.overrides()
        release_causes = dict(causes or {})
        for ov in overrides:
            if not ov.active(now):
                if ov.state == "tripped":
                    release_causes.setdefault(ov.scope, f"the manual trip by {ov.by} expired")
                if not self.dry_run:
                    await self.state.remove_override(ov.scope, now, f"override {ov.state} by {ov.by} expired")
        settings = self.config.settings

        def decided(previous: SwitchDoc | None, overrides: list[Override]) -> tuple[SwitchDoc, list[ScopeChange]]:
            return decide(
                evaluations,
                overrides,
                settings.killswitch.release,
                previous,
                now,
                settings.guardd.stale_after,
                release_causes,
            )

        if self.dry_run:
            doc, changes = decided(self.doc, overrides)
            self.doc = self.written = doc
            self._log_changes(changes)
            if changes:
                log.info("dry run; not writing the kill-switch file")
            self._published(doc)
            return doc
        made: list[ScopeChange] = []

        def step(previous: SwitchDoc | None, current: list[Override]) -> SwitchDecision:
            # The overrides as stored in the decision's turn: a manual change another process committed since they
            # were read above (a killswitch command beside the daemon) is decided here, not undone.
            doc, changes = decided(previous, current)
            made[:] = changes
            # written while the decision's transaction holds the store: two deciders write in the order they save
            if self.writes_file:
                self._write_file(doc)
            save = bool(changes) or previous is None or previous.updated_at != doc.updated_at
            history = [(c.scope, c.detail) for c in changes]
            return SwitchDecision(doc, history, save)

        try:
            # Decided from the stored document, not this process's last one: another process (a killswitch
            # command, the daemon) may have changed it since, and its change must not be recorded twice.
            doc = await self.state.update_switch(step, now)
        except StoreError:
            if not made and self.writes_file:  # the state could not be read or written: keep the guard's word
                doc, _ = decided(self.doc, overrides)  # current all the same
                self._write_file(doc)
                self.doc = doc
            raise
        self.doc = doc
        self._log_changes(made)
        self._published(doc)
        if self.key_switch is not None:  # the keys follow the committed decision, whoever took it
            await self.key_switch.reconcile(doc, now, self._system_messages, self.fence)
        return doc

    @staticmethod
    def _log_changes(changes: list[ScopeChange]) -> None:
        for change in changes:
            log.warning("kill-switch %s", change.detail, extra={"ctx": {"budget": change.scope}})

    def _write_file(self, doc: SwitchDoc) -> None:
        section = self.config.settings.killswitch
        try:
            killswitch.write_atomic(
                self.config.killswitch_path, self._file_document(doc), section.mode_bits, section.group
            )
        except SwitchFileError as exc:
            self.switch_error = str(exc)  # a failed write: status, check and /healthz say so until one succeeds
            raise
        self.switch_error = None
        self.written = doc  # what the file says now (the metrics report this, not an unwritten decision)

    def _file_document(self, doc: SwitchDoc) -> dict[str, Any]:
        document = doc.to_json()
        if self.keeps_heartbeat:
            try:
                previous = killswitch.read(self.config.killswitch_path) or {}
            except SwitchFileError:
                previous = {}
            for name in LIVENESS_FIELDS:
                document[name] = previous.get(name)
        return document

    def _published(self, doc: SwitchDoc) -> None:
        if self.on_switch is not None:
            try:
                self.on_switch(doc)
            except Exception:
                log.exception("publishing the switch document failed")
