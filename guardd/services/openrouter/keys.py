"""Switching OpenRouter keys off and on with the kill-switch (``killswitch.disable_openrouter_keys``).

When a budget's scope trips, the keys it matches are disabled with ``PATCH /keys/{hash}``; when the scope is
released, the keys *guardd itself* disabled are re-enabled. A key that was already disabled (by a person, or
by another tool) is never touched: ``or_keys.disabled_by_guardd`` records which keys are guardd's doing.

Which keys a budget matches: its ``match.key`` glob against each key's name, label, hash and preview
(:func:`guardd.core.keys.key_matches`, the rule every budget uses); without ``match.key``, every key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from guardd.adapters.openrouter import OpenRouterClient
from guardd.config import Config
from guardd.core.budgets import Budget
from guardd.core.keys import KnownKey, ref_of
from guardd.core.keys import key_matches as core_key_matches
from guardd.errors import SourceError
from guardd.store.api import ListedKey, Message, RemoteAPI, StateAPI

log = logging.getLogger("guardd.openrouter")


def key_matches(budget: Budget, name: str | None, label: str | None, key_hash: str) -> bool:
    """Whether ``budget`` names this ``/keys`` entry: the one key matcher, :func:`guardd.core.keys.key_matches`."""
    return core_key_matches(budget.match.get("key"), KnownKey(ref_of(label, key_hash), name, label, key_hash))


def _matches(budget: Budget, key: ListedKey) -> bool:
    return key_matches(budget, key.name, key.label, key.hash)


MessagesFor = Callable[[str, str, str], list[Message]]
"""Builds the outbox rows of a notice: ``(title, body, severity) -> messages`` (the engine's routing)."""


class KeySwitch:
    """Applies saved switch decisions to OpenRouter keys. Not re-entrant: the engine calls it once per cycle.

    Each decision's scope changes are saved with the decision (:meth:`StateStore.update_switch`) before anything
    is switched. :meth:`apply` works through them in order; each PATCH is recorded, with its notice, in one
    transaction right after OpenRouter confirmed it; a change is forgotten only when every key it touched is
    recorded. A record that fails leaves the change pending, and the next cycle does it again: a PATCH is
    idempotent, and the key's record then says what OpenRouter holds (never "already off" for a key guardd
    itself re-enabled).
    """

    def __init__(self, config: Config, state: StateAPI, remote: RemoteAPI, client: OpenRouterClient) -> None:
        self.config, self.state, self.remote, self.client = config, state, remote, client

    async def apply(self, now: datetime, messages_for: MessagesFor) -> list[str]:
        """Switch the keys of every pending scope change; return one line per key switched now."""
        section = self.config.settings.openrouter
        pending = await self.state.pending_key_changes()
        if section is None or section.management_key is None or not pending:
            return []
        management = section.management_key.get_secret_value()
        done: list[str] = []
        for change in pending:
            budget = self.config.budget(change.scope)
            if change.tripped and not await self._tripped_now(change.scope):
                budget = None  # released since (a decision left pending while keys were not followed): stale
            if budget is not None:
                if change.tripped:
                    done += await self._disable(budget, management, now, messages_for)
                else:
                    done += await self._enable(budget, management, now, messages_for)
            await self.state.key_change_done(change, now)
        return done

    async def _disable(self, budget: Budget, management: str, now: datetime, messages_for: MessagesFor) -> list[str]:
        done = []
        for key in await self.remote.listed_keys():
            if key.disabled or not _matches(budget, key):
                continue  # already off (perhaps by a person): not ours to manage
            line = f"disabled OpenRouter key {key.name or key.hash[:8]} for budget {budget.name}"
            if await self._set(management, key.hash, key.name, True, now, line, messages_for):
                done.append(line)
        return done

    async def _set(
        self,
        management: str,
        key_hash: str,
        name: str | None,
        disabled: bool,
        now: datetime,
        line: str,
        messages_for: MessagesFor,
    ) -> bool:
        """PATCH the key, then record it with its notice; False when OpenRouter refused (logged, not retried)."""
        try:
            await self.client.set_disabled(management, key_hash, disabled)
        except SourceError as exc:
            verb = "disable" if disabled else "re-enable"
            log.error("could not %s OpenRouter key %s: %s", verb, name or key_hash[:8], exc)
            return False
        log.warning("%s", line)
        await self.state.record_key(key_hash, disabled, messages_for(f"guardd: {line}", line, "warning"), line, now)
        return True

    async def _enable(self, budget: Budget, management: str, now: datetime, messages_for: MessagesFor) -> list[str]:
        done = []
        for key in await self.remote.listed_keys():
            if not (key.disabled_by_guardd and key.disabled) or not _matches(budget, key):
                continue
            if await self._still_held(key, budget.name):
                continue
            line = f"re-enabled OpenRouter key {key.name or key.hash[:8]} (budget {budget.name} released)"
            if await self._set(management, key.hash, key.name, False, now, line, messages_for):
                done.append(line)
        return done

    async def _tripped_now(self, scope: str) -> bool:
        doc = await self.state.switch_doc()
        current = doc.scopes.get(scope) if doc is not None else None
        return current is not None and current.tripped

    async def _still_held(self, key: ListedKey, releasing: str) -> bool:
        """True when another budget that matches this key is still tripped (the key stays off)."""
        doc = await self.state.switch_doc()
        if doc is None:
            return False
        for name, scope in doc.scopes.items():
            other = self.config.budget(name)
            if name != releasing and scope.tripped and other is not None and _matches(other, key):
                return True
        return False
