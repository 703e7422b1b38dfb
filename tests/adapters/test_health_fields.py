"""Contract §10: the health fields of a ledger line (latency_ms, status, error, ok) reach the store."""

from __future__ import annotations

import json

from guardd.core.batch import Parsed
from guardd.core.money import parse_money
from guardd.ledger.lines import Block
from guardd.ledger.parse import LineParser
from guardd.store.sqlite.db import Store
from guardd.store.sqlite.events import EventStore

TS = "2026-11-21T10:00:00Z"


def parse(*objs: dict, fmt: str = "auto") -> Parsed:
    data = b"".join(json.dumps(o).encode() + b"\n" for o in objs)
    parser = LineParser(fmt, {}, parse_money(1000))
    out = Parsed(0, 0)
    parser.parse_block(Block(0, data, len(data)), "f" * 20, "p", out)
    parser.finish(out)
    return out


def facts(parsed: Parsed, gen_id: str) -> tuple:
    _k, _ts, _sid, ok, status, latency, error = parsed.health["g:" + gen_id]
    return ok, status, latency, error


def test_a_status_of_400_or_more_makes_a_line_not_ok():
    assert facts(parse({"ts": TS, "id": "a", "status": 503}), "a") == (0, 503, None, None)


def test_a_status_below_400_makes_a_line_ok():
    assert facts(parse({"ts": TS, "id": "a", "status": 200, "latency_ms": 850}), "a") == (1, 200, 850.0, None)


def test_an_explicit_ok_wins_over_the_status():
    assert facts(parse({"ts": TS, "id": "a", "status": 500, "ok": True}), "a")[0] == 1


def test_ok_false_alone_is_stored_as_an_error():
    assert facts(parse({"ts": TS, "id": "a", "ok": False, "error": "APITimeoutError"}), "a") == (
        0,
        None,
        None,
        "APITimeoutError",
    )


def test_a_line_that_says_nothing_about_health_stores_no_health_facts():
    assert parse({"ts": TS, "id": "a", "cost": 1, "ok": True}).health == {}


def test_a_secret_in_an_error_text_is_stored_redacted():
    secret = "sk-or-v1-" + "cd" * 32
    error = facts(parse({"ts": TS, "id": "a", "ok": False, "error": f"bad key {secret}"}), "a")[3]
    assert secret not in error and "…cdcd" in error


def test_an_unusable_latency_is_dropped_and_the_spend_still_counts():
    parsed = parse({"ts": TS, "id": "a", "cost": "0.5", "latency_ms": -4, "status": 200})
    assert parsed.rows["g:a"][3] == parse_money("0.5")
    assert facts(parsed, "a") == (1, 200, None, None)


def test_the_record_forms_performance_maps_to_latency_and_ok():
    record = {
        "sessionId": "s",
        "model": "m",
        "usage": {"promptTokens": 1, "completionTokens": 2, "totalCost": 0.1},
        "performance": {"latency": 1234, "timestamp": 1795255200000, "success": False},
        "metadata": {"generationId": "r1"},
    }
    assert facts(parse(record), "r1") == (0, None, 1234.0, None)


def test_an_openrouter_response_is_ok():
    response = {"id": "gen-1", "model": "m", "created": 1795255200, "usage": {"cost": 0.5, "prompt_tokens": 1}}
    assert parse(response).health == {}


async def test_the_last_line_of_an_id_decides_its_health_facts_in_the_store(tmp_path):
    async with Store.open(tmp_path / "guardd.db") as store:
        events = EventStore(store)
        await events.write_batch(parse({"ts": TS, "id": "a", "cost": 1, "status": 429}))
        await events.write_batch(parse({"ts": TS, "id": "a", "cost": 1, "ok": True}))
        await events.write_batch(parse({"ts": TS, "id": "b", "cost": 1, "status": 502, "latency_ms": 3.5}))
        rows = await store.fetchall("SELECT k, ok, status, latency_ms FROM health ORDER BY k")
    assert [tuple(r) for r in rows] == [("g:b", 0, 502, 3.5)]


async def test_a_schema_2_database_migrates_keeping_its_rollups(tmp_path, monkeypatch):
    from guardd.store.sqlite import db as store_module

    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 2)
    async with Store.open(tmp_path / "guardd.db") as old:
        await old.conn.execute("INSERT INTO rollups VALUES (0, 10, 7, 500, 2, 0)")
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 3)
    async with Store.open(tmp_path / "guardd.db") as store:
        rows = await store.fetchall("SELECT cost, events, prompt_tokens, cached_tokens FROM rollups")
        assert [tuple(r) for r in rows] == [(500, 2, 0, 0)]
        assert await store.fetchall("SELECT * FROM health") == []
        assert (await store.fetchone("PRAGMA user_version"))[0] == 3
