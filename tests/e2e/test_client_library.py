"""guardd.client against real parts: the OpenAI SDK through GuardedTransport to the stand-in OpenRouter."""

import json
import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from guardd.client import BudgetExceeded, GuardedTransport, KillSwitch, LedgerWriter
from tests.support.fake_openrouter import FakeOpenRouter

openai = pytest.importorskip("openai")
httpx2 = pytest.importorskip("httpx2")
KEY = "sk-or-v1-" + "a1" * 32


def switch_file(path: Path, tripped: bool, headroom: str = "1.00", age: timedelta = timedelta(seconds=1)) -> None:
    scope = {
        "tripped": tripped,
        "reason": "daily spend reached the limit",
        "until": "2026-11-22T00:00:00Z",
        "headroom": "0.00" if tripped else headroom,
    }
    beat = datetime.now(UTC) - age
    path.write_text(
        json.dumps(
            {
                "schema": 1,
                "heartbeat_at": beat.isoformat(),
                "expires_at": (beat + timedelta(minutes=5)).isoformat(),
                "tripped": tripped,
                "scopes": {"team": scope},
            }
        )
    )


@pytest.fixture
def fake():
    with FakeOpenRouter() as server:
        server.add_key(KEY, name="prod")
        yield server


@pytest.fixture
def client(tmp_path: Path, fake: FakeOpenRouter):
    made = []

    def make(**kw) -> "openai.OpenAI":
        guard = GuardedTransport(
            KillSwitch(tmp_path / "switch.json", budgets=["team"]),
            LedgerWriter(tmp_path / "usage.jsonl", labels={"team": "t"}),
            inner=httpx2.HTTPTransport(),
            **kw,
        )
        sdk = openai.OpenAI(
            api_key=KEY, base_url=fake.base_url, http_client=httpx2.Client(transport=guard), max_retries=0
        )
        made.append(sdk)
        return sdk

    yield make
    for sdk in made:
        sdk.close()


def test_a_tripped_switch_blocks_the_sdk_before_the_network(tmp_path, fake, client):
    switch_file(tmp_path / "switch.json", tripped=True)
    with pytest.raises(BudgetExceeded, match="over its limit"):
        client().chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert not [r for r in fake.state.requests if r[1] == "/chat/completions"]


def test_an_open_switch_lets_the_request_through_and_records_its_usage(tmp_path, fake, client):
    switch_file(tmp_path / "switch.json", tripped=False)
    reply = client().chat.completions.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hello there"}]
    )
    (line,) = (tmp_path / "usage.jsonl").read_text().splitlines()
    record = json.loads(line)
    assert record["id"] == reply.id and record["labels"] == {"team": "t"} and float(record["cost"]) > 0


def test_a_streamed_request_is_recorded_from_its_final_usage_chunk(tmp_path, fake, client):
    switch_file(tmp_path / "switch.json", tripped=False)
    stream = client().chat.completions.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = list(stream)
    (line,) = (tmp_path / "usage.jsonl").read_text().splitlines()
    assert json.loads(line)["id"] == chunks[-1].id and json.loads(line)["completion_tokens"] == 12


def test_an_estimate_larger_than_the_headroom_is_refused(tmp_path, fake, client):
    switch_file(tmp_path / "switch.json", tripped=False, headroom="0.01")
    with pytest.raises(BudgetExceeded, match="headroom"):
        client(estimate=0.05).chat.completions.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )


def test_a_heartbeat_older_than_max_age_blocks_only_when_failing_closed(tmp_path):
    switch_file(tmp_path / "switch.json", tripped=False, age=timedelta(minutes=2))
    KillSwitch(tmp_path / "switch.json", max_age=60).check()
    KillSwitch(tmp_path / "switch.json", fail_closed=True).check()  # within expires_at, no max_age: alive
    with pytest.raises(BudgetExceeded, match="not running"):
        KillSwitch(tmp_path / "switch.json", max_age=60, fail_closed=True).check()


