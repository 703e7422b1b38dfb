"""An OpenRouter figure guardd knows only in part is a lower bound, said as such: never a silent OK.

Two ways to know only part (review F17, F12): an account budget (no ``match.key``) without a management key sees
only the key(s) guardd polls, not the account; and a window guardd has not watched whole while OpenRouter's answer
has no figure for it. Real parts: the ``guardd`` command in a subprocess on the real config loader and SQLite,
the stand-in OpenRouter over a real socket.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.fake_openrouter import FakeOpenRouter

PROD = "sk-or-v1-" + "1a" * 30 + "aaa1"
BATCH = "sk-or-v1-" + "7e" * 30 + "bbb2"
MGMT = "mgmt-" + "3c" * 20
ACCOUNT = '[[budgets]]\nname = "account"\nsource = "openrouter"\ndaily = 10\n'


@pytest.fixture
def fake():
    """An account with two keys: prod ($1.00 today, the one guardd polls) and batch ($40.00 today)."""
    with FakeOpenRouter() as server:
        server.state.management_key = MGMT
        server.add_key(PROD, name="prod", usage_daily="1.00", usage="1")
        server.add_key(BATCH, name="batch", usage_daily="40.00", usage="40")
        yield server


def configure(tmp_path: Path, fake: FakeOpenRouter, budget: str = ACCOUNT, management: bool = False, zone="UTC"):
    mgmt = f'management_key = "{MGMT}"\n' if management else ""
    path = tmp_path / "guardd.toml"
    path.write_text(
        f'[guardd]\nstate_dir = "state"\ntimezone = "{zone}"\n'
        f'[openrouter]\napi_key = "{PROD}"\n{mgmt}base_url = "{fake.base_url}"\ntimeout = "2s"\n{budget}'
    )
    path.chmod(0o600)
    return path


def ran(run_guardd, path: Path) -> Path:
    result = run_guardd("run", "--once", "-c", str(path))
    assert result.returncode == 0, result.stderr
    return path


def daily(run_guardd, path: Path) -> dict:
    doc = json.loads(run_guardd("status", "--json", "-c", str(path)).stdout)
    (budget,) = doc["budgets"]
    return budget["windows"][0]


# F17: an account budget without a management key


def test_without_a_management_key_check_warns_that_an_account_budget_counts_only_the_polled_key(
    run_guardd, tmp_path, fake
):
    path = ran(run_guardd, configure(tmp_path, fake))
    result = run_guardd("check", "-c", str(path))
    assert result.returncode == 1, result.stdout
    assert "account-wide spend needs [openrouter] management_key" in result.stdout, result.stdout
    assert "…aaa1" in result.stdout and "'account_daily'=1;" in result.stdout, result.stdout


def test_without_a_management_key_status_shows_the_account_figure_as_partial_with_its_reason(
    run_guardd, tmp_path, fake
):
    window = daily(run_guardd, ran(run_guardd, configure(tmp_path, fake)))
    assert (window["spent"], window["partial"]) == ("1.00", True), window
    assert "only the polled key …aaa1 is counted" in window["partial_reason"], window


def test_status_for_people_says_why_the_account_figure_is_partial(run_guardd, tmp_path, fake):
    path = ran(run_guardd, configure(tmp_path, fake))
    text = run_guardd("status", "-c", str(path)).stdout
    assert "(partial)" in text and "account-wide spend needs [openrouter] management_key" in text, text


def test_with_a_management_key_an_account_budget_counts_every_key_and_trips(run_guardd, tmp_path, fake):
    path = ran(run_guardd, configure(tmp_path, fake, management=True))
    window = daily(run_guardd, path)
    assert (window["spent"], window["partial"], window["partial_reason"]) == ("41.00", False, None), window
    result = run_guardd("check", "-c", str(path))
    assert result.returncode == 2 and "management_key" not in result.stdout, result.stdout


def test_a_budget_that_names_its_key_needs_no_management_key(run_guardd, tmp_path, fake):
    budget = ACCOUNT.replace("daily", 'match = { key = "…aaa1" }\ndaily')
    path = ran(run_guardd, configure(tmp_path, fake, budget))
    assert daily(run_guardd, path)["partial"] is False
    result = run_guardd("check", "-c", str(path))
    assert result.returncode == 0, result.stdout


def test_config_check_warns_that_an_account_budget_needs_a_management_key(run_guardd, tmp_path, fake):
    result = run_guardd("config", "check", "-c", str(configure(tmp_path, fake)))
    assert result.returncode == 0, result.stderr
    assert "budgets[0]: account-wide spend needs [openrouter] management_key" in result.stderr, result.stderr
    assert "…aaa1" in result.stderr, result.stderr


def test_config_check_says_nothing_of_it_with_a_management_key(run_guardd, tmp_path, fake):
    result = run_guardd("config", "check", "-c", str(configure(tmp_path, fake, management=True)))
    assert result.returncode == 0 and "management_key" not in result.stderr, result.stderr


# F12: a window guardd knows only in part


def test_check_warns_when_openrouter_gives_no_daily_figure_and_guardd_has_not_watched_the_whole_day(
    run_guardd, tmp_path, fake
):
    fake.state.key_shape_2025_09 = True  # /key without usage_daily: the day's figure is what guardd watched
    budget = ACCOUNT.replace("daily", 'match = { key = "…aaa1" }\ndaily')
    path = ran(run_guardd, configure(tmp_path, fake, budget))
    result = run_guardd("check", "-c", str(path))
    assert result.returncode == 1, result.stdout
    assert "account daily: a lower bound" in result.stdout and "no usage_daily figure" in result.stdout, result.stdout
    window = daily(run_guardd, path)
    assert window["partial"] is True and "no usage_daily figure" in window["partial_reason"], window


def test_check_warns_for_a_local_day_guardd_has_not_watched_from_its_start(run_guardd, tmp_path, fake):
    budget = ACCOUNT.replace("daily", 'match = { key = "…aaa1" }\ndaily')
    path = ran(run_guardd, configure(tmp_path, fake, budget, zone="Asia/Kolkata"))  # never the UTC day
    result = run_guardd("check", "-c", str(path))
    assert result.returncode == 1, result.stdout
    assert "no reading of key …aaa1 from before this window began" in result.stdout, result.stdout
    text = run_guardd("status", "-c", str(path)).stdout
    assert "no reading of key …aaa1 from before this window began" in text, text
