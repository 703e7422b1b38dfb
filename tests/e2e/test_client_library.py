"""guardd.client against real parts: the OpenAI SDK through GuardedTransport to the stand-in OpenRouter."""

import json
import multiprocessing
from pathlib import Path

import pytest

from guardd.client import BudgetExceeded, GuardedTransport, KillSwitch, LedgerWriter
from guardd.testing.fake_openrouter import FakeOpenRouter

openai = pytest.importorskip("openai")
httpx2 = pytest.importorskip("httpx2")
KEY = "sk-or-v1-" + "a1" * 32


def switch_file(path: Path, tripped: bool, headroom: str = "1.00") -> None:
    scope = {
        "tripped": tripped,
        "reason": "daily spend reached the limit",
        "until": "2026-11-22T00:00:00Z",
        "headroom": "0.00" if tripped else headroom,
    }
    path.write_text(
        json.dumps({"schema": 1, "heartbeat_at": "2026-11-21T10:00:00Z", "tripped": tripped, "scopes": {"team": scope}})
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


def test_a_stale_heartbeat_blocks_only_when_failing_closed(tmp_path):
    switch_file(tmp_path / "switch.json", tripped=False)
    KillSwitch(tmp_path / "switch.json", max_age=60).check()
    with pytest.raises(BudgetExceeded, match="heartbeat"):
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
