"""A pytest plugin (loaded by tests/conftest.py): a real PostgreSQL schema of its own for each test.

The server is ``postgresql://postgres@127.0.0.1:5432/test`` (trust authentication), or ``$GUARDD_TEST_PG_URL``.
Each test that asks for ``pg_url`` gets a fresh schema with a unique name in that database, first on the
``search_path`` of every connection made with the URL (``options=-csearch_path=…``), dropped with everything in
it when the test ends; so tests never see each other's tables or rows and may run in any order. (A schema, not a
database: creating and dropping a database costs a checkpoint, about 1.4 s a test on a loaded 2-core machine.)
When no server answers, the test is skipped with the reason — and under ``CI=true`` the skip is a failure
(:mod:`tests.ci_policy`), so CI cannot pass without having run them.
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


def with_schema(url: str, schema: str) -> str:
    """Return ``url`` with ``schema`` first on the search path of its connections (named after it too)."""
    parts = urlsplit(url)
    option = f"options=-csearch_path%3D{schema}&application_name={schema}"
    query = f"{parts.query}&{option}" if parts.query else option
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


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
    """The URL of a new, empty schema of this test only (first on the search path); dropped afterwards."""
    import psycopg
    from psycopg import sql

    name = f"guardd_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        yield with_schema(pg_server, name)
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            # End what a test left connected (its locks would block the drop), then drop everything in it.
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
                " AND application_name = %s",
                (name,),
            )
            admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
