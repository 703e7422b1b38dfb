"""The README's first command shows a warning alert and a status with spend, on any date."""

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from guardd.demo import demo_lines

ROOT = Path(__file__).resolve().parents[2]


def readme_first_command() -> str:
    """The first indented command of the README's set-up section, minus the venv and pip steps."""
    section = (ROOT / "README.md").read_text().split("## Set-up on a fresh machine", 1)[1]
    command = next(line.strip() for line in section.splitlines() if line.startswith("    python3 -m venv"))
    steps = [s for s in command.split(" && ") if not s.startswith(("python3 -m venv", ".venv/bin/pip"))]
    tools = {".venv/bin/guardd": f"{sys.executable} -m guardd", ".venv/bin/python": sys.executable}
    return " && ".join(re.sub(r"^\.venv/bin/\w+", lambda m: tools[m.group(0)], s) for s in steps)


def test_the_readme_demo_command_prints_a_warning_and_a_status_with_spend(tmp_path):
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns(".guardd", "usage.jsonl"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUARDD_", "OPENROUTER_"))}
    result = subprocess.run(
        ["bash", "-c", readme_first_command()], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"warning .*team-search crossed 25% of monthly", result.stderr), result.stderr
    assert re.search(r"team-search .*WARNING", result.stdout) and "$0.00 of" not in result.stdout, result.stdout


def test_running_the_demo_twice_counts_its_spend_once(tmp_path):
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns(".guardd", "usage.jsonl"))
    for _ in range(2):
        subprocess.run(
            ["bash", "-c", readme_first_command()], cwd=tmp_path, capture_output=True, check=True, timeout=120
        )
    cfg = str(tmp_path / "examples" / "demo.toml")
    status = subprocess.run(
        [sys.executable, "-m", "guardd", "status", "--json", "-c", cfg], capture_output=True, text=True, cwd=tmp_path
    )
    monthly = json.loads(status.stdout)["budgets"][1]["windows"][0]
    assert Decimal("5") < Decimal(monthly["spent"]) < Decimal("12")


def _spend(lines: list[str], since: datetime, team: str | None = None) -> Decimal:
    total = Decimal(0)
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        ts = datetime.fromisoformat(event["ts"])
        if Decimal(str(event["cost"])) > 0 and ts >= since and (team is None or event["labels"]["team"] == team):
            total += Decimal(event["cost"])
    return total


@pytest.mark.parametrize(
    "now",
    [
        "2026-03-01T00:00:00Z",
        "2026-03-01T00:00:40Z",
        "2026-02-28T23:59:59Z",
        "2026-07-15T12:00:00Z",
        "2027-01-31T06:00:00Z",
    ],
)
def test_the_demo_ledger_warns_and_does_not_trip_whatever_the_date(now):
    moment = datetime.fromisoformat(now)
    lines = demo_lines(moment)
    assert all(datetime.fromisoformat(json.loads(line)["ts"]) <= moment for line in lines if line.startswith("{"))
    month = moment.replace(day=1, hour=0, minute=0, second=0)
    day = moment.replace(hour=0, minute=0, second=0)
    assert Decimal("5") < _spend(lines, month, "search") < Decimal("20")  # past 25% of $20, short of the trip
    assert Decimal("5") < _spend(lines, day) < Decimal("10")  # past 50% of $10 a day, short of the trip
    assert _spend(lines, month - timedelta(days=40)) == _spend(lines, month)  # nothing in an earlier month
