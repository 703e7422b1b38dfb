"""A key anywhere in a ledger line — a ``Bearer`` key, inside a label, an id, a bad line — is redacted before guardd
stores, logs, prints or sends it: no 20-character piece of it appears in any output, notification or state byte."""

from __future__ import annotations

import json
import random
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from tests.e2e.conftest import wait_for

_rng = random.Random(10)
OR_KEY = "sk-or-v1-" + "".join(_rng.choice("0123456789abcdef") for _ in range(64))
ANT_KEY = "sk-ant-api03-" + "".join(
    _rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop0123456789_-") for _ in range(80)
)
PLAIN_KEY = "sk-" + "".join(_rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop0123456789") for _ in range(48))
SECRETS = [OR_KEY, ANT_KEY, PLAIN_KEY]


def pieces(secret: str, size: int = 20) -> list[str]:
    return [secret[i : i + size] for i in range(len(secret) - size + 1)]


def leaks(text: str) -> list[str]:
    return [p for s in SECRETS for p in pieces(s) if p in text]


def ledger_lines(now: str) -> list[str]:
    lines = [
        {"ts": now, "model": "m", "cost": 2, "key": f"Bearer {OR_KEY}"},
        {"ts": now, "model": "m", "cost": 2, "key": "prod", "labels": {"team": "a", "note": f"token {ANT_KEY}"}},
        {"ts": now, "model": "m", "cost": 1, "labels": {PLAIN_KEY: "x", "auth": f"bearer {OR_KEY}"}},
        {"ts": now, "id": f"req {OR_KEY}", "model": f"m {PLAIN_KEY}", "provider": f"Bearer {ANT_KEY}", "cost": 1},
        {"ts": f"Bearer {OR_KEY}", "model": "m", "cost": 1},  # quarantined: the reason and excerpt hold the key
        {"ts": now, "model": "m", "cost": 1, "labels": {"team": {"nested": ANT_KEY}}},  # quarantined too
    ]
    return [json.dumps(line) for line in lines] + [f"not json {PLAIN_KEY} Authorization: Bearer {OR_KEY}"]


def test_keys_in_any_string_of_a_line_appear_nowhere(tmp_path: Path, run_guardd, webhook, daemon_factory):
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    (tmp_path / "ledgers").mkdir()
    (tmp_path / "ledgers" / "app.jsonl").write_text("\n".join(ledger_lines(now)) + "\n")
    cfg = tmp_path / "guardd.toml"
    cfg.write_text(f"""
[guardd]
state_dir = "state"
evaluate_every = "1s"
[[ledgers]]
path = "ledgers/*.jsonl"
[[budgets]]
name = "all"
daily = 1.00
forecast = false
[[notifiers]]
url = "{webhook.url}"
min_severity = "info"
""")
    daemon = daemon_factory(cfg)
    daemon.start()
    wait_for(lambda: webhook.bodies, timeout=30)
    running = {p.name: p.read_bytes() for p in (tmp_path / "state").rglob("*") if p.is_file()}  # the WAL too
    assert {"guardd.db", "guardd.db-wal"} <= set(running)
    assert daemon.stop() == 0
    outputs = [daemon.log.read_text(), json.dumps(webhook.bodies)]
    for args in (
        ["report", "--by", "key", "--json", "--since", "2026-01-01"],
        ["report", "--by", "key", "--since", "2026-01-01"],
        ["report", "--by", "model", "--json", "--since", "2026-01-01"],
        ["report", "--by", "label:note", "--json", "--since", "2026-01-01"],
        ["status", "--json"],
        ["history", "--json"],
    ):
        result = run_guardd(*args, "-c", str(cfg))
        outputs.append(result.stdout + result.stderr)
    stored = [*running.values(), *(p.read_bytes() for p in (tmp_path / "state").rglob("*") if p.is_file())]
    for text in outputs + [data.decode("latin-1") for data in stored]:
        assert leaks(text) == []
    groups = {g["group"]: g["events"] for g in json.loads(outputs[2])["rows"]}
    assert groups["…" + OR_KEY[-4:]] == 1  # the Bearer key is the same key, shown by its redacted tail
    with closing(sqlite3.connect(tmp_path / "state" / "guardd.db")) as db:
        reasons = [r for (r,) in db.execute("SELECT reason FROM quarantine ORDER BY offset")]
    assert "(key …" + OR_KEY[-4:] + ")" in json.dumps(webhook.bodies, ensure_ascii=False)  # top spend names it
    assert len(reasons) == 3  # the lines with a bad time, a nested label, and no JSON
