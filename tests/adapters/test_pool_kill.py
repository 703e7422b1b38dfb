"""A pool stopped at once (``Pool.close(kill=True)``, the daemon's SIGTERM during a catch-up) lets its process exit,
even when a worker was killed half-way through sending a result back.

The half-sent result used to leave the pool's own thread blocked for ever on the rest of the message, and the
interpreter hung at exit joining that thread (seen as a daemon that never stopped after SIGTERM, about one run in six
of the backlog test). The worker here writes half a message on purpose, so the case is not left to timing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import time
    from guardd.ledger.pool import Pool
    import tests.adapters.test_pool_kill as here

    if __name__ == "__main__":
        pool = Pool(workers=1)
        pool.start()
        pool._executor.submit(here.half_sent_result)
        time.sleep(1.0)  # the worker is now asleep after half a message
        pool.close(kill=True)
        print("closed", flush=True)
    """
)


def half_sent_result() -> None:  # runs in a worker process
    """Write the start of a 1 MiB result message to the pool's result pipe, then stop sending, as a worker killed
    mid-send leaves it."""
    import struct
    import time

    frame = sys._getframe()
    while frame is not None and "result_queue" not in frame.f_locals:
        frame = frame.f_back
    assert frame is not None, "not called from a ProcessPoolExecutor worker"
    queue = frame.f_locals["result_queue"]
    os.write(queue._writer.fileno(), struct.pack("!i", 1 << 20) + b"x" * 100)
    time.sleep(60)


def test_a_pool_killed_while_a_worker_is_half_way_through_a_result_lets_the_process_exit(tmp_path):
    script = tmp_path / "kill_pool.py"
    script.write_text(SCRIPT)
    try:
        done = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=15, cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        )  # fmt: skip
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"the process hung at exit after Pool.close(kill=True): {e.stdout!r}") from None
    assert done.stdout == "closed\n", done.stderr
    assert done.returncode == 0, done.stderr
