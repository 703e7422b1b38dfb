"""The light path of the read-only commands (guardd.config.cache): a kept, validated view of the configuration,
used only while nothing it came from changed; otherwise the full pydantic validation, with the same errors."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from guardd.config import Config, ConfigView, load_config, load_view
from guardd.config.cache import cache_file
from guardd.errors import ConfigError

KEY = "sk-or-v1-" + "5e" * 32
HEAVY = ("pydantic", "pydantic_settings", "psycopg", "psycopg_pool", "rich", "httpx", "apprise", "apscheduler")
HEAVY += ("uvicorn", "starlette", "prometheus_client")
CONFIG = """[guardd]
state_dir = "state"
timezone = "Europe/Berlin"
[[budgets]]
name = "team-a"
match = { team = "a" }
daily = 5
rolling = [{ window = "10m", limit = 1 }]
[[health]]
name = "errors"
error_rate = 5
"""
READ_ONLY = [
    ["status", "--json"],
    ["check"],
    ["report", "--json"],
    ["history", "--json"],
    ["killswitch", "show", "--json"],
    ["quarantine", "--json"],
    ["advise", "--json"],
]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder))
    for name in list(os.environ):
        if name.upper().startswith(("GUARDD_", "OPENROUTER_")) or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)
    return folder


def write(tmp_path: Path, text: str = CONFIG) -> str:
    path = tmp_path / "guardd.toml"
    path.write_text(text)
    return str(path)


PROBE = """
import sys
from guardd.cli import main
code = main(sys.argv[1:])
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[0].split(",")))
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
sys.exit(code)
"""


def probe(command: list[str], path: str, cache: Path, tmp_path: Path) -> tuple[int, list[str], str]:
    """Run the real command in a fresh interpreter; return its exit code, the heavy packages it imported and
    its output."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("GUARDD_", "OPENROUTER_"))}
    env["XDG_CACHE_HOME"] = str(cache)
    done = subprocess.run(
        [sys.executable, "-c", PROBE.replace("sys.argv[0]", repr(",".join(HEAVY))), *command, "-c", path],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    heavy = [line for line in done.stderr.splitlines() if line.startswith("HEAVY=")]
    assert heavy, done.stderr
    return done.returncode, [h for h in heavy[-1].removeprefix("HEAVY=").split(",") if h], done.stdout


@pytest.mark.parametrize("command", READ_ONLY, ids=[" ".join(c) for c in READ_ONLY])
def test_read_only_commands_import_no_pydantic_once_the_configuration_was_validated(
    tmp_path: Path, cache: Path, command: list[str]
) -> None:
    path = write(tmp_path)
    first, heavy, _ = probe(command, path, cache, tmp_path)
    assert "pydantic" in heavy  # the first run validates in full
    second, heavy, again = probe(command, path, cache, tmp_path)
    assert heavy == []
    assert second == first
    if command[0] == "status":
        doc = json.loads(again)
        assert [b["name"] for b in doc["budgets"]] == ["team-a"]
        assert doc["timezone"] == "Europe/Berlin"


def test_a_changed_file_is_validated_in_full_and_names_every_bad_key(tmp_path: Path, cache: Path, run_guardd) -> None:
    path = write(tmp_path)
    assert run_guardd("status", "--json", "-c", path, env={"XDG_CACHE_HOME": str(cache)}).returncode == 0
    assert cache_file(Path(path)) is not None
    write(tmp_path, CONFIG.replace("daily = 5", "daily = -5\nbogus = 1").replace('"Europe/Berlin"', '"Mars/Base"'))
    done = run_guardd("status", "--json", "-c", path, env={"XDG_CACHE_HOME": str(cache)})
    assert done.returncode == 78
    full = run_guardd("config", "check", "-c", path, env={"XDG_CACHE_HOME": str(cache)})
    assert done.stderr == full.stderr  # exactly the messages of the full validation
    for key in ("guardd.timezone", "budgets[0].daily", "budgets[0].bogus"):
        assert f"{path}: {key}:" in done.stderr


def test_the_kept_view_is_used_only_while_its_inputs_are_unchanged(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, CONFIG + '[[notifiers]]\nurl = "json://${HOOK_HOST}/hook"\n')
    monkeypatch.setenv("HOOK_HOST", "127.0.0.1:9")
    first = load_view(path)
    assert isinstance(first, Config)
    kept = load_view(path)
    assert type(kept) is ConfigView
    assert kept.budgets == first.budgets and kept.health == first.health
    assert kept.state_dir == first.state_dir == tmp_path / "state"
    assert kept.notifiers == first.notifiers
    assert kept.weekday == first.weekday and kept.stale_after == first.stale_after

    monkeypatch.setenv("GUARDD_GUARDD__TIMEZONE", "Nowhere/Zone")  # an override in the environment
    with pytest.raises(ConfigError, match=r"guardd.timezone: unknown IANA time zone 'Nowhere/Zone'"):
        load_view(path)
    monkeypatch.delenv("GUARDD_GUARDD__TIMEZONE")
    assert type(load_view(path)) is ConfigView

    monkeypatch.delenv("HOOK_HOST")  # a variable the file refers to
    with pytest.raises(ConfigError, match=r"notifiers\[0\].url: refers to unset environment variable\(s\): HOOK_HOST"):
        load_view(path)

    monkeypatch.setenv("HOOK_HOST", "127.0.0.1:9")
    assert type(load_view(path)) is ConfigView
    monkeypatch.chdir(tmp_path)  # another working directory: kept apart
    assert isinstance(load_view(path), Config)


def test_a_state_folder_reached_through_a_moved_link_is_seen(tmp_path: Path, cache: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "state").symlink_to(tmp_path / "a")
    path = write(tmp_path)
    assert load_view(path).state_dir == tmp_path / "a"
    assert type(load_view(path)) is ConfigView
    (tmp_path / "state").unlink()
    (tmp_path / "state").symlink_to(tmp_path / "b")
    assert load_view(path).state_dir == tmp_path / "b"


def test_the_kept_view_holds_no_secret(tmp_path: Path, cache: Path) -> None:
    text = CONFIG + f'[openrouter]\napi_key = "{KEY}"\n[[notifiers]]\nurl = "json://user:Hunter2Secret@127.0.0.1:9/x"\n'
    path = write(tmp_path, text)
    os.chmod(path, 0o600)
    load_view(path)
    kept = cache_file(Path(path))
    assert kept is not None
    data = kept.read_bytes()
    assert KEY.encode() not in data and KEY[-20:].encode() not in data and b"Hunter2Secret" not in data
    assert kept.stat().st_mode & 0o777 == 0o600
    view = load_view(path)
    assert type(view) is ConfigView and view.has_openrouter
    assert "Hunter2Secret" not in view.notifiers[0].display_url


def test_a_foreign_or_broken_cache_file_is_never_trusted(tmp_path: Path, cache: Path) -> None:
    path = write(tmp_path)
    load_view(path)
    kept = cache_file(Path(path))
    assert kept is not None
    witness = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {witness}",))

    kept.write_bytes(pickle.dumps(Evil()))
    assert isinstance(load_view(path), Config)  # refused, validated again
    assert not witness.exists()
    kept.write_bytes(b"not a pickle")
    assert isinstance(load_view(path), Config)
    assert type(load_view(path)) is ConfigView  # rewritten by the full load


def test_the_view_is_the_full_configuration_s_meaning(tmp_path: Path, cache: Path) -> None:
    """Every view field of a Config equals the kept view's: one definition, copied, never re-derived."""
    path = write(tmp_path)
    config = load_config(path)
    load_view(path)
    kept = load_view(path)
    assert type(kept) is ConfigView
    assert kept.view().__dict__ == config.view().__dict__


STORE_URL = "postgresql://guardd:Pa55wordNeverKept@db.internal:5432/guardd"


def shared_store_from(source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str = STORE_URL) -> str:
    """A configuration whose ``[store] url`` comes from ``source``: the file, the environment or a credential."""
    if source == "file":
        return write(tmp_path, f'[store]\nurl = "{url}"\n' + CONFIG)
    if source == "environment":
        monkeypatch.setenv("GUARDD_STORE__URL", url)
    else:
        creds = tmp_path / "credentials"
        creds.mkdir(exist_ok=True)
        (creds / "store_url").write_text(url + "\n")
        monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    return write(tmp_path)


@pytest.mark.parametrize("source", ["file", "environment", "credential"])
def test_a_shared_store_configuration_is_kept_with_where_its_url_comes_from_never_the_url(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    path = shared_store_from(source, tmp_path, monkeypatch)
    first = load_view(path)
    assert isinstance(first, Config) and first.shared_store and first.store_url() == STORE_URL
    kept_file = cache_file(Path(path))
    assert kept_file is not None and kept_file.exists()
    data = kept_file.read_bytes()
    assert b"Pa55wordNeverKept" not in data and b"db.internal" not in data
    kept = load_view(path)
    assert type(kept) is ConfigView and kept.shared_store
    assert kept.store_url() == STORE_URL  # read again from where it comes from


@pytest.mark.parametrize("source", ["file", "environment", "credential"])
def test_a_changed_store_url_is_validated_again(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    path = shared_store_from(source, tmp_path, monkeypatch)
    load_view(path)
    assert type(load_view(path)) is ConfigView
    bad = shared_store_from(source, tmp_path, monkeypatch, url="mysql://guardd:Pa55wordNeverKept@db/guardd")
    with pytest.raises(ConfigError, match="must be a postgresql:// URL"):
        load_view(bad)


def test_status_on_a_shared_store_imports_no_pydantic_once_the_configuration_was_validated(
    tmp_path: Path, cache: Path, pg_url: str
) -> None:
    path = write(tmp_path, f'[store]\nurl = "{pg_url}"\n' + CONFIG)
    first, heavy, _ = probe(["status", "--json"], path, cache, tmp_path)
    assert "pydantic" in heavy
    second, heavy, again = probe(["status", "--json"], path, cache, tmp_path)
    assert "pydantic" not in heavy and "pydantic_settings" not in heavy
    assert second == first
    doc = json.loads(again)
    assert [b["name"] for b in doc["budgets"]] == ["team-a"] and "cluster" in doc


def test_a_store_url_from_a_source_that_cannot_be_named_is_never_kept(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GUARDD_STORE", json.dumps({"url": STORE_URL}))  # the whole section as JSON
    path = write(tmp_path)
    first = load_view(path)
    assert first.shared_store and first.store_url() == STORE_URL
    assert isinstance(load_view(path), Config)  # validated in full every time
    kept = cache_file(Path(path))
    assert kept is None or not kept.exists()
