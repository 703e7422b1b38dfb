"""The composition root (guardd/app.py): the backend follows ``[store] url`` (contract §9), only the chosen one is
imported, and everything guardd builds sits on the one store it opened."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from guardd.adapters.instance_lock import pid_space
from guardd.app import build, open_app, open_stores
from guardd.config import load_config


def config_file(tmp_path: Path, store: str = "", extra: str = "") -> Path:
    path = tmp_path / "guardd.toml"
    path.write_text(f'{store}\n[guardd]\nstate_dir = "state"\n{extra}\n[[budgets]]\nname = "a"\ndaily = 1\n')
    return path


async def test_without_a_store_url_the_state_is_sqlite_in_the_state_dir(tmp_path):
    config = load_config(str(config_file(tmp_path)))
    async with open_stores(config) as stores:
        assert (stores.kind, stores.where) == ("sqlite", str(tmp_path / "state" / "guardd.db"))
    assert (tmp_path / "state" / "guardd.db").exists()


async def test_a_postgresql_url_opens_the_shared_store_as_this_instance_without_showing_the_password(tmp_path, pg_url):
    url = pg_url.replace("postgres@", "postgres:not-the-password@")  # trust authentication ignores it
    config = load_config(str(config_file(tmp_path, f'[store]\nurl = "{url}"', 'instance = "host-a"')))
    async with open_stores(config) as stores:
        assert stores.kind == "postgresql" and "not-the-password" not in stores.where
        assert stores.events.instance == "host-a"
        assert stores.where.startswith("postgresql://postgres:…@127.0.0.1:5432/test")
    assert not (tmp_path / "state" / "guardd.db").exists()  # nothing went to a SQLite file


async def test_everything_built_sits_on_the_one_open_store(tmp_path):
    config = load_config(str(config_file(tmp_path)))
    async with open_app(config) as app:
        assert app.evaluator.events is app.stores.events and app.evaluator.stats is app.stores.stats
        assert app.engine is app.engine and app.engine.state is app.stores.state
        assert app.tailer().events is app.stores.events
        assert app.view is None and app.openrouter() is None  # no [openrouter]
        again = build(config, app.stores)
        assert again.engine is not app.engine and again.stores is app.stores


async def test_outbox_claims_are_made_in_the_name_of_this_instance_and_its_pid_space_not_of_the_host(tmp_path):
    config = load_config(str(config_file(tmp_path, extra='instance = "web_1"')))
    async with open_app(config) as app:
        assert app.engine.claimant == f"web_1:{pid_space()}"  # only pids of this space can be checked here
        assert app.engine.owner == f"web_1:{pid_space()}:{os.getpid()}"


def test_a_command_on_sqlite_never_imports_the_postgresql_driver(tmp_path):
    config_file(tmp_path)
    code = (
        "import sys, runpy\n"
        "sys.argv = ['guardd', 'status', '--json', '-c', 'guardd.toml']\n"
        "try:\n    runpy.run_module('guardd', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'psycopg_pool')), file=sys.stderr)\n"
        "print(sorted(m for m in sys.modules if m.startswith('guardd.store.postgres')), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.stderr.strip().splitlines()[-2:] == ["[]", "[]"], done.stderr


async def test_a_read_only_command_reads_the_shared_store_over_one_connection(tmp_path, pg_url):
    from guardd.config import load_view
    from guardd.store.postgres.db import OneConnection

    config = load_config(str(config_file(tmp_path, f'[store]\nurl = "{pg_url}"', 'instance = "host-a"')))
    async with open_stores(config, readonly=True) as stores:
        assert isinstance(stores.health.pool, OneConnection)  # type: ignore[attr-defined]
        assert await stores.events.load_series() is not None
    async with open_stores(config) as stores:  # the daemon and the commands that write: a pool
        assert not isinstance(stores.health.pool, OneConnection)  # type: ignore[attr-defined]
    load_view(str(tmp_path / "guardd.toml"))
    view = load_view(str(tmp_path / "guardd.toml"))  # the kept view: the URL read from the file now
    assert type(view).__name__ == "ConfigView"
    async with open_stores(view, readonly=True) as stores:
        assert stores.kind == "postgresql" and stores.events.instance == "host-a"
