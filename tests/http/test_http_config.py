"""The ``[http]`` section: where to listen, and where the bearer token comes from (never shown)."""

from pathlib import Path

import pytest

from guardd.config import load_config
from guardd.errors import ConfigError

TOKEN = "http-token-from-somewhere-1234"


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "guardd.toml"
    path.write_text(text)
    return str(path)


def test_no_http_section_means_no_server(tmp_path):
    assert load_config(write(tmp_path, "")).settings.http is None


def test_listen_takes_host_port_ipv6_and_a_unix_socket(tmp_path):
    for listen, address in [
        ("127.0.0.1:9787", ("127.0.0.1", 9787)),
        ("[::1]:8080", ("::1", 8080)),
        ("unix:/run/guardd/http.sock", "/run/guardd/http.sock"),
    ]:
        http = load_config(write(tmp_path, f'[http]\nlisten = "{listen}"\n')).settings.http
        assert http is not None and http.address == address


@pytest.mark.parametrize("listen", ["9787", "localhost", "host:99999", "unix:relative.sock"])
def test_a_bad_listen_value_is_a_configuration_error_naming_the_key(tmp_path, listen):
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, f'[http]\nlisten = "{listen}"\n'))
    assert "http.listen:" in str(exc.value)


def test_the_token_comes_from_the_credential_file_and_the_environment_wins(tmp_path, monkeypatch):
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "http_token").write_text(TOKEN + "\n")
    path = write(tmp_path, '[http]\ntoken = "from-the-file-000000"\n')
    http = load_config(path, env={"CREDENTIALS_DIRECTORY": str(creds)}).settings.http
    assert http is not None and http.token_value() == TOKEN
    monkeypatch.setenv("GUARDD_HTTP__TOKEN", "from-the-environment-99")
    http = load_config(path, env={"CREDENTIALS_DIRECTORY": str(creds)}).settings.http
    assert http is not None and http.token_value() == "from-the-environment-99"


def test_a_blank_token_counts_as_no_token(tmp_path):
    http = load_config(write(tmp_path, '[http]\ntoken = "  "\n')).settings.http
    assert http is not None and http.token_value() is None


def test_the_token_is_redacted_in_the_effective_configuration(tmp_path):
    config = load_config(write(tmp_path, f'[http]\ntoken = "{TOKEN}"\n'))
    shown = str(config.effective())
    assert TOKEN not in shown and "…1234" in shown
    assert TOKEN not in repr(config.settings)


def test_a_token_in_the_environment_alone_opens_no_server_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("GUARDD_HTTP__TOKEN", "from-the-environment-99")
    config = load_config(write(tmp_path, ""))
    assert config.settings.http is None
    assert any("GUARDD_HTTP__TOKEN" in w and "no HTTP server" in w for w in config.hygiene_warnings())


def test_a_listen_address_in_the_environment_opens_the_server(tmp_path, monkeypatch):
    monkeypatch.setenv("GUARDD_HTTP__LISTEN", "127.0.0.1:9799")
    monkeypatch.setenv("GUARDD_HTTP__TOKEN", "from-the-environment-99")
    http = load_config(write(tmp_path, "")).settings.http
    assert http is not None and http.address == ("127.0.0.1", 9799)
    assert http.token_value() == "from-the-environment-99"


def test_a_token_in_the_environment_with_an_http_section_in_the_file_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("GUARDD_HTTP__TOKEN", "from-the-environment-99")
    config = load_config(write(tmp_path, '[http]\nlisten = "127.0.0.1:9798"\n'))
    assert config.settings.http is not None and config.settings.http.token_value() == "from-the-environment-99"
    assert not any("GUARDD_HTTP__TOKEN" in w for w in config.hygiene_warnings())
