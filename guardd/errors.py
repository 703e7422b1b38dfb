"""guardd's own exceptions. Adapters translate foreign ones (httpx, sqlite3, apprise) into these at the boundary;
only the CLI turns them into exit codes.

    GuarddError
    ├── ConfigError              the configuration is invalid (every problem listed)      -> exit 78
    ├── StoreError               the state database cannot be used (every sqlite3 error, translated)
    │   ├── SchemaTooNew         the database was written by a newer guardd
    │   ├── NotLeader            this instance's term as leader is over: a leader step must not write
    │   └── NotApplied           a change recorded in the shared store that no leader applied in time
    ├── SwitchFileError          the kill-switch file cannot be written or read (OSError, translated)
    ├── AlreadyRunning           another guardd holds this state_dir's lock                 -> exit 1
    │   └── InstanceTaken        another live guardd has this instance name in the shared store -> exit 1
    ├── InstanceRenamed          this host's ledgers were read under another instance name, not running -> exit 1
    ├── SourceError              OpenRouter could not answer usefully
    │   ├── SourceUnavailable    timeouts, connection errors, 5xx, 429: retry with backoff
    │   ├── SourceRejected       401/402/403: retrying will not help until someone acts
    │   └── SourceMalformed      invalid JSON or an unexpected shape
    ├── DeliveryError            a notification was not delivered (``permanent`` says whether to retry)
    └── UsageError               a command line that cannot be run as given                -> exit 2
"""

from __future__ import annotations

import os
from pathlib import Path


class GuarddError(Exception):
    """Base of every error guardd raises on purpose."""


class ConfigError(GuarddError):
    """An invalid configuration; ``problems`` holds one line per bad key."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class StoreError(GuarddError):
    """The state database cannot be opened, migrated or written."""


class NotLeader(StoreError):
    """This instance's term as the shared store's leader is over (or never began): a leader step must not write."""


class NotApplied(StoreError):
    """A change recorded in the shared store (a manual trip/release on an instance that does not lead) that no
    leader applied in time: it takes effect once one does, without asking again. The command exits 75 with it."""


class SchemaTooNew(StoreError):
    """The database schema is newer than this program understands (a downgrade)."""


class SwitchFileError(GuarddError):
    """The kill-switch file cannot be written, read or parsed."""


class AlreadyRunning(GuarddError):
    """Another ``guardd run`` holds the lock of this state (contract §7: one daemon per state)."""


class InstanceTaken(AlreadyRunning):
    """Another live guardd already runs under this instance name on the shared store (contract §7, §9)."""


class InstanceRenamed(GuarddError):
    """This host's ledger files were read into the shared store by another instance name that is not running (the
    host name changed, a container restarted under a new one): reading them under this name would count every
    line without an id again (review F13). Exit 1 until the old name is set back."""


class SourceError(GuarddError):
    """OpenRouter (or another source) did not give a usable answer."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class SourceUnavailable(SourceError):
    """Transient: a timeout, connection failure, 5xx or 429. Retry with backoff (honouring ``retry_after``)."""


class SourceRejected(SourceError):
    """Permanent until someone acts: a bad or disabled key, missing permissions, exhausted credits."""


class SourceMalformed(SourceError):
    """The answer was not JSON or not of the documented shape."""


class DeliveryError(GuarddError):
    """A notification failed; ``permanent`` is True when retrying cannot help (bad URL, 4xx)."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class UsageError(GuarddError):
    """A command that cannot run as given (unknown budget, bad date)."""


def not_writable(what: str, where: Path) -> StoreError:
    """The error of a changing command on state it may not write: names the file or folder and the user."""
    return StoreError(
        f"the {what} {where} is not writable by {_user()}; this command changes the state "
        "(reading commands such as status, report and history work without writing)"
    )


def _user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return f"uid {os.geteuid()}"
