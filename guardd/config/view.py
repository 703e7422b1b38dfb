"""The resolved view of a validated configuration: what the read-only commands read, as plain data.

A :class:`ConfigView` holds no secret and needs no pydantic: relative paths resolved, budgets and health rules
as :mod:`guardd.core` objects, notifiers by their redacted URL. It is only ever built from validated settings
(:func:`build_view`, by :class:`guardd.config.load.Config`, which is a ConfigView plus its pydantic ``settings``),
and the light path of :mod:`guardd.config.cache` keeps such a view for a file that has not changed since.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, fields
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from guardd.core.budgets import Budget
from guardd.core.health import HealthRule
from guardd.errors import ConfigError

if TYPE_CHECKING:
    from guardd.config.schema import Settings


@dataclass(frozen=True)
class NotifierView:
    """A notifier as status shows it: the URL with its credentials masked (contract §6)."""

    display_url: str
    tags: tuple[str, ...]
    min_severity: str


@dataclass(frozen=True, eq=False)
class ConfigView:
    """The configuration's meaning for commands that only read the state (status, check, report, history,
    killswitch show, quarantine, advise). Build it with :func:`build_view` from validated settings only."""

    path: Path | None
    """The configuration file, or None for built-in defaults."""
    state_dir: Path
    killswitch_path: Path
    ledger_paths: list[str]
    budgets: list[Budget]
    health: list[HealthRule]
    timezone: str
    """``[guardd] timezone``: an IANA name that was checked to exist."""
    weekday: int
    """The first day of a week: 0 Monday … 6 Sunday."""
    stale_after: timedelta
    evaluate_every: timedelta
    max_event_cost: int
    log_format: str
    instance_name: str | None
    notifiers: tuple[NotifierView, ...]
    has_openrouter: bool
    """``[openrouter]`` is configured (its keys are not part of the view)."""
    has_management_key: bool
    """``[openrouter] management_key`` is set: guardd lists every key of the account, so a budget that names no
    key reads the whole account's spend (without it, only the polled keys': a lower bound); and guardd may switch
    OpenRouter keys."""
    keys_follow: bool
    """``[killswitch] disable_openrouter_keys``: the keys a tripped budget matches are disabled."""
    shared_store: bool
    """``[store] url`` is set: the state is in PostgreSQL, whose URL (a secret) is not part of the view."""
    store_url_from: tuple[str, str] | None
    """Where ``[store] url`` comes from (:data:`guardd.config.sources.StoreUrlSource`: a variable's name, a
    credential file's or the configuration file's path), never the URL; None without a shared store, or when
    the source cannot be named (such a view is never kept)."""
    resolved: tuple[tuple[str, str], ...]
    """Paths that were resolved through symbolic links, as ``(given, resolved)``: a kept view is stale once one of
    them resolves differently."""
    config_digest: str
    """The digest of the sections every instance must share (:func:`guardd.config.digest.shared_digest`): what
    ``status`` compares with the configuration the running daemon loaded."""

    @property
    def instance(self) -> str:
        """This host's name in a shared store (contract §9): ``[guardd] instance``, else the host name."""
        return self.instance_name or socket.gethostname()

    @property
    def db_path(self) -> Path:
        return self.state_dir / "guardd.db"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def store_url(self) -> str:
        """The shared store's URL (a secret), read now from where the validated one came from; ConfigError when
        it is no longer there (the next command validates again)."""
        from guardd.config.sources import read_store_url

        url = read_store_url(self.store_url_from) if self.store_url_from is not None else None
        if url is None:
            raise ConfigError([f"{self.path or 'defaults'}: store.url: the shared store's URL is no longer set"])
        return url

    def budget(self, name: str) -> Budget | None:
        return next((b for b in self.budgets if b.name == name), None)

    def view(self) -> ConfigView:
        """This configuration's view alone (a :class:`Config` without its settings)."""
        return ConfigView(**{f.name: getattr(self, f.name) for f in fields(ConfigView)})


def build_view(settings: Settings, path: Path | None) -> ConfigView:
    """The view of validated ``settings`` read from ``path``: relative paths resolved against the file's folder
    (the working directory for built-in defaults); no ``state_dir``: ``$STATE_DIRECTORY``, else ``.guardd``."""
    from guardd.config.digest import shared_digest
    from guardd.config.sources import store_url_source

    parent = path.parent if path else Path.cwd()
    base = parent.resolve()
    resolved = [(str(parent.absolute()), str(base))]
    state = settings.guardd.state_dir
    if state is None:
        env_state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
        state = Path(env_state) if env_state else Path(".guardd")
    if state.is_absolute():
        state_dir = state
    else:
        state_dir = (base / state).resolve()
        resolved.append((str(base / state), str(state_dir)))
    switch = settings.killswitch.path
    g = settings.guardd
    url = settings.store.url
    return ConfigView(
        path=path,
        state_dir=state_dir,
        killswitch_path=switch if switch.is_absolute() else state_dir / switch,
        ledger_paths=[
            str(Path(lg.path) if Path(lg.path).is_absolute() else (base / lg.path)) for lg in settings.ledgers
        ],
        budgets=[b.to_core() for b in settings.budgets],
        health=[h.to_core() for h in settings.health],
        timezone=g.timezone,
        weekday=g.weekday,
        stale_after=g.stale_after,
        evaluate_every=g.evaluate_every,
        max_event_cost=g.max_event_cost,
        log_format=g.log_format,
        instance_name=g.instance,
        notifiers=tuple(NotifierView(n.display_url, tuple(n.tags), n.min_severity) for n in settings.notifiers),
        has_openrouter=settings.openrouter is not None,
        has_management_key=settings.openrouter is not None and settings.openrouter.management_key is not None,
        keys_follow=settings.killswitch.disable_openrouter_keys,
        shared_store=settings.store.url is not None,
        store_url_from=None if url is None else store_url_source(url.get_secret_value(), path),
        resolved=tuple(resolved),
        config_digest=shared_digest(settings),
    )


def parse_listen(value: str) -> tuple[str, int] | str:
    """Return ``(host, port)`` for ``host:port`` / ``[v6]:port``, or the path for ``unix:/path``.

    Raise ValueError for anything else.
    """
    if value.startswith("unix:"):
        path = value.removeprefix("unix:")
        if not path.startswith("/"):
            raise ValueError(f"a unix socket needs an absolute path (unix:/run/guardd/http.sock), not {value!r}")
        return path
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([^\s:\[\]]+):(\d{1,5})", value)
    if match is None:
        raise ValueError(f"must be host:port (127.0.0.1:9787) or unix:/path, not {value!r}")
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4))
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is out of range 1-65535")
    return host, port
