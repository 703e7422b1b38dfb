"""A push while the state cannot be written (a real full disk: a small tmpfs as state_dir) is refused with 503, the
reason and Retry-After — a known, expected failure the sender should retry — and one log line, no traceback."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.e2e.test_full_disk import fill, small_state_dir  # noqa: F401 - the fixture: a real full disk
from tests.http import payloads
from tests.http.conftest import serve


def test_a_push_to_a_full_disk_is_refused_with_503_and_said_once_then_accepted_when_space_returns(
    tmp_path: Path,
    small_state_dir: Path,  # noqa: F811 - the fixture imported above
):
    for served in serve(tmp_path):
        now = datetime.now(UTC).replace(microsecond=0).isoformat()
        lines = "".join(
            json.dumps({"ts": now, "id": f"p{i}", "model": "m", "cost": "0.01", "labels": {"pad": "x" * 2000}}) + "\n"
            for i in range(200)
        )
        ndjson = {"content-type": "application/x-ndjson"}
        filler = fill(small_state_dir)
        answer = served.post("/v1/events", content=lines, headers=ndjson)
        assert answer.status_code == 503, answer.text  # was: 500 "internal error; see guardd's log"
        assert "full" in answer.json()["error"] and int(answer.headers["retry-after"]) > 0
        gen = "gen-full-disk-1"
        answer = served.post("/v1/openrouter/broadcast", content=payloads.official_example(gen, time.time_ns()))
        assert answer.status_code == 503, answer.text
        assert "full" in answer.json()["error"] and int(answer.headers["retry-after"]) > 0
        log = served.daemon.log.read_text()
        assert "Traceback" not in log and "Exception in ASGI application" not in log, log
        said = [line for line in log.splitlines() if "POST /v1/" in line]
        assert len(said) == 2 and all("503" in line and "full" in line for line in said), said
        filler.unlink()
        answer = served.post("/v1/events", content=lines, headers=ndjson)
        assert answer.status_code == 200 and answer.json()["stored"] == 200, answer.text
