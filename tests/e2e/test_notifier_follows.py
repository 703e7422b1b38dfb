"""An alert waiting for a notifier follows it across a configuration change; one whose notifier is gone is dropped
loudly (finding F14): the log, the history, ``status`` and ``check`` say so — never a silent all-green."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

DEAD = "json://127.0.0.1:1/x"  # nothing listens on port 1


def _setup(tmp_path, notifiers: list[str], retry_after: str = "1s"):
    """A budget $6 over its $1 daily limit (alert only) and ``notifiers``; return the file and its rewriter."""
    now = datetime.now(UTC).isoformat()
    (tmp_path / "u.jsonl").write_text(json.dumps({"ts": now, "id": "a", "model": "m/a", "cost": "7.00"}) + "\n")
    cfg = tmp_path / "guardd.toml"

    def write(urls: list[str], daily: int = 1) -> None:
        cfg.write_text(
            '[guardd]\nstate_dir = "state"\n[[ledgers]]\npath = "u.jsonl"\n'
            f'[[budgets]]\nname = "quiet"\ndaily = {daily}\ntrip_at = false\nforecast = false\n'
            + "".join(f'[[notifiers]]\nurl = "{url}"\n' for url in urls)
            + f'[alerts]\nretry_after = "{retry_after}"\n'
        )

    write(notifiers)
    return cfg, write


def _critical(webhook) -> list[str]:
    return [t for t in webhook.titles() if "CRITICAL" in t and "quiet" in t]


def test_an_alert_waiting_for_a_corrected_notifier_url_is_delivered_to_the_corrected_url(run_guardd, tmp_path, webhook):
    cfg, write = _setup(tmp_path, [DEAD])
    first = run_guardd("run", "--once", "-c", str(cfg))
    assert first.returncode == 0 and "notification failed" in first.stderr
    write([webhook.url])  # the natural repair: the same notifier, its URL corrected
    time.sleep(1.5)  # the first retry is due (retry_after 1 s, jitter 0.8-1.2)
    second = run_guardd("run", "--once", "-c", str(cfg))
    assert second.returncode == 0, second.stderr
    assert len(_critical(webhook)) == 1  # was: given up, "the notifier is no longer configured", nothing sent
    doc = json.loads(run_guardd("status", "--json", "-c", str(cfg)).stdout)
    assert doc["outbox_pending"] == 0 and doc["dropped_alerts"] == []
    history = json.loads(run_guardd("history", "--json", "-c", str(cfg)).stdout)
    details = [h["detail"] for h in history if h["kind"] == "delivery"]
    assert any(
        d.startswith(f"re-routed from json://127.0.0.1:1/… to json://127.0.0.1:{webhook.port}/…") for d in details
    )
    assert any(d.startswith(f"delivered to json://127.0.0.1:{webhook.port}/…") for d in details)
    assert run_guardd("check", "-c", str(cfg)).returncode == 2  # still over its limit: CRITICAL, nothing else


def test_a_corrected_notifier_url_is_tried_at_once_not_at_the_old_urls_next_retry(run_guardd, tmp_path, webhook):
    cfg, write = _setup(tmp_path, [DEAD], retry_after="1h")  # as after a day of failures: the next try an hour away
    assert run_guardd("run", "--once", "-c", str(cfg)).returncode == 0
    write([webhook.url])
    assert run_guardd("run", "--once", "-c", str(cfg)).returncode == 0
    assert len(_critical(webhook)) == 1  # the repair takes effect now


def test_an_alert_whose_notifier_was_removed_is_dropped_loudly(run_guardd, tmp_path, webhook):
    cfg, write = _setup(tmp_path, [DEAD, webhook.url])
    assert run_guardd("run", "--once", "-c", str(cfg)).returncode == 0
    assert len(_critical(webhook)) == 1  # the working notifier had its copy
    write([webhook.url])  # the dead one removed: the live one, now first, must not get the same alert again
    time.sleep(1.5)
    second = run_guardd("run", "--once", "-c", str(cfg))
    assert second.returncode == 0, second.stderr
    assert len(_critical(webhook)) == 1
    said = "an alert for budget quiet was dropped: its notifier json://127.0.0.1:1/… was removed"
    logged = [line for line in second.stderr.splitlines() if said in line]
    assert logged and logged[0].split()[1] == "warning", second.stderr  # was: no log line at all
    doc = json.loads(run_guardd("status", "--json", "-c", str(cfg)).stdout)
    assert doc["outbox_pending"] == 0
    assert [(d["budget"], d["notifier"]) for d in doc["dropped_alerts"]] == [("quiet", "json://127.0.0.1:1/…")]
    assert said in run_guardd("status", "-c", str(cfg)).stdout
    history = json.loads(run_guardd("history", "--json", "-c", str(cfg)).stdout)
    gave_up = "gave up on json://127.0.0.1:1/…: its notifier was removed from the configuration"
    assert [h["budget"] for h in history if h["kind"] == "delivery" and h["detail"] == gave_up] == ["quiet"]
    check = run_guardd("check", "-c", str(cfg))
    assert check.returncode == 2 and said in check.stdout  # CRITICAL (over the limit) outranks; the drop is said
    write([webhook.url], daily=100)  # within its limit now: the drop alone is a WARNING
    check = run_guardd("check", "-c", str(cfg))
    assert check.returncode == 1 and said in check.stdout, check.stdout
