"""A pytest plugin (loaded by tests/conftest.py): a real PostgreSQL database of its own for each test.

The server is ``postgresql://postgres@127.0.0.1:5432/test`` (trust authentication), or ``$GUARDD_TEST_PG_URL``.
Each test that asks for ``pg_url`` gets a fresh database with a unique name, created through that server and
dropped (``WITH (FORCE)``, ending any connection a test left behind) when the test ends, so tests never see each
other's rows and may run in any order. When no server answers, the test is skipped with the reason — and under
``CI=true`` the skip is a failure (:mod:`tests.ci_policy`), so CI cannot pass without having run them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def server_url() -> str:
    return os.environ.get("GUARDD_TEST_PG_URL") or DEFAULT_URL


def with_database(url: str, name: str) -> str:
    """Return ``url`` pointing at the database ``name`` instead (same server, user and options)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The URL of a PostgreSQL server that answers, or skip (with the reason) when none does."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - psycopg is a dependency
        pytest.skip(f"psycopg is not installed: {exc}")
    url = server_url()
    try:
        with psycopg.connect(url, connect_timeout=5, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        pytest.skip(
            f"no PostgreSQL server answers at {url} ({str(exc).strip()}); start one "
            "(pg_ctlcluster 15 main start) or point GUARDD_TEST_PG_URL at one"
        )
    return url


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database for this test only; dropped afterwards."""
    import psycopg
    from psycopg import sql

    name = f"guardd_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(pg_server, name)
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
