"""The unit files pass systemd's own checks (systemd-analyze is on these machines; skipped where it is not)."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ANALYZE = shutil.which("systemd-analyze")
pytestmark = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
GUARDD = str(Path(sys.executable).parent / "guardd")


def installed_copy(tmp_path: Path, name: str) -> Path:
    """The unit as it would be installed: ExecStart pointing at a guardd that exists on this machine."""
    text = (ROOT / "systemd" / name).read_text()
    text = text.replace("/opt/guardd/venv/bin/guardd", GUARDD).replace("%h/.local/bin/guardd", GUARDD)
    unit = tmp_path / ("guardd.service" if name == "guardd-user.service" else name)
    unit.write_text(text)
    return unit


@pytest.mark.parametrize("name", ["guardd.service", "guardd-user.service"])
def test_systemd_analyze_verify_prints_nothing(tmp_path, name):
    result = subprocess.run([ANALYZE, "verify", str(installed_copy(tmp_path, name))], capture_output=True, text=True)
    assert (result.stdout + result.stderr).strip() == ""


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
