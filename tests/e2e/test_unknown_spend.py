"""A budget whose OpenRouter figure is unknown (OpenRouter never answered) is shown unknown everywhere, never $0.

Real parts: the ``guardd`` command in a subprocess on the real config loader and SQLite, a stand-in OpenRouter
that is not listening (its port is closed), the switch file as written, the HTTP service for metrics and page.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from guardd.client import BudgetExceeded, KillSwitch
from tests.e2e.conftest import free_port, wait_for
from tests.http.conftest import serve

KEY = "sk-or-v1-" + "1a" * 32


def openrouter_section() -> str:
    """An ``[openrouter]`` section whose server never answers: nothing listens on its port."""
    return f'[openrouter]\napi_key = "{KEY}"\nbase_url = "http://127.0.0.1:{free_port()}/api/v1"\ntimeout = "1s"\n'


def budget(name: str, source: str, extra: str = "") -> str:
    return f'[[budgets]]\nname = "{name}"\nsource = "{source}"\ndaily = 10\nforecast = false\n{extra}'


def configure(tmp_path: Path, budgets: str) -> Path:
    (tmp_path / "logs").mkdir(exist_ok=True)
    path = tmp_path / "guardd.toml"
    path.write_text(
        f'[guardd]\nstate_dir = "state"\n{openrouter_section()}[[ledgers]]\npath = "logs/*.jsonl"\n{budgets}'
    )
    return path


def spend_in_ledger(tmp_path: Path, cost: str) -> None:
    line = {"ts": datetime.now(UTC).isoformat(), "id": "gen-1", "model": "m", "cost": cost}
    (tmp_path / "logs" / "app.jsonl").write_text(json.dumps(line) + "\n")


@pytest.fixture
def unknown(run_guardd, tmp_path):
    """One cycle of a guard with an OpenRouter budget ``or`` that OpenRouter never answered for."""
    path = configure(tmp_path, budget("or", "openrouter"))
    assert run_guardd("run", "--once", "-c", str(path)).returncode == 0
    return path


def window_of(run_guardd, path: Path, name: str) -> dict:
    doc = json.loads(run_guardd("status", "--json", "-c", str(path)).stdout)
    (shown,) = [b for b in doc["budgets"] if b["name"] == name]
    return shown["windows"][0]


def scope_of(path: Path, name: str) -> dict:
    return json.loads((path.parent / "state" / "killswitch.json").read_text())["scopes"][name]


def test_status_json_says_an_unknown_window_spend_is_unknown_not_zero(run_guardd, unknown):
    window = window_of(run_guardd, unknown, "or")
    assert (window["spent"], window["percent"], window["headroom"]) == (None, None, None), window
    assert window["unknown_sources"] == ["openrouter"]


def test_a_window_whose_spend_is_unknown_is_stale_not_ok(run_guardd, unknown):
    assert window_of(run_guardd, unknown, "or")["state"] == "stale"


def test_the_switch_offers_no_headroom_for_a_budget_whose_spend_is_unknown(unknown):
    scope = scope_of(unknown, "or")
    assert (scope["tripped"], scope["spent"], scope["headroom"]) == (False, None, None), scope
    assert scope["limit"] == "10.00"


def test_check_is_unknown_with_no_figure_in_perfdata(run_guardd, unknown):
    result = run_guardd("check", "-c", str(unknown))
    assert result.returncode == 3, result.stdout
    assert "'or_daily'=U;" in result.stdout and "'or_daily'=0" not in result.stdout, result.stdout


def test_status_for_people_says_unknown_instead_of_zero(run_guardd, unknown):
    (line,) = [ln for ln in run_guardd("status", "-c", str(unknown)).stdout.splitlines() if "daily" in ln]
    assert "unknown" in line and "$0.00" not in line and "stale" in line, line


def test_with_source_max_the_ledger_figure_is_a_lower_bound_that_says_openrouter_is_unknown(run_guardd, tmp_path):
    path = configure(tmp_path, budget("both", "max"))
    spend_in_ledger(tmp_path, "3")
    assert run_guardd("run", "--once", "-c", str(path)).returncode == 0
    window = window_of(run_guardd, path, "both")
    assert (window["spent"], window["partial"], window["unknown_sources"]) == ("3.00", True, ["openrouter"])
    assert (window["state"], window["headroom"]) == ("stale", None), window
    scope = scope_of(path, "both")
    assert (scope["tripped"], scope["spent"], scope["headroom"]) == (False, None, None), scope


def test_with_source_max_a_ledger_figure_past_the_trip_threshold_still_trips(run_guardd, tmp_path):
    path = configure(tmp_path, budget("both", "max"))
    spend_in_ledger(tmp_path, "12")
    assert run_guardd("run", "--once", "-c", str(path)).returncode == 0
    assert window_of(run_guardd, path, "both")["state"] == "tripped"
    assert scope_of(path, "both")["tripped"] is True


def test_a_ledger_budget_beside_an_unknown_one_keeps_its_known_figure(run_guardd, tmp_path):
    path = configure(tmp_path, budget("or", "openrouter") + budget("local", "ledger"))
    spend_in_ledger(tmp_path, "3")
    assert run_guardd("run", "--once", "-c", str(path)).returncode == 0
    window = window_of(run_guardd, path, "local")
    assert (window["spent"], window["state"], window["headroom"], window["unknown_sources"]) == (
        "3.00",
        "ok",
        "7.00",
        [],
    )


def test_metrics_have_no_spend_sample_for_an_unknown_window_and_pass_promtool(tmp_path):
    budgets = openrouter_section() + budget("or", "openrouter") + budget("local", "ledger")
    for served in serve(tmp_path, budgets=budgets):
        text = wait_for(lambda s=served: 'budget="or"' in (t := s.client.get("/metrics").text) and t)
        assert 'guardd_budget_spend_usd{budget="or"' not in text
        assert re.search(r'guardd_budget_spend_usd\{budget="local",window="daily"\} 0\.0', text)
        assert 'guardd_budget_limit_usd{budget="or",window="daily"} 10.0' in text
        assert 'guardd_budget_state{budget="or",state="stale"} 1.0' in text
        promtool = shutil.which("promtool")
        if promtool is not None:
            checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
            assert checked.returncode == 0 and not (checked.stdout + checked.stderr).strip(), checked.stderr


def test_the_status_page_says_unknown_instead_of_zero(tmp_path):
    budgets = openrouter_section() + budget("or", "openrouter")
    for served in serve(tmp_path, budgets=budgets):
        wait_for(lambda s=served: 'budget="or"' in s.client.get("/metrics").text)
        page = served.client.get("/")
        assert page.status_code == 200
        (card,) = re.findall(r'<div class="card budget" data-budget="or">.*?</svg>', page.text)
        assert "unknown" in card and "$0.00" not in card and "$None" not in card, card


def test_a_client_estimate_meets_no_headroom_for_an_unknown_budget_and_on_stale_open_lets_it_pass(unknown):
    KillSwitch(unknown.parent / "state" / "killswitch.json", budgets=["or"], fail_closed=True).check(estimate="50")


def test_with_on_stale_closed_a_client_is_refused_while_the_spend_is_unknown(run_guardd, tmp_path):
    path = configure(tmp_path, budget("or", "openrouter", 'on_stale = "closed"\n'))
    assert run_guardd("run", "--once", "-c", str(path)).returncode == 0
    with pytest.raises(BudgetExceeded, match="stale"):
        KillSwitch(tmp_path / "state" / "killswitch.json", budgets=["or"]).check()
