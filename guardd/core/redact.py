"""Redaction of secrets: an OpenRouter-style key is shown as ``…`` plus its last four characters.

Applied to every string guardd prints, logs or stores that may carry a key: the ``key`` of a ledger line, error
messages that echo a request, apprise URLs (tokens and passwords), and the effective configuration.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

# sk-or-v1-…, sk-or-…, sk-ant-…, sk-proj-… and plain sk-… keys with at least 16 characters after the prefix,
# wherever they stand in a text: the unambiguous prefixes even glued to a word (``tokensk-or-v1-…``), plain
# ``sk-``/``rk-``/``pk-`` only at a word's start (``team_sk-…`` too, but ``desk-operations-europe-west`` is a word).
_SECRET = re.compile(r"(?:sk-(?:or|ant|proj)-|(?<![A-Za-z0-9])(?:sk|rk|pk)-)[A-Za-z0-9_\-]{16,}")
_BEARER_PREFIX = re.compile(r"(?i)^bearer\s+")
_BEARER = re.compile(r"(?i)(bearer\s+)([A-Za-z0-9_\-\.+/=~]{12,})")  # base64 and JWT tokens too
# The scheme starts where a run of scheme characters starts (the lookbehind): without it, each position of a long
# run (a MiB of letters in a ledger field) was tried, each scanning to the run's end — quadratic.
_URL_PASSWORD = re.compile(r"(?P<scheme>(?<![a-z0-9+.\-])[a-z][a-z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@")


def mask(secret: str) -> str:
    """Return ``secret`` as ``…`` plus its last four characters (``…`` alone when it is short)."""
    secret = secret.strip()
    return f"…{secret[-4:]}" if len(secret) > 8 else "…"


def looks_like_secret(text: str) -> bool:
    """Return True when ``text`` is, as a whole, an API key that must not be stored as it is."""
    return bool(_SECRET.fullmatch(text.strip()))


def clean_secret(text: str) -> str:
    """Return a ``key`` field as guardd stores it: a key, bare or as ``Bearer <key>``, becomes its masked form
    (``…abc1``, the same for both spellings); any key inside a longer text is masked in place."""
    bare = _BEARER_PREFIX.sub("", text.strip())
    if bare != text.strip() and len(bare) >= 12 and not any(c.isspace() for c in bare):
        return mask(bare)
    if looks_like_secret(text):
        return mask(text)
    return redact_text(text)


def redact_text(text: str) -> str:
    """Return ``text`` with every API key, bearer token and URL password masked, wherever it stands."""
    text = _SECRET.sub(lambda m: mask(m.group(0)), text)
    text = _BEARER.sub(lambda m: m.group(1) + mask(m.group(2)), text)
    return _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{mask(m['pw'])}@", text)


_PLAIN_SCHEMES = {"json", "xml", "form", "http", "https", "jsons", "xmls", "forms", "mailto", "mailtos"}
_SECRET_PARAMS = re.compile(r"(?i)(?:^|[?&])(?:pass|password|token|key|secret|apikey|api_key|webhook)=[^&]+")


def redact_url(url: str) -> str:
    """Return an apprise URL with its credentials masked.

    Notification URLs carry credentials in the path (``slack://TokenA/TokenB/TokenC``), the userinfo
    (``mailtos://user:pass@host``) or the query (``?pass=…``). Only the scheme and, for plain webhook and mail
    schemes, the host stay readable: ``slack://…``, ``mailtos://…@smtp.example.com``, ``json://10.0.0.5:8080/…``.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return mask(url)
    rest = rest.split("?", 1)[0]
    _userinfo, at, hostpart = rest.rpartition("@")
    host = hostpart.split("/", 1)[0]
    if scheme.lower() not in _PLAIN_SCHEMES:
        return f"{scheme}://…"
    if at:
        return f"{scheme}://…@{host}"
    return f"{scheme}://{host}/…" if "/" in hostpart.strip("/") else f"{scheme}://{host}"


def url_has_secret(url: str) -> bool:
    """Return True when an apprise URL carries a credential (token scheme, password or secret query)."""
    scheme, _, rest = url.partition("://")
    if scheme.lower() not in _PLAIN_SCHEMES:
        return True
    base, _, query = rest.partition("?")
    userinfo = base.rpartition("@")[0]
    return (":" in userinfo and bool(userinfo.split(":", 1)[1])) or bool(_SECRET_PARAMS.search("?" + query))


def store_url(url: str) -> str:
    """Return ``url`` for messages and logs: its scheme, user, host, port and database, never its password —
    whether in the userinfo (which may itself hold ``/``, ``:`` or ``@``) or in the query (``?password=``, so no
    query is shown). A ``key=value`` connection string shows nothing but that it is one."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "(a key=value connection string)"
    rest = rest.split("?", 1)[0]
    userinfo, at, location = rest.rpartition("@")
    user, colon, _password = userinfo.partition(":")
    user = f"{user}{':…' if colon else ''}@" if at else ""
    return f"{scheme}://{user}{location}"


_KV_SECRET = re.compile(r"(?i)(?:^|\s)(?:ssl)?password\s*=\s*(.*?)(?=\s+[A-Za-z_]+\s*=|$)")


def store_secrets(url: str) -> list[str]:
    """Every piece of a secret the store ``url`` holds, longest first: the userinfo's password, ``password=`` and
    ``sslpassword=`` (in a URL's query or a ``key=value`` string), each as written, decoded, and word by word (libpq
    quotes the word it could not parse)."""
    _scheme, sep, rest = url.partition("://")
    found: list[str] = []
    if sep:
        base, _, query = rest.partition("?")
        userinfo = base.rpartition("@")[0]
        if ":" in userinfo:
            found.append(userinfo.partition(":")[2])
        for part in query.split("&"):
            name, eq, value = part.partition("=")
            if eq and name.strip().lower() in ("password", "sslpassword"):
                found.append(value)
    else:
        found += [m.group(1).strip().strip("'") for m in _KV_SECRET.finditer(url)]
    found += [unquote(s) for s in found]
    found += [word for s in found for word in s.split()]
    return sorted({s for s in found if s}, key=len, reverse=True)


def store_error(text: str, url: str) -> str:
    """Return ``text`` (a driver's error about the store at ``url``) with every piece of the URL's secrets replaced
    by ``…``: an error about a malformed URL quotes the token it could not parse, which may be the password."""
    for secret in store_secrets(url):
        text = text.replace(secret, "…")
    return text
