"""A streamed completion that ends without its usage chunk still leaves one ledger line (review F16).

OpenRouter bills the tokens generated before a stream is cancelled, and sends ``usage`` only in its last chunk. The
client library reads the generation id from the first chunk, so a stream the caller stops, or one the network
cuts, is recorded by id with no cost: unpriced, never absent. A real HTTP server on 127.0.0.1 streams the SSE.
"""

import gc
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from guardd.client import GuardedTransport, KillSwitch, LedgerWriter

openai = pytest.importorskip("openai")
httpx2 = pytest.importorskip("httpx2")
KEY = "sk-or-v1-" + "b2" * 32
GEN = "gen-1764600000-abcdef"
MODEL = "anthropic/claude-3.5-sonnet"


def _chunk(**fields: Any) -> bytes:
    body = {"id": GEN, "object": "chat.completion.chunk", "created": 1764600000, "model": MODEL, **fields}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


FIRST = _chunk(provider="Anthropic", choices=[{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}])
MORE = _chunk(choices=[{"index": 0, "delta": {"content": "lo"}}])
USAGE = _chunk(
    choices=[],
    usage={"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11, "cost": 0.000057},
)


class _Stream(BaseHTTPRequestHandler):
    """Streams chunked SSE; ``server.mode`` says how the stream ends: "full", "hang" (until the client goes away)
    or "cut" (the connection closes before the usage chunk and the end of the chunked body)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        self._send(b": OPENROUTER PROCESSING\n\n" + FIRST)
        mode = self.server.mode  # type: ignore[attr-defined]
        if mode == "cut":
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if mode == "hang":
            try:
                while not self.server.done.wait(0.05):  # type: ignore[attr-defined]
                    self._send(MORE)
            except OSError:
                pass  # the client went away: the generation is cancelled
            self.close_connection = True
            return
        self._send(MORE + USAGE + b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Stream)
    httpd.daemon_threads = True
    httpd.mode = "full"  # type: ignore[attr-defined]
    httpd.done = threading.Event()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.done.set()  # type: ignore[attr-defined]
    httpd.shutdown()
    httpd.server_close()


def _sdk(tmp_path: Path, server: ThreadingHTTPServer) -> Any:
    guard = GuardedTransport(
        KillSwitch(tmp_path / "switch.json", fail_closed=False),
        LedgerWriter(tmp_path / "usage.jsonl", labels={"team": "t"}),
        inner=httpx2.HTTPTransport(),
    )
    base = f"http://127.0.0.1:{server.server_address[1]}/api/v1"
    return openai.OpenAI(api_key=KEY, base_url=base, http_client=httpx2.Client(transport=guard), max_retries=0)


def _lines(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "usage.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _stream(sdk: Any) -> Any:
    return sdk.chat.completions.create(
        model="openrouter/auto", messages=[{"role": "user", "content": "hi"}], stream=True
    )


def test_a_stream_the_caller_stops_is_recorded_once_by_id_without_cost(tmp_path, server):
    server.mode = "hang"
    with _sdk(tmp_path, server) as sdk:
        stream = _stream(sdk)
        first = next(iter(stream))
        stream.close()  # the user pressed Stop
        assert first.id == GEN
    (line,) = _lines(tmp_path)
    assert (line["id"], line["model"], line["key"], line["status"]) == (GEN, MODEL, "…b2b2", 200)
    assert line["labels"] == {"team": "t", "stream": "stopped"} and line["provider"] == "Anthropic"
    assert "cost" not in line and "prompt_tokens" not in line and "ok" not in line and line["latency_ms"] > 0


def test_a_stream_the_caller_drops_unclosed_is_recorded_when_collected(tmp_path, server):
    server.mode = "hang"
    with _sdk(tmp_path, server) as sdk:
        stream = _stream(sdk)
        next(iter(stream))
        del stream
        gc.collect()
        (line,) = _lines(tmp_path)
    assert line["id"] == GEN and line["labels"]["stream"] == "stopped" and "cost" not in line


def test_a_stream_cut_before_its_usage_is_recorded_as_failed_without_cost(tmp_path, server):
    server.mode = "cut"
    with _sdk(tmp_path, server) as sdk, pytest.raises(openai.APIConnectionError):
        list(_stream(sdk))
    (line,) = _lines(tmp_path)
    assert (line["id"], line["model"], line["ok"], line["error"]) == (GEN, MODEL, False, "RemoteProtocolError")
    assert line["labels"] == {"team": "t", "stream": "cut"} and "cost" not in line


def test_a_stream_read_to_its_end_is_recorded_once_from_its_usage(tmp_path, server):
    with _sdk(tmp_path, server) as sdk:
        stream = _stream(sdk)
        chunks = list(stream)
        stream.close()
        del stream
        gc.collect()
    (line,) = _lines(tmp_path)
    assert len(chunks) == 3 and line["id"] == GEN and line["cost"] == "0.000057" and line["completion_tokens"] == 2
    assert line["labels"] == {"team": "t"}


def test_the_ledger_counts_a_stopped_streams_line_as_unpriced(tmp_path, server):
    from guardd.core.batch import Parsed
    from guardd.core.money import parse_money
    from guardd.ledger.lines import Block
    from guardd.ledger.parse import LineParser

    server.mode = "hang"
    with _sdk(tmp_path, server) as sdk:
        stream = _stream(sdk)
        next(iter(stream))
        stream.close()
    data = (tmp_path / "usage.jsonl").read_bytes()
    parsed = Parsed(0, 0)
    LineParser("auto", {}, parse_money(1000)).parse_block(Block(0, data, len(data)), "f" * 20, "p", parsed)
    ((key, row),) = parsed.rows.items()
    assert key == "g:" + GEN and row[3] is None and key in parsed.tokens


async def test_an_async_stream_the_caller_stops_is_recorded_once_without_cost(tmp_path, server):
    from guardd.client import AsyncGuardedTransport

    server.mode = "hang"
    guard = AsyncGuardedTransport(
        KillSwitch(tmp_path / "switch.json"), LedgerWriter(tmp_path / "usage.jsonl"), inner=httpx2.AsyncHTTPTransport()
    )
    base = f"http://127.0.0.1:{server.server_address[1]}/api/v1"
    async with openai.AsyncOpenAI(
        api_key=KEY, base_url=base, http_client=httpx2.AsyncClient(transport=guard), max_retries=0
    ) as sdk:
        stream = await sdk.chat.completions.create(
            model="openrouter/auto", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        async for _first in stream:
            break
        await stream.close()
    (line,) = _lines(tmp_path)
    assert (line["id"], line["model"], line["labels"]) == (GEN, MODEL, {"stream": "stopped"}) and "cost" not in line
