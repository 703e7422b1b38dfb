"""``[store] url`` and ``[guardd] instance`` (contract §9): read from file, environment and credentials; a shared
store is refused loudly until the daemon runs on it, never silently replaced by SQLite."""

import socket
from pathlib import Path

import pytest

from guardd.config import load_config
from guardd.errors import ConfigError

URL = "postgresql://guardd:s3cret-pass@db.internal/guardd"


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "guardd.toml"
    path.write_text(text)
    return str(path)


def test_a_store_url_in_the_file_is_refused_as_not_yet_supported_without_showing_its_password(tmp_path):
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, f'[store]\nurl = "{URL}"\n'), env={})
    assert "store.url: the shared PostgreSQL store is not yet supported" in str(raised.value)
    assert "s3cret-pass" not in str(raised.value)


def test_a_store_url_from_the_environment_is_refused_too(tmp_path, monkeypatch):
    monkeypatch.setenv("GUARDD_STORE__URL", URL)
    with pytest.raises(ConfigError, match="not yet supported"):
        load_config(write(tmp_path, ""), env={})


def test_a_store_url_from_the_credential_file_is_refused_too(tmp_path):
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "store_url").write_text(URL + "\n")
    with pytest.raises(ConfigError, match="not yet supported"):
        load_config(write(tmp_path, ""), env={"CREDENTIALS_DIRECTORY": str(creds)})


def test_a_store_url_that_is_not_postgresql_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigError, match=r"store\.url: must be a postgresql:// URL"):
        load_config(write(tmp_path, '[store]\nurl = "mysql://db/guardd"\n'), env={})


def test_the_instance_name_defaults_to_the_host_name(tmp_path):
    assert load_config(write(tmp_path, ""), env={}).instance == socket.gethostname()


def test_the_instance_name_comes_from_the_guardd_section(tmp_path):
    assert load_config(write(tmp_path, '[guardd]\ninstance = "web-1"\n'), env={}).instance == "web-1"


def test_an_instance_name_with_spaces_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigError, match=r"guardd\.instance"):
        load_config(write(tmp_path, '[guardd]\ninstance = "web 1"\n'), env={})
