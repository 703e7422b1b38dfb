"""Redaction of secrets: an OpenRouter-style key is shown as ``…`` plus its last four characters.

Applied to every string guardd prints, logs or stores that may carry a key: the ``key`` of a ledger line, error
messages that echo a request, apprise URLs (tokens and passwords), and the effective configuration.
"""

from __future__ import annotations

import re

# sk-or-v1-…, sk-or-…, sk-ant-…, sk-proj-… and plain sk-… keys with at least 16 characters after the prefix.
_SECRET = re.compile(r"\b(?:sk|rk|pk)-[A-Za-z0-9_\-]{16,}")
_BEARER = re.compile(r"(?i)(bearer\s+)([A-Za-z0-9_\-\.]{12,})")
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@")


def mask(secret: str) -> str:
    """Return ``secret`` as ``…`` plus its last four characters (``…`` alone when it is short)."""
    secret = secret.strip()
    return f"…{secret[-4:]}" if len(secret) > 8 else "…"


def looks_like_secret(text: str) -> bool:
    """Return True when ``text`` is, as a whole, an API key that must not be stored as it is."""
    return bool(_SECRET.fullmatch(text.strip()))


def redact_text(text: str) -> str:
    """Return ``text`` with every API key, bearer token and URL password masked."""
    text = _SECRET.sub(lambda m: mask(m.group(0)), text)
    text = _BEARER.sub(lambda m: m.group(1) + mask(m.group(2)), text)
    return _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{mask(m['pw'])}@", text)


def redact_url(url: str) -> str:
    """Return an apprise URL with everything after the scheme's first path segment masked.

    Notification URLs carry their credentials in the path (``slack://TokenA/TokenB/TokenC``) or the userinfo
    (``mailtos://user:pass@host``); only the scheme and host stay readable: ``slack://…``, ``mailto://…@host``.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return mask(url)
    _userinfo, at, hostpart = rest.rpartition("@")
    host = hostpart.split("/", 1)[0].split("?", 1)[0]
    if at:
        return f"{scheme}://…@{host}"
    if scheme in {"json", "xml", "form", "http", "https", "jsons", "xmls", "forms", "mailto", "mailtos"}:
        return f"{scheme}://{host}/…" if "/" in hostpart else f"{scheme}://{host}"
    return f"{scheme}://…"
