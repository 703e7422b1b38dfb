"""Benchmarks of the HTTP service (contract §8, issue 13). Not tests: figures for the README.

    python bench/http_service.py [--seconds 10] [--connections 32] [--pollers 500] [--budgets 100] [--trials 50]

Starts ``guardd run`` with ``[http]`` on 127.0.0.1 and measures, with a small asyncio HTTP/1.1 load generator of
its own (keep-alive connections, raw sockets: an HTTP client library would be the bottleneck on two cores):

1. ``GET /v1/killswitch``: requests/s over ``--connections`` connections, and latency p50/p99.
2. ``--pollers`` clients long-polling ``/v1/killswitch?wait=60`` with ``If-None-Match``: after a trip over HTTP,
   how long until each one has its answer (max and p99, from the moment the trip was sent).
3. ``GET /metrics`` with ``--budgets`` budgets: median and p99 latency.
4. Broadcast delivery → tripped switch: a Broadcast POST whose cost crosses a fresh budget, until the switch
   file says tripped (the answer is sent only after the evaluation has written it): p50/p99 over ``--trials``.
5. ``KillSwitch(url).check()`` on an unchanged document: µs per call.

The load generator runs on the same machine and takes a share of its cores: the figures are a floor. When ``wrk``
(Debian package ``wrk``) is installed, the first figure is also taken with it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from guardd.client import KillSwitch
from tests.http import payloads

TOKEN = "bench-token-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(workdir: Path, budgets: int, port: int) -> subprocess.Popen[bytes]:
    (workdir / "ledgers").mkdir()
    blocks = "".join(
        f'[[budgets]]\nname = "b{i}"\nmatch = {{ team = "t{i}" }}\ndaily = 1\nmonthly = 10\nforecast = false\n'
        for i in range(budgets)
    )
    (workdir / "guardd.toml").write_text(
        f'[guardd]\nstate_dir = "state"\n[[ledgers]]\npath = "ledgers/*.jsonl"\n{blocks}'
        f'[http]\nlisten = "127.0.0.1:{port}"\ntoken = "{TOKEN}"\n'
    )
    notify = str(workdir / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(notify)
    env = dict(os.environ, NOTIFY_SOCKET=notify)
    env.pop("GUARDD_HTTP__TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "guardd", "run", "-c", str(workdir / "guardd.toml")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sock.settimeout(60)
    while b"READY=1" not in sock.recv(4096):
        pass
    sock.close()
    return proc


class Conn:
    """One keep-alive HTTP/1.1 connection, just enough to send a request and read a Content-Length answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Conn:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> tuple[int, dict[str, str], bytes]:
        lines = [f"{method} {path} HTTP/1.1", "Host: bench"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        got = {}
        for line in header_lines:
            if ":" in line:
                k, v = line.split(":", 1)
                got[k.strip().lower()] = v.strip()
        length = int(got.get("content-length", "0"))
        content = await self.reader.readexactly(length) if length else b""
        return status, got, content

    def close(self) -> None:
        self.writer.close()


async def throughput(port: int, seconds: float, connections: int) -> None:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        conn = await Conn.open(port)
        try:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                status, _h, _b = await conn.request("GET", "/v1/killswitch")
                assert status == 200
                latencies.append(time.perf_counter() - t0)
        finally:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000
    p99 = latencies[int(len(latencies) * 0.99)] * 1000
    print(
        f"GET /v1/killswitch: {len(latencies) / elapsed:,.0f} req/s over {connections} connections, "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms ({len(latencies)} requests)"
    )


async def long_polls(port: int, pollers: int) -> None:
    first = await Conn.open(port)
    _s, headers, _b = await first.request("GET", "/v1/killswitch")
    etag = headers["etag"]
    conns = [await Conn.open(port) for _ in range(pollers)]
    arrived: list[float] = []

    async def poll(conn: Conn) -> None:
        status, _h, _b = await conn.request("GET", "/v1/killswitch?wait=60", {"If-None-Match": etag})
        arrived.append(time.perf_counter())
        assert status == 200, status

    tasks = [asyncio.create_task(poll(c)) for c in conns]
    await asyncio.sleep(2.0)  # let every request arrive and wait
    assert not arrived, "a poll was answered before the trip"
    body = json.dumps({"budget": None, "reason": "bench"}).encode()
    sent = time.perf_counter()
    status, _h, _b = await first.request(
        "POST", "/v1/killswitch/trip", {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}, body
    )
    assert status == 200
    await asyncio.gather(*tasks)
    delays = sorted((t - sent) * 1000 for t in arrived)
    print(
        f"{pollers} long-polls answered after a trip: max {delays[-1]:.0f} ms, "
        f"p99 {delays[int(len(delays) * 0.99)]:.0f} ms, p50 {delays[len(delays) // 2]:.0f} ms"
    )
    await first.request(
        "POST",
        "/v1/killswitch/release",
        {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        json.dumps({"budget": None, "reason": "bench"}).encode(),
    )
    for c in [first, *conns]:
        c.close()


async def metrics(port: int, budgets: int, runs: int = 50) -> None:
    conn = await Conn.open(port)
    times: list[float] = []
    for _ in range(runs):
        t0 = time.perf_counter()
        status, _h, content = await conn.request("GET", "/metrics")
        times.append((time.perf_counter() - t0) * 1000)
        assert status == 200
    conn.close()
    times.sort()
    series = content.count(b"\nguardd_budget_spend_usd{")
    print(
        f"GET /metrics with {budgets} budgets ({series} spend series): median {statistics.median(times):.1f} ms, "
        f"p99 {times[int(len(times) * 0.99)]:.1f} ms"
    )


async def broadcast_trips(port: int, workdir: Path, trials: int) -> None:
    conn = await Conn.open(port)
    switch = workdir / "state" / "killswitch.json"
    times: list[float] = []
    for i in range(trials):
        delivery = json.loads(payloads.captured(gen=f"gen-bench-{i}", cost=1.5, end_ns=time.time_ns()))
        attrs = delivery["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"]
        attrs.append(payloads.attr("trace.metadata.team", "stringValue", f"t{i}"))
        attrs[:] = [a for a in attrs if a["key"] != "trace.metadata.team" or a["value"]["stringValue"] == f"t{i}"]
        body = json.dumps(delivery).encode()
        t0 = time.perf_counter()
        status, _h, _b = await conn.request(
            "POST",
            "/v1/openrouter/broadcast",
            {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
            body,
        )
        # The answer comes after the evaluation wrote the file: it must say tripped by now.
        assert json.loads(switch.read_text())["scopes"][f"b{i}"]["tripped"], "answered before the switch was written"
        times.append((time.perf_counter() - t0) * 1000)
        assert status == 200
    conn.close()
    times.sort()
    print(
        f"Broadcast delivery -> switch file tripped: p50 {statistics.median(times):.0f} ms, "
        f"p99 {times[int(len(times) * 0.99)]:.0f} ms ({trials} trials)"
    )


def wrk(port: int, seconds: float, connections: int) -> None:
    """The same GET under wrk (Debian package wrk), a load generator in C, when it is installed."""
    import shutil

    if shutil.which("wrk") is None:
        print("wrk not installed (apt-get install -y wrk): skipped")
        return
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "--latency", f"http://127.0.0.1:{port}/v1/killswitch"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = next(line.split()[-1] for line in out.splitlines() if line.startswith("Requests/sec"))
    p99 = next(line.split()[-1] for line in out.splitlines() if line.strip().startswith("99%"))
    print(f"GET /v1/killswitch under wrk: {rate} req/s over {connections} connections, p99 {p99}")


def check_cost(port: int, budget: str) -> None:
    with KillSwitch(f"http://127.0.0.1:{port}", budgets=[budget], refresh=3600) as switch:
        switch.check()
        n = 200_000
        t0 = time.perf_counter()
        for _ in range(n):
            switch.check()
        per = (time.perf_counter() - t0) / n * 1e6
    print(f"KillSwitch(url).check() on an unchanged document: {per:.2f} µs per call")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--pollers", type=int, default=500)
    parser.add_argument("--budgets", type=int, default=100)
    parser.add_argument("--trials", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        port = free_port()
        proc = start(workdir, max(args.budgets, args.trials + 1), port)
        try:
            asyncio.run(throughput(port, args.seconds, args.connections))
            wrk(port, args.seconds, args.connections)
            asyncio.run(long_polls(port, args.pollers))
            asyncio.run(metrics(port, max(args.budgets, args.trials + 1)))
            asyncio.run(broadcast_trips(port, workdir, args.trials))
            check_cost(port, f"b{max(args.budgets, args.trials + 1) - 1}")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


if __name__ == "__main__":
    main()
