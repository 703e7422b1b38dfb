"""CI runs what the README tells a new user to run, and refuses to skip."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_test_command() -> str:
    lines = (ROOT / "README.md").read_text().splitlines()
    return next(
        line.strip() for line in lines if line.strip().startswith("bash tools/system-deps") and "pytest" in line
    )


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _readme_test_command() in [line.strip() for line in ci]


def test_a_skipped_test_fails_under_ci(tmp_path):
    (tmp_path / "test_skips.py").write_text("import pytest\n\ndef test_x():\n    pytest.skip('no server here')\n")
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.ci_policy"]\n')
    env = {**os.environ, "CI": "true", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout
    assert "skipped under CI=true" in result.stdout and "no server here" in result.stdout
