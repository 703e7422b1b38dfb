"""The README's "Running as a service" commands work, apart from those that need root for user creation or systemd
as PID 1 (tagged ``# needs:``). They run with ``sudo`` dropped and a temporary root in place of /etc and /opt."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUARDD = str(Path(sys.executable).parent / "guardd")


def service_lines() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- service-commands -->\s*```bash\n(.*?)```", text, re.S)
    assert block, "the README lost its service-commands block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def service_commands() -> list[str]:
    return [line for line in service_lines() if "# needs:" not in line]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_readme_service_commands_run(tmp_path):
    etc, units = tmp_path / "etc" / "guardd", tmp_path / "etc" / "systemd" / "system"
    units.mkdir(parents=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GUARDD_")},
        "OPENROUTER_API_KEY": "sk-or-v1-" + "ab" * 32,
    }
    commands = service_commands()
    # `guardd check` is there too, but is UNKNOWN until the service runs (a dead guard is never OK)
    assert any("config check" in c for c in commands) and any("guardd check" in c for c in service_lines())
    for command in commands:
        line = command.replace("sudo ", "").replace("/opt/guardd/venv/bin/guardd", GUARDD)
        line = line.replace("/etc/systemd/system", str(units)).replace("/etc/guardd", str(etc))
        result = subprocess.run(["bash", "-c", line], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        assert "sk-or-v1-abab" not in result.stdout + result.stderr
        if "install -m 0644 systemd/guardd.service" in command:
            # the unit names /opt/guardd/venv; point it at this machine's install before verifying it
            unit = units / "guardd.service"
            unit.write_text(unit.read_text().replace("/opt/guardd/venv/bin/guardd", GUARDD))
    assert oct((etc / "guardd.toml").stat().st_mode & 0o777) == "0o640"
    assert (etc / "credentials" / "openrouter_api_key").stat().st_mode & 0o077 == 0
