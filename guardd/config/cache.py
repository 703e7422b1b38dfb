"""The light path to the configuration for commands that only read (status, check, report, history, killswitch
show, quarantine, advise): the view that the full load validated, kept until anything it came from changes.

Why a cache and not a second, lighter validator: pydantic and pydantic-settings take most of a short command's
time to import (issue 14), but a hand-written check beside the schema would drift from it. So there is one
definition of what a configuration means (:mod:`guardd.config.schema`, validated by
:func:`guardd.config.load.load_config`); this module only remembers its result. :func:`load_view` computes a
fingerprint of everything the full load reads — the file's bytes, the ``GUARDD_…`` / ``OPENROUTER_…`` variables,
``$CREDENTIALS_DIRECTORY``'s files (their size and time, never their content), ``$STATE_DIRECTORY``, variables
``${NAME}`` the file refers to, the working directory, this interpreter and guardd's installation — and returns
the kept :class:`~guardd.config.view.ConfigView` when it matches, the source files of the configuration code and
of pydantic are unchanged, and the paths it resolved still resolve the same. Anything else (no cache, a change,
an unreadable or foreign cache file) runs the full load — the same errors, exit 78 — and keeps its view.

The kept view holds no secret (keys, tokens and notifier credentials are not part of a view). The shared store's
URL (``[store] url``) is a secret too: the view keeps where it comes from instead (the name of the variable, the
path of the credential file or of the configuration file, all part of the fingerprint) and reads it there when
the store is opened (:meth:`~guardd.config.view.ConfigView.store_url`); a URL from a source it cannot name is
never kept, so those commands load in full. The cache is
``$XDG_CACHE_HOME/guardd`` (else ``~/.cache/guardd``), one file per configuration file, mode 0600, and it is
read with an unpickler that builds only the view's own classes.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guardd.config.sources import ENV_NAMES, ENV_PREFIXES, ENV_REF, find_config
from guardd.config.view import ConfigView

if TYPE_CHECKING:
    from guardd.config.load import Config

FORMAT = 5  # 3: ConfigView.has_management_key; 4: the configuration digest; 5: keys_follow
_ALLOWED = {
    ("guardd.config.view", "ConfigView"),
    ("guardd.config.view", "NotifierView"),
    ("guardd.core.budgets", "Budget"),
    ("guardd.core.budgets", "RollingLimit"),
    ("guardd.core.health", "HealthRule"),
    ("guardd.core.spike", "Spike"),
    ("datetime", "timedelta"),
    ("decimal", "Decimal"),
    ("pathlib", "PosixPath"),
}
_DEPENDS_ON = ("guardd.config", "guardd.core", "guardd.errors", "pydantic", "pydantic_core", "pydantic_settings")
"""Modules whose source the kept view depends on (their files' size and time are checked on every use)."""


def load_view(explicit: str | None = None) -> ConfigView:
    """The configuration's view for a command that only reads: the kept one when nothing it came from changed,
    else the full :func:`~guardd.config.load.load_config` (whose :class:`Config` is a view too), kept for next
    time. Raise ConfigError exactly as ``load_config`` does."""
    path = find_config(explicit)
    cache = cache_file(path)
    try:
        digest = fingerprint(path) if cache is not None else None
    except OSError:
        digest = None  # the full load names what cannot be read
    if cache is not None and digest is not None:
        view = _read(cache, digest)
        if view is not None:
            return view
    config = _full(explicit)
    if cache is not None and digest is not None and (not config.shared_store or config.store_url_from is not None):
        try:
            unchanged = fingerprint(path) == digest  # not edited while it was being validated
        except OSError:
            unchanged = False
        if unchanged:
            _write(cache, digest, config.view())
    return config


def _full(explicit: str | None) -> Config:
    from guardd.config.load import load_config

    return load_config(explicit)


def cache_dir() -> Path | None:
    """``$XDG_CACHE_HOME/guardd``, else ``~/.cache/guardd``; None when there is no home to keep it in."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if xdg.startswith("/"):
        return Path(xdg) / "guardd"
    home = os.environ.get("HOME", "")
    return Path(home) / ".cache" / "guardd" if home.startswith("/") and home != "/" else None


def cache_file(path: Path | None) -> Path | None:
    """Where the view of the configuration at ``path`` (None: built-in defaults) is kept, for this directory."""
    folder = cache_dir()
    if folder is None:
        return None
    identity = f"{path.absolute() if path else 'defaults'}\0{os.getcwd()}"
    return folder / f"view-{hashlib.sha256(identity.encode()).hexdigest()[:32]}.pickle"


def fingerprint(path: Path | None) -> str:
    """A digest of every input of the full load but the code itself (see the module's docstring). Secrets in the
    environment enter it only through the hash."""
    h = hashlib.sha256()

    def part(*items: object) -> None:
        h.update(repr(items).encode())
        h.update(b"\0")

    part(FORMAT, sys.version, sys.prefix, __file__, os.getcwd())  # this interpreter, this installation of guardd
    text = b""
    if path is not None:
        text = path.read_bytes()
        part(str(path.absolute()), hashlib.sha256(text).hexdigest())
    refs = set(ENV_REF.findall(text.decode("utf-8", "replace")))
    for name in sorted(os.environ):
        if name.upper().startswith(ENV_PREFIXES) or name in ENV_NAMES or name in refs:
            part(name, os.environ[name])
    part(sorted(refs - set(os.environ)))
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if creds:
        try:
            names = sorted(os.listdir(creds))
        except OSError:
            names = []
        for name in names:
            try:
                st = os.stat(Path(creds) / name)
            except OSError:
                continue
            part(name, st.st_mtime_ns, st.st_size, st.st_ino)
    return h.hexdigest()


def _dependencies() -> list[tuple[str, int, int]]:
    found = []
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        top = name.startswith(_DEPENDS_ON[:3]) or (name.split(".")[0] in _DEPENDS_ON[3:] and name.count(".") <= 1)
        if file and top:
            try:
                st = os.stat(file)
            except OSError:
                continue
            found.append((file, st.st_mtime_ns, st.st_size))
    return sorted(found)


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a configuration view")
        return super().find_class(module, name)


def _read(cache: Path, digest: str) -> ConfigView | None:
    """The kept view when it is for ``digest`` and still holds; None otherwise (never an error)."""
    try:
        data = cache.read_bytes()
    except OSError:
        return None
    try:
        fmt, kept_digest, deps, view = _Unpickler(io.BytesIO(data)).load()
        if fmt != FORMAT or kept_digest != digest or not isinstance(view, ConfigView):
            return None
        for file, mtime, size in deps:
            st = os.stat(file)
            if (st.st_mtime_ns, st.st_size) != (mtime, size):
                return None
        if any(str(Path(given).resolve()) != resolved for given, resolved in view.resolved):
            return None
        view.zone  # noqa: B018 - a time zone gone from the system since: the full load says so
    except Exception:
        return None
    return view


def _write(cache: Path, digest: str, view: ConfigView) -> None:
    """Keep ``view`` for ``digest`` (atomically, mode 0600); a cache that cannot be written is no error."""
    data = pickle.dumps((FORMAT, digest, _dependencies(), view), protocol=pickle.HIGHEST_PROTOCOL)
    tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
    try:
        cache.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, cache)
    except OSError:
        tmp.unlink(missing_ok=True)
