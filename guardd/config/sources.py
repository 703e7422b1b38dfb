"""Where the configuration comes from (contract §1): the file, the environment, systemd credentials.

Nothing here validates: this module finds the file, reads its TOML (``parse_float=Decimal``, so money never passes
through binary floating point) and folds the secrets from the environment into the raw data, which
:mod:`guardd.config.schema` then validates. It imports no pydantic, so the light path of the read-only commands
(:mod:`guardd.config.cache`) can use the same search order and the same list of inputs.
"""

from __future__ import annotations

import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from guardd.errors import ConfigError

SEARCH_PATHS = (Path("guardd.toml"), Path("/etc/guardd/guardd.toml"))
CREDENTIAL_FILES = {"openrouter_api_key": "api_key", "openrouter_management_key": "management_key"}
STORE_URL_CREDENTIAL = "store_url"  # $CREDENTIALS_DIRECTORY/store_url: [store] url (contract §9)
HTTP_TOKEN_FILE = "http_token"
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
"""``${NAME}`` in a notifier URL: replaced by that environment variable when the configuration loads."""
ENV_PREFIXES = ("GUARDD_", "OPENROUTER_")
"""Environment variables read as configuration (upper-cased; ``GUARDD_…`` is matched without regard to case)."""
ENV_NAMES = ("CREDENTIALS_DIRECTORY", "STATE_DIRECTORY")
"""Other environment variables the loaded configuration depends on."""


def find_config(explicit: str | None) -> Path | None:
    """Return the config file to use (contract §1 search order) or None for built-in defaults.

    Raise ConfigError when an explicitly named file (``-c`` or ``$GUARDD_CONFIG``) does not exist.
    """
    named = explicit or os.environ.get("GUARDD_CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigError([f"{named}: no such configuration file"])
        return path
    for candidate in SEARCH_PATHS:
        if candidate.is_file():
            return candidate
    return None


def read_toml(path: Path) -> dict[str, Any]:
    """The file's TOML as plain data; ConfigError naming the file when it cannot be read or parsed."""
    import tomllib  # here: a command whose kept view holds (guardd.config.cache) never parses TOML

    try:
        return tomllib.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not UTF-8 text"]) from None


StoreUrlSource = tuple[str, str]
"""Where ``[store] url`` comes from, never the URL itself: ``("environment", NAME)``, ``("credential", PATH)`` or
``("file", PATH)``."""


def store_url_source(url: str, path: Path | None) -> StoreUrlSource | None:
    """Where the validated store ``url`` came from, by the precedence of contract §1 (a ``GUARDD_STORE__URL``
    variable, the credential file ``store_url``, the configuration file at ``path``); None when that source does
    not give exactly ``url`` now (say, a ``GUARDD_STORE`` variable holding JSON): such a URL cannot be named."""
    names = sorted(name for name in os.environ if name.lower() == "guardd_store__url")
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    credential = Path(creds) / STORE_URL_CREDENTIAL if creds else None
    source: StoreUrlSource | None = None
    if names:
        source = ("environment", names[0])
    elif credential is not None and credential.is_file():
        source = ("credential", str(credential.absolute()))
    elif path is not None:
        source = ("file", str(path.absolute()))
    try:
        return source if source is not None and read_store_url(source) == url else None
    except ConfigError:
        return None


def read_store_url(source: StoreUrlSource) -> str | None:
    """``[store] url`` read now from ``source`` (:func:`store_url_source`), as the full load reads it; None when
    it is not there. ConfigError when the file cannot be read."""
    kind, where = source
    if kind == "environment":
        return os.environ.get(where)
    if kind == "credential":
        try:
            return Path(where).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError([f"{where}: cannot read: {exc.strerror}"]) from None
    store = read_toml(Path(where)).get("store")
    url = store.get("url") if isinstance(store, dict) else None
    return url if isinstance(url, str) else None


def secrets_from_environment(data: dict[str, Any], env: dict[str, str]) -> None:
    """Fill [openrouter] secrets from OPENROUTER_* and $CREDENTIALS_DIRECTORY (only when the section exists),
    [store] url from the credential file ``store_url``, and the ``[http]`` token from the credential file
    ``http_token`` (only when [http] exists; ``GUARDD_HTTP__TOKEN`` still wins)."""
    creds = env.get("CREDENTIALS_DIRECTORY")
    store_url = Path(creds) / STORE_URL_CREDENTIAL if creds else None
    if store_url is not None and store_url.is_file():
        store = data.setdefault("store", {})
        if isinstance(store, dict):
            store["url"] = store_url.read_text(encoding="utf-8").strip()
    http = data.get("http")
    if isinstance(http, dict) and creds and (Path(creds) / HTTP_TOKEN_FILE).is_file():
        http["token"] = (Path(creds) / HTTP_TOKEN_FILE).read_text(encoding="utf-8").strip()
    section = data.get("openrouter")
    if not isinstance(section, dict):
        return
    if creds:
        for filename, key in CREDENTIAL_FILES.items():
            file = Path(creds) / filename
            if file.is_file():
                section[key] = file.read_text(encoding="utf-8").strip()
    if env.get("OPENROUTER_API_KEY"):
        section["api_key"] = env["OPENROUTER_API_KEY"]
    if env.get("OPENROUTER_API_KEYS"):
        section["api_keys"] = [k.strip() for k in env["OPENROUTER_API_KEYS"].split(",") if k.strip()]
    management = env.get("OPENROUTER_MANAGEMENT_KEY") or env.get("OPENROUTER_PROVISIONING_KEY")
    if management:
        section["management_key"] = management
    if env.get("OPENROUTER_BASE_URL"):
        section["base_url"] = env["OPENROUTER_BASE_URL"]
