"""Where ``guardd store copy`` reads the target's URL: ``--to URL`` (visible to every user in ``ps``), or, keeping a
password off the command line, ``--to-env VAR`` (an environment variable) and ``--to-file PATH`` (a file, ``-`` for
standard input). Exactly one of them; a variable or file that holds no URL is a usage error that touches nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from guardd.core.batch import Parsed
from guardd.store.sqlite.db import Store
from guardd.store.sqlite.events import EventStore

PASSWORD = "pw-Env-Secret-0815"


def with_password(url: str) -> str:
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@", 1)


@pytest.fixture
async def state(tmp_path: Path) -> Path:
    """A SQLite state with one event; returns its configuration file."""
    async with Store.open(tmp_path / "state" / "guardd.db") as lite:
        await EventStore(lite).write_batch(Parsed.of([("g:a", 1, '["m",null,null,[]]', 10**12, 1, 1)]))
    config = tmp_path / "guardd.toml"
    config.write_text('[guardd]\nstate_dir = "state"\ninstance = "web-1"\n')
    return config


def guardd(config: Path, *args: str, env: dict[str, str] | None = None, stdin: str = "") -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("GUARDD_", "OPENROUTER_"))}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "guardd", "store", "copy", *args, "-c", str(config)],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=config.parent,
        env=full_env,
        timeout=120,
    )


def events_in(url: str) -> int:
    with psycopg.connect(url) as conn:
        exists = conn.execute("SELECT to_regclass('events') IS NOT NULL").fetchone()
        return conn.execute("SELECT count(*) FROM events").fetchone()[0] if exists and exists[0] else 0


def test_the_url_is_read_from_the_environment_variable_named_by_to_env(state, pg_url):
    done = guardd(state, "--to-env", "TARGET_URL", env={"TARGET_URL": with_password(pg_url)})
    assert done.returncode == 0, done.stderr
    assert events_in(pg_url) == 1
    assert PASSWORD not in done.stdout + done.stderr and "postgresql://postgres:…@127.0.0.1" in done.stdout


def test_the_url_is_read_from_the_file_named_by_to_file(state, pg_url, tmp_path):
    secret = tmp_path / "store_url"
    secret.write_text(with_password(pg_url) + "\n")
    done = guardd(state, "--to-file", str(secret))
    assert done.returncode == 0, done.stderr
    assert events_in(pg_url) == 1 and PASSWORD not in done.stdout + done.stderr


def test_the_url_is_read_from_standard_input_with_to_file_dash(state, pg_url):
    done = guardd(state, "--to-file", "-", stdin=with_password(pg_url) + "\n")
    assert done.returncode == 0, done.stderr
    assert events_in(pg_url) == 1


def test_an_unset_variable_is_a_usage_error_that_copies_nothing(state, pg_url):
    done = guardd(state, "--to-env", "NOT_SET_ANYWHERE")
    assert done.returncode == 2
    assert "NOT_SET_ANYWHERE" in done.stderr and "not set" in done.stderr
    assert events_in(pg_url) == 0


def test_a_file_holding_no_url_is_a_usage_error(state, tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("\n")
    done = guardd(state, "--to-file", str(empty))
    assert done.returncode == 2 and str(empty) in done.stderr


def test_two_places_for_the_url_are_refused(state, pg_url):
    done = guardd(state, "--to", pg_url, "--to-env", "TARGET_URL", env={"TARGET_URL": pg_url})
    assert done.returncode == 2 and "not allowed with" in done.stderr


def test_a_password_on_the_command_line_still_works_and_is_warned_about(state, pg_url):
    done = guardd(state, "--to", with_password(pg_url))
    assert done.returncode == 0, done.stderr
    assert "--to-env" in done.stderr and PASSWORD not in done.stdout + done.stderr


def test_the_help_names_every_way_to_give_the_url(tmp_path):
    done = subprocess.run([sys.executable, "-m", "guardd", "store", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    for option in ("--to URL", "--to-env VAR", "--to-file PATH"):
        assert option in done.stdout, option
