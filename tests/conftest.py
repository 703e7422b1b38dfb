from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The read-only commands keep validated configuration views in $XDG_CACHE_HOME/guardd (guardd.config.cache):
# the tests' own, not the home folder of whoever runs them.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="guardd-tests-cache-")
# The suite starts guardd in a subprocess hundreds of times: with PYTHONDONTWRITEBYTECODE set (as on these machines)
# each one compiled every guardd module it imported from source again, ~20 % of a short command's CPU. Python's
# writes of .pyc files are atomic, so the test processes may share them.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


@pytest.fixture
def run_guardd(tmp_path: Path):
    """Run the real ``guardd`` command in a subprocess; return the CompletedProcess."""

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("GUARDD_", "OPENROUTER_"))}
        full_env.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "guardd", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=full_env,
            timeout=120,
        )

    return run


pytest_plugins = ["tests.ci_policy", "tests.pg_fixture"]

from tests.e2e.conftest import smtp, webhook  # noqa: E402, F401 - real servers shared by every test folder