def _write_many(path: str, worker: int) -> None:
    writer = LedgerWriter(path, labels={"worker": str(worker)})
    for i in range(500):
        writer.write({"id": f"w{worker}-{i}", "model": "m", "cost": "0.001", "labels": {"pad": "x" * (i % 300)}})


def test_ledger_writers_in_several_processes_never_interleave_lines(tmp_path):
    path = str(tmp_path / "usage.jsonl")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(path, w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    lines = Path(path).read_text().splitlines()
    assert len(lines) == 2000
    assert len({json.loads(line)["id"] for line in lines}) == 2000


def _only_line(tmp_path: Path) -> dict:
    (line,) = (tmp_path / "usage.jsonl").read_text().splitlines()
    return json.loads(line)


def test_a_successful_request_is_recorded_with_its_latency_status_and_key_preview(tmp_path, fake, client):
    switch_file(tmp_path / "switch.json", tripped=False)
    client().chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    record = _only_line(tmp_path)
    assert record["status"] == 200 and record["key"] == "…a1a1" and record["latency_ms"] > 0
    assert "ok" not in record and KEY not in json.dumps(record)


def test_a_streamed_request_is_recorded_with_its_latency_and_status(tmp_path, fake, client):
    switch_file(tmp_path / "switch.json", tripped=False)
    list(
        client().chat.completions.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    record = _only_line(tmp_path)
    assert record["status"] == 200 and record["key"] == "…a1a1" and record["latency_ms"] > 0


def test_a_rate_limited_request_is_recorded_as_not_ok_with_status_429(tmp_path, fake, client):
    switch_file(tmp_path / "switch.json", tripped=False)
    fake.fail("/chat/completions", status=429, message="Rate limit exceeded")
    with pytest.raises(openai.RateLimitError):
        client().chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    record = _only_line(tmp_path)
    assert (record["ok"], record["status"], record["error"]) == (False, 429, "Rate limit exceeded")
    assert record["model"] == "openai/gpt-4o-mini" and record["cost"] == 0 and record["key"] == "…a1a1"


def test_a_request_that_raises_is_recorded_with_the_exceptions_class_name(tmp_path):
    switch_file(tmp_path / "switch.json", tripped=False)
    guard = GuardedTransport(
        KillSwitch(tmp_path / "switch.json"), LedgerWriter(tmp_path / "usage.jsonl"), inner=httpx2.HTTPTransport()
    )
    closed_port = "http://127.0.0.1:9/api/v1"  # discard: nothing listens there
    with (
        openai.OpenAI(
            api_key=KEY, base_url=closed_port, http_client=httpx2.Client(transport=guard), max_retries=0
        ) as sdk,
        pytest.raises(openai.APIConnectionError),
    ):
        sdk.chat.completions.create(model="m/x", messages=[{"role": "user", "content": "hi"}])
    record = _only_line(tmp_path)
    assert record["ok"] is False and record["error"] == "ConnectError" and record["model"] == "m/x"
    assert record["latency_ms"] >= 0 and "status" not in record


def test_the_ledger_reads_the_clients_failure_lines_as_errors(tmp_path, fake, client):
    from guardd.core.batch import Parsed
    from guardd.core.money import parse_money
    from guardd.ledger.lines import Block
    from guardd.ledger.parse import LineParser

    switch_file(tmp_path / "switch.json", tripped=False)
    fake.fail("/chat/completions", status=503, message="upstream down")
    with pytest.raises(openai.InternalServerError):
        client().chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    data = (tmp_path / "usage.jsonl").read_bytes()
    parsed = Parsed(0, 0)
    LineParser("auto", {}, parse_money(1000)).parse_block(Block(0, data, len(data)), "f" * 20, "p", parsed)
    ((_k, _ts, _sid, ok, status, latency, error),) = parsed.health.values()
    assert (ok, status, error) == (0, 503, "upstream down") and latency > 0
