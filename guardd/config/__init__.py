"""Configuration (contract §1): TOML, then ``GUARDD_…`` environment overrides, then secrets.

Where the file is found: ``-c PATH``, else ``$GUARDD_CONFIG``, else ``./guardd.toml``, else
``/etc/guardd/guardd.toml``; with none, built-in defaults (said once on stderr by the CLI). Precedence, strongest
first: ``GUARDD_SECTION__KEY`` variables, the ``OPENROUTER_*`` variables, files in ``$CREDENTIALS_DIRECTORY``, the
file. Every problem is raised at once as :class:`guardd.errors.ConfigError`, one line per bad key.

The package:

- :mod:`~guardd.config.sources` — finding and reading the file, secrets from the environment and credentials;
- :mod:`~guardd.config.fields`, :mod:`~guardd.config.schema` — the one definition of what a configuration means
  (pydantic);
- :mod:`~guardd.config.problems` — how problems are worded, the checks across sections;
- :mod:`~guardd.config.load` — :func:`load_config` and :class:`Config` (the view plus the validated settings);
- :mod:`~guardd.config.view` — :class:`ConfigView`, the resolved, secret-free view the read-only commands use;
- :mod:`~guardd.config.cache` — :func:`load_view`, the light path that keeps a validated view until its inputs
  change.

Importing this package imports no pydantic: ``Config``, ``load_config``, ``Settings`` and the sections load
:mod:`guardd.config.load` / :mod:`guardd.config.schema` when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from guardd.config.cache import load_view
from guardd.config.sources import find_config
from guardd.config.view import ConfigView, NotifierView, parse_listen

if TYPE_CHECKING:
    from guardd.config.load import Config, load_config
    from guardd.config.schema import (
        AlertsSection,
        BudgetSection,
        GuarddSection,
        HealthSection,
        HttpSection,
        KillswitchSection,
        LedgerSection,
        NotifierSection,
        OpenRouterSection,
        Settings,
        StoreSection,
    )

_LAZY = {
    "Config": "guardd.config.load",
    "load_config": "guardd.config.load",
    **dict.fromkeys(
        (
            "AlertsSection",
            "BudgetSection",
            "GuarddSection",
            "HealthSection",
            "HttpSection",
            "KillswitchSection",
            "LedgerSection",
            "NotifierSection",
            "OpenRouterSection",
            "Settings",
            "StoreSection",
        ),
        "guardd.config.schema",
    ),
}

__all__ = [
    "AlertsSection",
    "BudgetSection",
    "Config",
    "ConfigView",
    "GuarddSection",
    "HealthSection",
    "HttpSection",
    "KillswitchSection",
    "LedgerSection",
    "NotifierSection",
    "NotifierView",
    "OpenRouterSection",
    "Settings",
    "StoreSection",
    "find_config",
    "load_config",
    "load_view",
    "parse_listen",
]


def __getattr__(name: str) -> Any:
    """The names that need pydantic, imported when first asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'guardd.config' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
