"""The unit files pass systemd's own checks (systemd-analyze is on these machines; skipped where it is not), and put
the kill-switch file where client programs in the ledger group can read it."""

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
GUARDD = str(Path(sys.executable).parent / "guardd")


def installed_copy(tmp_path: Path, name: str) -> Path:
    """The unit as it would be installed: ExecStart pointing at a guardd that exists on this machine."""
    text = (ROOT / "systemd" / name).read_text()
    text = text.replace("/opt/guardd/venv/bin/guardd", GUARDD).replace("%h/.local/bin/guardd", GUARDD)
    unit = tmp_path / ("guardd.service" if name == "guardd-user.service" else name)
    unit.write_text(text)
    return unit


@needs_analyze
@pytest.mark.parametrize("name", ["guardd.service", "guardd-user.service"])
def test_systemd_analyze_verify_prints_nothing(tmp_path, name):
    result = subprocess.run([ANALYZE, "verify", str(installed_copy(tmp_path, name))], capture_output=True, text=True)
    assert (result.stdout + result.stderr).strip() == ""


@needs_analyze
def test_the_system_unit_exposure_is_at_most_1_5(tmp_path):
    unit = installed_copy(tmp_path, "guardd.service")
    result = subprocess.run([ANALYZE, "security", "--offline=true", str(unit)], capture_output=True, text=True)
    match = re.search(r"Overall exposure level for guardd.service: ([0-9.]+)", result.stdout + result.stderr)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 1.5


def test_every_hardening_directive_is_commented():
    lines = (ROOT / "systemd" / "guardd.service").read_text().splitlines()
    uncommented = []
    for i, line in enumerate(lines):
        if "=" in line and not line.startswith("#") and i > 0:
            block = lines[max(0, i - 6) : i]
            if not any(b.startswith("#") for b in block):
                uncommented.append(line)
    assert uncommented == []


def directives(name: str) -> list[tuple[str, str]]:
    lines = (ROOT / "systemd" / name).read_text().splitlines()
    return [tuple(line.split("=", 1)) for line in lines if "=" in line and not line.startswith("#")]  # type: ignore[misc]


def test_the_unit_and_the_example_config_put_the_switch_file_where_the_ledger_group_reads_it():
    unit = directives("guardd.service")
    assert ("RuntimeDirectory", "guardd") in unit and ("RuntimeDirectoryMode", "0755") in unit
    assert ("SupplementaryGroups", "llm") in unit and ("StateDirectoryMode", "0750") in unit
    switch = tomllib.loads((ROOT / "config.example.toml").read_text())["killswitch"]
    assert switch["path"].startswith("/run/guardd/") and (switch["group"], switch["mode"]) == ("llm", "0640")
    sysusers = (ROOT / "systemd" / "guardd.sysusers.conf").read_text().split("\n")
    assert "m guardd  llm" in sysusers and any(line.startswith("g llm") for line in sysusers)
