"""``[store] url`` and ``[guardd] instance`` (contract §9): read from file, environment and credentials; a shared
store's password is never shown."""

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


def test_a_store_url_in_the_file_is_read_and_shown_without_its_password(tmp_path):
    config = load_config(write(tmp_path, f'[store]\nurl = "{URL}"\n'), env={})
    assert config.settings.store.url is not None and config.settings.store.url.get_secret_value() == URL
    assert config.effective()["store"]["url"] == "postgresql://guardd:…@db.internal/guardd"
    assert "s3cret-pass" not in repr(config.settings) and "s3cret-pass" not in str(config.effective())


def test_a_store_url_from_the_environment_is_read(tmp_path, monkeypatch):
    monkeypatch.setenv("GUARDD_STORE__URL", URL)
    url = load_config(write(tmp_path, ""), env={}).settings.store.url
    assert url is not None and url.get_secret_value() == URL


def test_a_store_url_from_the_credential_file_is_read(tmp_path):
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "store_url").write_text(URL + "\n")
    url = load_config(write(tmp_path, ""), env={"CREDENTIALS_DIRECTORY": str(creds)}).settings.store.url
    assert url is not None and url.get_secret_value() == URL


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
