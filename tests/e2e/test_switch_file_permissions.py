"""Under the shipped unit's settings (state folder 0750, UMask=0027) a client program run as another Unix user in
the switch file's group reads the kill-switch file, and a user outside that group cannot.

Needs root (to create the users, with useradd) and a system Python 3.11 the other users can run; skipped otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNUSER = shutil.which("runuser") or "runuser"
GROUP, READER, OUTSIDER = "guardd-t-llm", "guardd-t-reader", "guardd-t-outsider"
SYSTEM_PYTHON = next(
    (p for p in ("/usr/bin/python3.11", "/usr/bin/python3.12", "/usr/bin/python3") if os.path.exists(p)), None
)

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="creating a second Unix user needs root"),
    pytest.mark.skipif(shutil.which("useradd") is None or shutil.which("runuser") is None, reason="no useradd/runuser"),
    pytest.mark.skipif(SYSTEM_PYTHON is None, reason="no system Python that another user can run"),
]

CLIENT = """
import sys
from guardd.client import BudgetExceeded, KillSwitch
try:
    KillSwitch(sys.argv[1], fail_closed=True).check()
except BudgetExceeded as exc:
    print("REFUSED", exc)
    raise SystemExit(1)
print("ALLOWED")
"""


ALREADY_EXISTS = 9  # groupadd's and useradd's exit code when another test process created it first (pytest -n)


def ensure_users() -> None:
    if subprocess.run(["getent", "group", GROUP], capture_output=True).returncode != 0:
        made = subprocess.run(["groupadd", "--system", GROUP], capture_output=True, text=True)
        assert made.returncode in (0, ALREADY_EXISTS), made.stderr
    for user, groups in ((READER, [GROUP]), (OUTSIDER, [])):
        if subprocess.run(["id", user], capture_output=True).returncode != 0:
            extra = ["-G", ",".join(groups)] if groups else []
            made = subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", *extra, user],
                capture_output=True,
                text=True,
            )
            assert made.returncode in (0, ALREADY_EXISTS), made.stderr


def read_as(user: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RUNUSER, "-u", user, "--", SYSTEM_PYTHON, "-c", CLIENT, str(path)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        cwd="/",
        timeout=60,
    )


@pytest.fixture
def run_dir():
    """A folder like /run/guardd: 0755 and outside root's private /tmp/pytest-of-root."""
    folder = Path("/tmp") / f"guardd-perm-{uuid.uuid4().hex[:8]}"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def test_a_client_in_the_switch_group_reads_the_file_under_the_units_umask_and_others_cannot(tmp_path, run_dir):
    ensure_users()
    state = tmp_path / "state"
    state.mkdir(mode=0o750)
    switch = run_dir / "killswitch.json"
    config = tmp_path / "guardd.toml"
    config.write_text(
        f'[guardd]\nstate_dir = "{state}"\n[[budgets]]\nname = "b"\ndaily = 5\n'
        f'[killswitch]\npath = "{switch}"\ngroup = "{GROUP}"\nmode = "0640"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUARDD_", "OPENROUTER_"))}
    ran = subprocess.run(
        [sys.executable, "-m", "guardd", "run", "--once", "-c", str(config)],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=lambda: os.umask(0o027),  # the unit's UMask=0027
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    st = switch.stat()
    assert (st.st_mode & 0o777, st.st_gid) == (
        0o640,
        int(subprocess.check_output(["getent", "group", GROUP]).split(b":")[2]),
    )
    reader = read_as(READER, switch)
    assert reader.returncode == 0 and "ALLOWED" in reader.stdout, reader.stdout + reader.stderr
    outsider = read_as(OUTSIDER, switch)
    assert outsider.returncode == 1 and "Permission denied" in outsider.stdout, outsider.stdout + outsider.stderr
