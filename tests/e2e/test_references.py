"""References that lead nowhere are errors (contract §1, §4): durations carry a unit, notify tags exist, dates parse."""

import json
from pathlib import Path

import pytest


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "guardd.toml"
    path.write_text("[guardd]\nstate_dir = 'state'\n" + body)
    return path


BUDGET = "[[budgets]]\nname = 'b'\ndaily = 5\n"


def test_a_duration_without_a_unit_in_the_file_exits_78_naming_the_key(run_guardd, tmp_path):
    cfg = write_config(tmp_path, "[alerts]\nrepeat_every = 4\n")
    result = run_guardd("status", "-c", str(cfg))
    assert result.returncode == 78
    assert "alerts.repeat_every" in result.stderr and "unit" in result.stderr


def test_a_quoted_number_without_a_unit_is_refused_too(run_guardd, tmp_path):
    cfg = write_config(tmp_path, "[openrouter]\npoll_every = '60'\n")
    result = run_guardd("config", "check", "-c", str(cfg))
    assert result.returncode == 78 and "openrouter.poll_every" in result.stderr


def test_zero_still_means_never_for_repeat_every(run_guardd, tmp_path):
    cfg = write_config(tmp_path, "[alerts]\nrepeat_every = '0'\n")
    assert run_guardd("config", "check", "-c", str(cfg)).returncode == 0


def test_a_notify_tag_that_no_notifier_carries_exits_78(run_guardd, tmp_path):
    body = BUDGET + "notify = ['opps']\n[[notifiers]]\nurl = 'json://127.0.0.1:9/x'\ntags = ['ops']\n"
    result = run_guardd("config", "check", "-c", str(write_config(tmp_path, body)))
    assert result.returncode == 78
    assert "budgets[0].notify" in result.stderr and "'opps'" in result.stderr


@pytest.mark.parametrize("value", ["forever", "5", "-1h"])
def test_silence_for_a_bad_duration_is_a_one_line_usage_error(run_guardd, tmp_path, value):
    cfg = write_config(tmp_path, BUDGET)
    result = run_guardd("silence", "add", "--budget", "b", "--for", value, "-c", str(cfg))
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_killswitch_trip_for_forever_is_a_one_line_usage_error(run_guardd, tmp_path):
    cfg = write_config(tmp_path, BUDGET)
    result = run_guardd("killswitch", "trip", "--budget", "b", "--for", "forever", "-c", str(cfg))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "--for" in result.stderr


@pytest.mark.parametrize("value", ["today", "yesterday", "7d", "12h", "30m"])
def test_report_takes_relative_dates(run_guardd, tmp_path, value):
    cfg = write_config(tmp_path, "")
    result = run_guardd("report", "--json", "--since", value, "-c", str(cfg))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["since"]


def test_a_bad_date_is_a_one_line_usage_error(run_guardd, tmp_path):
    cfg = write_config(tmp_path, "")
    result = run_guardd("history", "--since", "last tuesday", "-c", str(cfg))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
