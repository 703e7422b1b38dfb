"""Configuration: precedence, secrets from credentials, redaction, and the messages of bad values."""

from pathlib import Path

import pytest

from guardd.config import load_config
from guardd.core.money import parse_money
from guardd.errors import ConfigError

KEY = "sk-or-v1-" + "9d" * 32


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "guardd.toml"
    path.write_text(text)
    return str(path)


def test_environment_overrides_the_file_at_any_depth(tmp_path, monkeypatch):
    path = write(tmp_path, '[guardd]\ntimezone = "UTC"\n[alerts]\nrepeat_every = "4h"\n')
    monkeypatch.setenv("GUARDD_GUARDD__TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("GUARDD_ALERTS__REPEAT_EVERY", "1h")
    config = load_config(path)
    assert config.settings.guardd.timezone == "Europe/Berlin"
    assert config.settings.alerts.repeat_every.total_seconds() == 3600


def test_openrouter_secrets_come_from_credentials_then_openrouter_variables(tmp_path):
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "openrouter_api_key").write_text(KEY + "\n")
    (creds / "openrouter_management_key").write_text("mgmt-secret-value-1234")
    path = write(tmp_path, '[openrouter]\napi_key = "sk-or-v1-from-the-file-0000000000"\n')
    config = load_config(path, env={"CREDENTIALS_DIRECTORY": str(creds)})
    assert config.settings.openrouter.all_keys() == [KEY]
    assert config.settings.openrouter.management_key.get_secret_value() == "mgmt-secret-value-1234"
    env = {
        "CREDENTIALS_DIRECTORY": str(creds),
        "OPENROUTER_API_KEYS": "sk-or-v1-a,sk-or-v1-b",
        "OPENROUTER_PROVISIONING_KEY": "old-name-key-5678",
    }
    config = load_config(path, env=env)
    assert config.settings.openrouter.all_keys() == [KEY, "sk-or-v1-a", "sk-or-v1-b"]
    assert config.settings.openrouter.management_key.get_secret_value() == "old-name-key-5678"


def test_secrets_never_show_in_repr_or_the_effective_configuration(tmp_path):
    path = write(tmp_path, f'[openrouter]\napi_key = "{KEY}"\n[[notifiers]]\nurl = "slack://TokA/TokB/TokC"\n')
    config = load_config(path, env={})
    shown = repr(config.settings) + str(config.effective())
    assert KEY not in shown and "TokB" not in shown
    assert "…9d9d" in str(config.effective())


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    path = write(tmp_path, '[guardd]\nstate_dir = "state"\n[[ledgers]]\npath = "logs/*.jsonl"\n')
    config = load_config(path, env={})
    assert config.state_dir == tmp_path / "state"
    assert config.killswitch_path == tmp_path / "state" / "killswitch.json"
    assert config.ledger_paths == [str(tmp_path / "logs" / "*.jsonl")]


def test_money_in_the_file_is_exact(tmp_path):
    path = write(tmp_path, '[[budgets]]\nname = "b"\ndaily = 0.1\nmonthly = "100.10"\n')
    budget = load_config(path, env={}).budgets[0]
    assert (budget.daily, budget.monthly) == (parse_money("0.1"), parse_money("100.10"))


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[[budgets]]\nname = "b"\n', "budgets[0]: sets no limit"),
        ('[[budgets]]\nname = "b"\ndaily = "lots"\n', "budgets[0].daily: not an amount of money"),
        ('[[budgets]]\nname = "b"\ndaily = 1\nsource = "openrouter"\n', "[openrouter] is absent"),
        ('[alerts]\ndigest_at = "9am"\n', "alerts.digest_at: must be a local time HH:MM"),
        ('[[notifiers]]\nurl = "not a url"\n', "notifiers[0].url: not an apprise URL"),
        ("[guardd\n", "not valid TOML"),
        ('[[budgets]]\nname = "b"\ndaily = 1\nnotify = []\n', "budgets[0].notify: an empty list sends"),
        ('[[health]]\nname = "h"\nerror_rate = 5\nnotify = []\n', "health[0].notify: an empty list sends"),
    ],
    ids=[
        "no-limit",
        "bad-money",
        "needs-openrouter",
        "digest-time",
        "bad-url",
        "toml-syntax",
        "budget-notifies-nobody",
        "health-notifies-nobody",
    ],
)
def test_bad_values_get_a_message_with_their_path(tmp_path, toml, message):
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, toml), env={})
    assert message in str(raised.value)


def test_no_config_file_runs_on_defaults_and_says_so(run_guardd):
    result = run_guardd("status", "--json")
    assert result.returncode == 0
    assert "built-in defaults" in result.stderr and result.stderr.count("built-in defaults") == 1


def test_config_check_names_a_dangling_notify_tag_together_with_the_other_bad_keys(run_guardd, tmp_path):
    (tmp_path / "c.toml").write_text(
        "[alerts]\nrepeat_every = 4\n"
        "[[notifiers]]\nurl = 'json://127.0.0.1:9/hook'\ntags = ['ops']\n"
        "[[budgets]]\nname = 'b'\ndaily = -1\nnotify = ['opss']\n"
    )
    result = run_guardd("config", "check", "-c", "c.toml")
    assert result.returncode == 78, result.stdout + result.stderr
    out = result.stdout + result.stderr
    assert "budgets[0].daily" in out and "alerts.repeat_every" in out, out
    assert "budgets[0].notify: no notifier carries the tag 'opss' (ops)" in out, out


def test_config_check_names_a_missing_openrouter_section_together_with_the_other_bad_keys(run_guardd, tmp_path):
    (tmp_path / "c.toml").write_text(
        "[[budgets]]\nname = 'b'\ndaily = -1\n[[budgets]]\nname = 'r'\nsource = 'openrouter'\ndaily = 5\n"
    )
    result = run_guardd("config", "check", "-c", "c.toml")
    assert result.returncode == 78, result.stdout + result.stderr
    out = result.stdout + result.stderr
    assert "budgets[0].daily" in out, out
    assert "budget(s) r use source openrouter/max but [openrouter] is absent" in out, out


def test_budget_and_health_rule_names_are_checked_alike(run_guardd, tmp_path):
    cfg = tmp_path / "guardd.toml"
    cfg.write_text('[[budgets]]\nname = "a b"\ndaily = 1\n[[health]]\nname = "x y"\nerror_rate = 5\n')
    result = run_guardd("config", "check", "-c", str(cfg))
    assert result.returncode == 78
    assert "budgets[0].name: 'a b' may contain only" in result.stderr
    assert "health[0].name: 'x y' may contain only" in result.stderr
