"""Loading the configuration in full: sources, then pydantic validation (:mod:`guardd.config.schema`), then the
resolved view. This is the one place that decides whether a configuration is valid.

Every problem is collected and raised at once as :class:`guardd.errors.ConfigError`, each line naming the file
and the key's path (``guardd.toml: budgets[1].daily: must be greater than 0``; list indexes count from 0).
"""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from guardd.config import problems
from guardd.config.schema import Settings
from guardd.config.sources import find_config, read_toml, secrets_from_environment
from guardd.config.view import ConfigView, build_view
from guardd.core.periods import format_duration
from guardd.core.redact import url_has_secret
from guardd.errors import ConfigError


class Config(ConfigView):
    """The loaded configuration: its resolved view plus the validated ``settings`` (secrets included), for the
    daemon and the commands that change or send something."""

    settings: Settings

    def __init__(self, settings: Settings, path: Path | None) -> None:
        view = build_view(settings, path)
        super().__init__(**{f.name: getattr(view, f.name) for f in fields(ConfigView)})
        object.__setattr__(self, "settings", settings)

    def store_url(self) -> str:
        """The shared store's URL as validated (ConfigError without ``[store] url``)."""
        url = self.settings.store.url
        if url is None:
            raise ConfigError([f"{self.path or 'defaults'}: store.url: no shared store is configured"])
        return url.get_secret_value()

    def secrets_in_file(self) -> bool:
        """Return True when the configuration file itself carries a secret (a key or a notifier credential)."""
        if self.path is None:
            return False
        try:
            raw = read_toml(self.path)
        except ConfigError:
            return False
        section = raw.get("openrouter")
        if isinstance(section, dict) and any(section.get(k) for k in ("api_key", "api_keys", "management_key")):
            return True
        http = raw.get("http")
        if isinstance(http, dict) and http.get("token"):
            return True
        notifiers = raw.get("notifiers")
        if not isinstance(notifiers, list):
            return False
        return any(
            isinstance(n, dict) and "${" not in str(n.get("url", "")) and url_has_secret(str(n.get("url", "")))
            for n in notifiers
        )

    def hygiene_warnings(self) -> list[str]:
        """Return warnings about how the configuration file is kept (secrets readable by other users), and about a
        heartbeat that would expire between evaluations."""
        warnings = []
        g = self.settings.guardd
        if g.evaluate_every >= g.stale_after:
            warnings.append(
                f"guardd.evaluate_every ({format_duration(g.evaluate_every)}) is not below guardd.stale_after "
                f"({format_duration(g.stale_after)}): the kill-switch file expires between evaluations, and clients "
                "and guardd check will see a dead guard; make evaluate_every shorter"
            )
        if self.settings.http is None and os.environ.get("GUARDD_HTTP__TOKEN", "").strip():
            warnings.append(
                "GUARDD_HTTP__TOKEN is set but [http] is not configured: no HTTP server listens (add an [http]"
                " section, or GUARDD_HTTP__LISTEN, to serve)"
            )
        return warnings + self._secret_warnings()

    def _secret_warnings(self) -> list[str]:
        if self.path is None or not self.secrets_in_file():
            return []
        mode = self.path.stat().st_mode & 0o777
        if mode & 0o004:
            return [
                f"{self.path} contains secrets and is readable by every user (mode {mode:04o}); "
                f"fix with: chmod 0640 {self.path} (or move keys to systemd credentials)"
            ]
        return []

    def effective(self) -> dict[str, Any]:
        """Return the effective configuration as plain data, secrets redacted, paths resolved."""
        from guardd.core.redact import mask

        data = self.settings.model_dump(mode="json")
        data["guardd"]["state_dir"] = str(self.state_dir)
        data["killswitch"]["path"] = str(self.killswitch_path)
        for ledger, resolved in zip(data["ledgers"], self.ledger_paths, strict=True):
            ledger["path"] = resolved
        for notifier, section in zip(data["notifiers"], self.settings.notifiers, strict=True):
            notifier["url"] = section.display_url
        if self.settings.openrouter is not None:
            orr = data["openrouter"]
            key = self.settings.openrouter.api_key
            orr["api_key"] = mask(key.get_secret_value()) if key else None
            orr["api_keys"] = [mask(k.get_secret_value()) for k in self.settings.openrouter.api_keys]
            mk = self.settings.openrouter.management_key
            orr["management_key"] = mask(mk.get_secret_value()) if mk else None
        if self.settings.store.url is not None:
            from guardd.core.redact import store_url

            data["store"]["url"] = store_url(self.settings.store.url.get_secret_value())
        if self.settings.http is not None:
            token = self.settings.http.token_value()
            data["http"]["token"] = mask(token) if token else None
        return data


def _http_asked(data: dict[str, Any]) -> bool:
    """Whether the configuration asks for the HTTP service: an ``[http]`` section in the file, or its ``listen``
    (or the whole section) from the environment. ``GUARDD_HTTP__TOKEN`` alone does not: a token says how to guard
    a server, not to open one, and ``[http]`` absent means no HTTP server (contract §8)."""
    return "http" in data or any(k.upper() in ("GUARDD_HTTP", "GUARDD_HTTP__LISTEN") for k in os.environ)


def load_config(explicit: str | None = None, env: dict[str, str] | None = None) -> Config:
    """Return the configuration from the file found by :func:`find_config`, the environment and secrets.

    ``env`` (default ``os.environ``) is where ``OPENROUTER_*`` and ``$CREDENTIALS_DIRECTORY`` are read;
    ``GUARDD_…`` overrides always come from the process environment (pydantic-settings reads it).
    Raise ConfigError listing every problem with its file and key path.
    """
    env = dict(os.environ) if env is None else env
    path = find_config(explicit)
    data = read_toml(path) if path else {}
    secrets_from_environment(data, env)
    label = str(path) if path else "defaults"
    seen = problems.duplicate_names(data, label)
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        for error in exc.errors():
            line = f"{label}: {problems.loc(error['loc'])}: {problems.message(dict(error))}"
            if line not in seen:
                seen.append(line)
        # The checks across sections run on validated settings; when a field is bad, run them on the raw data
        # too, so one `config check` names every bad key at once (contract §1).
        seen += [line for line in problems.cross_checks_raw(data, label) if line not in seen]
        raise ConfigError(seen) from None
    if settings.http is not None and not _http_asked(data):
        settings = settings.model_copy(update={"http": None})  # a token alone opens no listener (hygiene_warnings)
    validated = {
        section: [{"notify": getattr(item, "notify", None)} for item in getattr(settings, section, None) or []]
        for section in ("budgets", "health")
    }
    seen += problems.unknown_tags({tag for n in settings.notifiers for tag in n.tags}, validated, label)
    if seen:
        raise ConfigError(seen)
    return Config(settings, path)
