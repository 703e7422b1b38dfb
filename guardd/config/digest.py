"""The digest of a configuration's shared meaning: what two guardd processes compare to tell whether they run the
same budgets, health rules, notifiers, alerts and kill-switch (contract §9's ``config_digest``).

Two comparisons use it: the instances of a shared store compare theirs (:mod:`guardd.daemon.cluster`), and
``status``/``check`` compare the file's with the one the running daemon loaded, which it keeps in its lock record
(:mod:`guardd.adapters.instance_lock`): an edit without a reload is then said (review F11). Other sections
(ledgers, ``[guardd]``, ``[openrouter]``) are not part of it: they differ between hosts by design, and the keys of
``[openrouter]`` often come from a credential file a shell does not see.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

if TYPE_CHECKING:
    from guardd.config.schema import Settings

SHARED_SECTIONS = ("budgets", "health", "notifiers", "alerts", "killswitch")


def shared_digest(settings: Settings) -> str:
    """A hash of the sections every instance must share (contract §9): budgets, health, notifiers, alerts and
    killswitch. Secrets count (two notifiers differing only in a token differ) but cannot be read back."""
    data = settings.model_dump(include=set(SHARED_SECTIONS))

    def plain(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        if isinstance(value, Decimal | timedelta | datetime | os.PathLike):
            return str(value)
        return repr(value)

    text = json.dumps(data, sort_keys=True, default=plain)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
