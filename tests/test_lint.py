"""ruff and mypy (strict for guardd/) are part of the suite, so CI keeps the code clean."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "guardd", "tests", "bench"],
        ["ruff", "format", "--check", "guardd", "tests", "bench"],
        ["mypy", "guardd"],
    ],
    ids=["ruff-check", "ruff-format", "mypy-strict"],
)
def test_the_code_is_clean(command):
    tool = BIN / command[0] if (BIN / command[0]).exists() else shutil.which(command[0])
    if tool is None:
        pytest.skip(f"{command[0]} is not installed (pip install -e '.[test]')")
    result = subprocess.run([str(tool), *command[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
