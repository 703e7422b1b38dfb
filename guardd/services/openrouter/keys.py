"""Switching OpenRouter keys off and on with the kill-switch (``killswitch.disable_openrouter_keys``).

The keys follow the committed switch document, whoever decided it (the daemon, ``guardd killswitch`` from the
command line, ``POST /v1/killswitch/…``, another instance): at each decision :meth:`KeySwitch.reconcile` compares
the stored ``/keys`` list with the tripped scopes and switches what differs —

- a key a tripped budget matches, still enabled, is disabled (``PATCH /keys/{hash}``) when the option is on;
- a key *guardd itself* disabled that no tripped budget matches any more is re-enabled (option on or off: guardd
  owes the re-enable of what it switched off).

A key that was already disabled (by a person, or by another tool) is never touched: ``or_keys.disabled_by_guardd``
records which keys are guardd's doing. The global scope ``*`` (a trip by hand without ``--budget``) names no keys.
Because the comparison is made afresh each time, nothing is lost between two processes: a decision saved by a
command is carried out by the next process that reconciles, and a PATCH that failed is tried again at the next
decision — each failure logged when it first happens or changes, and kept in the marker :data:`ERRORS_MARKER`
so that ``status`` and ``check`` say which key is not as the switch wants it, and why (:func:`key_warnings`).

Which keys a budget matches: its ``match.key`` glob against each key's name, label, hash and preview
(:func:`guardd.core.keys.key_matches`, the rule every budget uses); without ``match.key``, every key.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from guardd.adapters.openrouter import OpenRouterClient
from guardd.config import Config
from guardd.config.view import ConfigView
from guardd.core.budgets import Budget
from guardd.core.keys import KnownKey, ref_of
from guardd.core.keys import key_matches as core_key_matches
from guardd.core.switch import SwitchDoc
from guardd.errors import SourceError
from guardd.store.api import ListedKey, Message, RemoteAPI, StateAPI

log = logging.getLogger("guardd.openrouter")

ERRORS_MARKER = "openrouter_key_errors"
"""The marker holding, as JSON ``{hash: error}``, why the last switch of each key failed (absent: none failed)."""


def key_matches(budget: Budget, name: str | None, label: str | None, key_hash: str) -> bool:
    """Whether ``budget`` names this ``/keys`` entry: the one key matcher, :func:`guardd.core.keys.key_matches`."""
    return core_key_matches(budget.match.get("key"), KnownKey(ref_of(label, key_hash), name, label, key_hash))


def _matches(budget: Budget, key: ListedKey) -> bool:
    return key_matches(budget, key.name, key.label, key.hash)


def _display(key: ListedKey) -> str:
    return key.name or key.hash[:8]


def holders(budgets: Mapping[str, Budget], doc: SwitchDoc | None, key: ListedKey) -> list[str]:
    """The tripped scopes of ``doc`` whose budget (in ``budgets``, by name) matches ``key``."""
    if doc is None:
        return []
    return [
        name
        for name, scope in doc.scopes.items()
        if scope.tripped and (budget := budgets.get(name)) is not None and _matches(budget, key)
    ]


def wanted(key: ListedKey, held_by: list[str], follow: bool) -> bool | None:
    """The ``disabled`` flag the switch wants for ``key`` (None: leave it as it is)."""
    if held_by and follow and not key.disabled:
        return True
    if not held_by and key.disabled and key.disabled_by_guardd:
        return False
    return None


def key_warnings(
    config: ConfigView, keys: list[ListedKey], doc: SwitchDoc | None, errors: Mapping[str, str]
) -> list[str]:
    """One line per key that is not as the committed switch ``doc`` wants it: a key guardd disabled that stays off
    although no tripped budget matches it, or a key a tripped budget matches that is still on. ``errors``: the
    last failure per key hash (:data:`ERRORS_MARKER`). Said only with a management key (else guardd switches
    nothing)."""
    if not config.has_management_key:
        return []
    budgets = {b.name: b for b in config.budgets}
    follow = config.keys_follow
    lines = []
    for key in keys:
        held_by = holders(budgets, doc, key)
        want = wanted(key, held_by, follow)
        if want is None:
            continue
        if want:
            line = (
                f"OpenRouter key {_display(key)} is still enabled although budget {', '.join(held_by)}, which"
                " matches it, is tripped; guardd disables it at its next evaluation"
            )
        else:
            line = (
                f"OpenRouter key {_display(key)} stays disabled by guardd although no budget that matches it is"
                " tripped; guardd re-enables it at its next evaluation"
            )
        error = errors.get(key.hash)
        lines.append(line + (f" (the last attempt failed: {error})" if error else ""))
    return lines


async def stored_errors(state: StateAPI) -> dict[str, str]:
    """The last failure per key hash (:data:`ERRORS_MARKER`); an unreadable marker counts as none."""
    raw = await state.marker(ERRORS_MARKER)
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


MessagesFor = Callable[[str, str, str], list[Message]]
"""Builds the outbox rows of a notice: ``(title, body, severity) -> messages`` (the engine's routing)."""


class KeySwitch:
    """Makes the OpenRouter keys follow the committed switch document (see the module's docstring). Not
    re-entrant: the engine calls it once per decision, after the decision is committed.

    Each PATCH is recorded, with its notice, in one transaction right after OpenRouter confirmed it. A record that
    fails leaves the stored list as it was, and the next decision does it again: a PATCH is idempotent, and the
    record is written (and announced) only when it changes the stored key, so two processes switching the same
    key at once announce it once.
    """

    def __init__(self, config: Config, state: StateAPI, remote: RemoteAPI, client: OpenRouterClient) -> None:
        self.config, self.state, self.remote, self.client = config, state, remote, client
        self._errors: dict[str, str] | None = None  # as last stored in ERRORS_MARKER (None: not read yet)
        self._drained = False

    def forget(self) -> None:
        """A new term as leader of a shared store: another leader may have stored other errors since."""
        self._errors = None

    async def reconcile(
        self,
        doc: SwitchDoc | None,
        now: datetime,
        messages_for: MessagesFor,
        fence: Callable[[], None] = lambda: None,
    ) -> list[str]:
        """Switch every key that is not as ``doc`` (the committed decision) wants it; return one line per key
        switched now. Failures are logged, kept for ``status``/``check`` and tried again at the next call.
        ``fence`` is called before each PATCH: it raises when this process's term as leader of a shared store is
        over, so a deposed leader switches nothing its successor decides otherwise."""
        section = self.config.settings.openrouter
        if section is None or section.management_key is None:
            return []
        if not self._drained:  # queued by an older guardd (keys per saved scope change): covered by what follows
            for change in await self.state.pending_key_changes():
                await self.state.key_change_done(change, now)
            self._drained = True
        management = section.management_key.get_secret_value()
        budgets = {b.name: b for b in self.config.budgets}
        follow = self.config.settings.killswitch.disable_openrouter_keys
        if self._errors is None:
            self._errors = await stored_errors(self.state)
        errors: dict[str, str] = {}
        done: list[str] = []
        for key in await self.remote.listed_keys():
            held_by = holders(budgets, doc, key)
            want = wanted(key, held_by, follow)
            if want is None:
                continue
            if want:
                line = f"disabled OpenRouter key {_display(key)} for budget {', '.join(held_by)}"
            else:
                line = f"re-enabled OpenRouter key {_display(key)} (no budget that matches it is tripped)"
            fence()
            try:
                await self.client.set_disabled(management, key.hash, want)
            except SourceError as exc:
                errors[key.hash] = str(exc)
                if self._errors.get(key.hash) != str(exc):  # logged when it starts or changes, not every cycle
                    verb = "disable" if want else "re-enable"
                    log.error(
                        "could not %s OpenRouter key %s (tried again at each evaluation): %s", verb, _display(key), exc
                    )
                continue
            log.warning("%s", line)
            await self.state.record_key(key.hash, want, messages_for(f"guardd: {line}", line, "warning"), line, now)
            done.append(line)
        if errors != self._errors:
            await self.state.set_marker(ERRORS_MARKER, json.dumps(errors, sort_keys=True), now)
            self._errors = errors
        return done
