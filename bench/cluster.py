"""Issue 12's numbers: several guardd instances on this machine sharing one PostgreSQL database.

    python bench/cluster.py ingest [--instances 3] [--lines 1000000] [--shape steady] [--runs 5]
    python bench/cluster.py status [--events 10000000] [--series 200] [--runs 5]
    python bench/cluster.py trip [--instances 3] [--trials 30] [--failovers 3]

Every run gets a fresh database on the server of ``--url`` (default ``$GUARDD_TEST_PG_URL`` or
``postgresql://postgres@127.0.0.1:5432/test``), dropped afterwards. Each subcommand prints its runs, their median,
the machine's load average, and where the CPU went, because on a shared 2-core machine wall-clock rates say more
about the other tenants than about guardd: CPU per line does not.

``ingest``: writes ``--instances`` seeded ledgers (``bench/genledger.py``, ``--lines`` in all, distinct ids), then
starts one process per instance that reads its ledger with guardd's parser (``read_batch``, the batch size of
``guardd ingest``) and stores every batch with its checkpoint through ``PgEventStore.write_batch`` — at once.
Prints aggregate lines per second over the wall time of all of them, checks that the stored total equals the
ledgers' exact Decimal total, and splits the CPU: the instances' parsing, their writing (building the COPY text,
the driver), and the instances' PostgreSQL backends (not the WAL writer nor the checkpointer), in µs per line,
with the rate those would allow on two otherwise idle cores.

``status``: builds ``--events`` events over the last 90 days across ``--series`` series in SQL, with the hour and
day rollups guardd keeps; then times what ``guardd status`` asks of the store — the daily, weekly and monthly
windows in Europe/Berlin and a 10-minute rolling window, each summed per series once — on a freshly opened store.
Then times the whole ``guardd status --json`` command on that store (6 budgets, as ``bench/status.py``), or says
why it could not run. ``--keep DB`` builds into database ``DB`` once and reuses it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
DEFAULT_URL = os.environ.get("GUARDD_TEST_PG_URL") or "postgresql://postgres@127.0.0.1:5432/test"
TICK = os.sysconf("SC_CLK_TCK")
KEY = "'g:' || i"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=DEFAULT_URL)
    sub = ap.add_subparsers(dest="what", required=True)
    ingest = sub.add_parser("ingest")
    ingest.add_argument("--instances", type=int, default=3)
    ingest.add_argument("--lines", type=int, default=1_000_000)
    ingest.add_argument("--shape", default="steady")
    ingest.add_argument("--runs", type=int, default=5)
    status = sub.add_parser("status")
    status.add_argument("--events", type=int, default=10_000_000)
    status.add_argument("--series", type=int, default=200)
    status.add_argument("--runs", type=int, default=5)
    status.add_argument("--keep", metavar="DB", help="build into database DB (once) and keep it for later runs")
    trip = sub.add_parser("trip")
    trip.add_argument("--instances", type=int, default=3)
    trip.add_argument("--trials", type=int, default=30)
    trip.add_argument("--failovers", type=int, default=3)
    worker = sub.add_parser("worker")  # one instance of `ingest` (internal)
    worker.add_argument("db")
    worker.add_argument("instance")
    worker.add_argument("ledger")
    args = ap.parse_args()
    if args.what == "worker":
        asyncio.run(ingest_worker(args.db, args.instance, args.ledger))
    elif args.what == "ingest":
        run_ingest(args)
    elif args.what == "trip":
        run_trip(args)
    else:
        run_status(args)


# ---- shared ---------------------------------------------------------------------------------------------------
@contextmanager
def fresh_database(server: str, prefix: str = "guardd_bench_") -> Iterator[str]:
    """Yield the URL of a new database on ``server``'s host named ``prefix`` + random; drop it afterwards."""
    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.split("?", 1)[0].rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def backend_cpu(pids: list[int]) -> float:
    """CPU seconds used so far by the PostgreSQL backends ``pids`` (on this machine)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


# ---- ingest ---------------------------------------------------------------------------------------------------
def make_ledgers(folder: str, instances: int, lines: int, shape: str) -> tuple[list[Path], Decimal]:
    """Write one seeded ledger per instance into ``folder`` (``lines`` in all); return them and their exact total."""
    ledgers, total = [], Decimal(0)
    for i in range(instances):
        path = Path(folder) / f"host-{i}.jsonl"
        cmd = [sys.executable, str(HERE / "genledger.py"), str(path), "--lines", str(lines // instances)]
        gen = subprocess.run(
            [*cmd, "--seed", str(100 + i), "--shape", shape], capture_output=True, text=True, check=True
        )
        total += Decimal(gen.stderr.strip().rsplit("total=", 1)[1].split()[0])
        ledgers.append(path)
    return ledgers, total


def run_ingest(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ledgers, total = make_ledgers(tmp, args.instances, args.lines, args.shape)
        lines = (args.lines // args.instances) * args.instances
        rates = []
        for run in range(1, args.runs + 1):
            rates.append(ingest_once(args.url, ledgers, total, lines, run))
    print(
        f"aggregate ingest: median {statistics.median(rates):,.0f} lines/s over {args.runs} run(s) "
        f"({args.instances} instances, {lines:,} lines, shape {args.shape}); runs "
        + ", ".join(f"{r / 1000:.1f}k" for r in rates)
    )


def ingest_once(server: str, ledgers: list[Path], total: Decimal, lines: int, run: int) -> float:
    with fresh_database(server) as url:
        asyncio.run(prepare(url))
        before_load = load()
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--url",
                    server,
                    "worker",
                    f"{url}?application_name=bench-{i}",
                    f"host-{i}",
                    str(path),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            for i, path in enumerate(ledgers)
        ]
        reports = [json.loads(p.communicate()[0]) for p in procs]
        seconds = time.perf_counter() - started
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        server_s = sum(r["server_cpu"] for r in reports)
        if any(p.returncode for p in procs):
            raise SystemExit(f"a worker failed: {[p.returncode for p in procs]}")
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT coalesce(sum(cost), 0), count(*) FROM events").fetchone()
            assert row is not None
            stored, count = row
    exact = "exact" if stored == total else f"WRONG: stored {stored}, ledgers {total}"
    client_s = (children.ru_utime + children.ru_stime) - (children_before.ru_utime + children_before.ru_stime)
    parse_s = sum(r["parse_cpu"] for r in reports)
    startup_s = sum(r["startup"] for r in reports)
    write_s = client_s - parse_s - startup_s
    us = {name: s / lines * 1e6 for name, s in (("parse", parse_s), ("write", write_s), ("server", server_s))}
    all_us = sum(us.values())
    rate = lines / seconds
    print(
        f"run {run}: {lines:,} lines by {len(ledgers)} instances in {seconds:.2f} s: {rate:,.0f} lines/s; "
        f"{count:,} events, total {exact}; {before_load} before, {load()} after\n"
        f"  CPU per line: parse {us['parse']:.1f} µs, client write {us['write']:.1f} µs, PostgreSQL server "
        f"{us['server']:.1f} µs = {all_us:.1f} µs → {2e6 / all_us:,.0f} lines/s on 2 idle cores (start-up "
        f"{startup_s:.1f} s CPU not counted); "
        f"instances spent in write_batch (backend, row-lock waits, commit) {sum(r['write_wall'] for r in reports):.1f}"
        " s in all",
        flush=True,
    )
    return rate


async def prepare(url: str) -> None:
    from guardd.store.postgres.db import PgStore

    async with PgStore.open(url, "bench"):
        pass  # creates the schema once, before the instances race


async def ingest_worker(url: str, instance: str, ledger: str) -> None:
    """One instance: parse its ledger batch by batch and store each batch with its checkpoint; print a JSON line
    with the CPU seconds spent parsing and the wall seconds spent in ``write_batch``."""
    from guardd.ledger.lines import fingerprint
    from guardd.ledger.parse import LineParser, read_batch
    from guardd.store.api import Checkpoint
    from guardd.store.postgres.db import PgStore
    from guardd.store.postgres.events import PgEventStore

    fd = os.open(ledger, os.O_RDONLY)
    fp = fingerprint(fd) or ""
    st = os.fstat(fd)
    parser = LineParser("auto", {}, 1000 * 10**12)
    parse_cpu = write_wall = 0.0
    startup = time.process_time()  # interpreter start and imports: not ingest
    async with PgStore.open(url, instance) as store:
        events = PgEventStore(store)
        offset, stored = 0, 0
        while True:
            cpu = time.process_time()
            parsed = read_batch(fd, fp, ledger, parser, offset)
            parse_cpu += time.process_time() - cpu
            if parsed.end == offset:
                break
            cp = Checkpoint("bench", ledger, st.st_dev, st.st_ino, fp, parsed.end, st.st_size, "", stored, 0, None)
            wall = time.perf_counter()
            result = await events.write_batch(parsed, cp)
            write_wall += time.perf_counter() - wall
            stored += result.stored
            offset = parsed.end
        app = url.rsplit("application_name=", 1)[1]
        rows = await store.fetchall("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (app,))
        server = backend_cpu([r[0] for r in rows])
    os.close(fd)
    print(json.dumps({"parse_cpu": parse_cpu, "write_wall": write_wall, "server_cpu": server, "startup": startup}))


# ---- trip propagation and failover ---------------------------------------------------------------------------
def run_trip(args: argparse.Namespace) -> None:
    """Start ``--instances`` real ``guardd run`` daemons on one fresh database (own folders, ledgers, state and
    switch files). Trip propagation: append a line crossing a $1/day budget of its own (``trial = "N"``) to one
    host's ledger, and time until every OTHER host's switch file shows that budget's scope tripped. Failover:
    ``kill -9`` the leader (the lease row's holder), time until another instance holds a new term, restart it."""
    with fresh_database(args.url) as url, tempfile.TemporaryDirectory() as tmp:
        asyncio.run(prepare(url))
        budgets = "".join(
            f'[[budgets]]\nname = "t{i}"\nmatch = {{ trial = "{i}" }}\ndaily = 1\nforecast = false\n'
            for i in range(args.trials)
        )
        hosts = []
        for n in range(args.instances):
            home = Path(tmp) / f"web-{n}"
            home.mkdir()
            (home / "ledger.jsonl").touch()
            (home / "guardd.toml").write_text(
                f'[guardd]\ninstance = "web-{n}"\nstate_dir = "state"\n[store]\nurl = "{url}"\n'
                f'[[ledgers]]\npath = "ledger.jsonl"\n{budgets}'
            )
            hosts.append(home)
        procs = {home: start_daemon(home) for home in hosts}
        try:
            wait_for(lambda: all((h / "state" / "killswitch.json").exists() for h in hosts), 120, "switch files")
            latencies = []
            for trial in range(args.trials):
                source = hosts[trial % len(hosts)]
                started = time.perf_counter()
                line = {
                    "ts": datetime.now(UTC).isoformat(),
                    "id": f"gen-trip-{trial}",
                    "model": "m",
                    "cost": 2,
                    "labels": {"trial": str(trial)},
                }
                with open(source / "ledger.jsonl", "a") as f:
                    f.write(json.dumps(line) + "\n")
                waiting = {h for h in hosts if h != source}
                while waiting:
                    for h in list(waiting):
                        if scope_tripped(h, f"t{trial}"):
                            latencies.append(time.perf_counter() - started)
                            waiting.discard(h)
                    if time.perf_counter() - started > 30:
                        logs = {h.name: (h / "guardd.log").read_text()[-600:] for h in hosts}
                        switch = (source / "state" / "killswitch.json").read_text()[:600]
                        raise SystemExit(
                            f"trial {trial}: not tripped on {sorted(h.name for h in waiting)} after 30 s;"
                            f" {source.name}'s switch file: {switch}; logs: {logs}"
                        )
                    time.sleep(0.005)
            latencies.sort()
            p50 = latencies[len(latencies) // 2]
            p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
            print(
                f"trip propagation to the other hosts' switch files: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms,"
                f" max {latencies[-1] * 1000:.0f} ms ({len(latencies)} host-trials); {load()}",
                flush=True,
            )
            for _ in range(args.failovers):
                holder, epoch = lease(url)
                victim = next(h for h in hosts if h.name == holder)
                started = time.perf_counter()
                procs[victim].kill()
                procs[victim].wait()
                wait_for(partial(new_term, url, holder, epoch), 60, "a new leader")
                print(
                    f"failover after kill -9 of {holder}: {time.perf_counter() - started:.1f} s; {load()}", flush=True
                )
                procs[victim] = start_daemon(victim)
                time.sleep(2)
        finally:
            for proc in procs.values():
                proc.kill()
                proc.wait()


def start_daemon(home: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "guardd", "run", "-c", str(home / "guardd.toml")],
        cwd=HERE.parent,
        stdout=subprocess.DEVNULL,
        stderr=open(home / "guardd.log", "ab"),
    )


def scope_tripped(home: Path, budget: str) -> bool:
    try:
        doc = json.loads((home / "state" / "killswitch.json").read_text())
    except (OSError, ValueError):
        return False
    return any(
        budget == name.rsplit(":", 1)[-1] and scope.get("tripped") for name, scope in doc.get("scopes", {}).items()
    )


def lease(url: str) -> tuple[str, int]:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT holder, epoch FROM leader WHERE expires_at > now()").fetchone()
    return (str(row[0]), int(row[1])) if row else ("", -1)


def new_term(url: str, holder: str, epoch: int) -> bool:
    now_holder, now_epoch = lease(url)
    return now_epoch > epoch and now_holder not in ("", holder)


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"no {what} after {seconds:.0f} s")
        time.sleep(0.05)


# ---- status ---------------------------------------------------------------------------------------------------
def run_status(args: argparse.Namespace) -> None:
    with fresh_database(args.url) if not args.keep else kept_database(args.url, args.keep) as url:
        now = datetime.now(UTC)
        if not asyncio.run(has_events(url)):
            started = time.perf_counter()
            build_events(url, args.events, args.series, now)
            print(f"built {args.events:,} events in {time.perf_counter() - started:.0f} s")
        times = []
        for run in range(1, args.runs + 1):
            seconds = asyncio.run(status_sums(url, now))
            print(f"run {run}: {seconds * 1000:.0f} ms; {load()}")
            times.append(seconds)
        print(
            f"status window sums over {args.events:,} events: median {statistics.median(times) * 1000:.0f} ms, "
            f"max {max(times) * 1000:.0f} ms ({args.runs} runs)"
        )
        whole_command(url, args.runs)


@contextmanager
def kept_database(server: str, name: str) -> Iterator[str]:
    with psycopg.connect(server, autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')
    yield server.split("?", 1)[0].rsplit("/", 1)[0] + "/" + name


async def has_events(url: str) -> bool:
    await prepare(url)
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT 1 FROM events LIMIT 1").fetchone() is not None


def whole_command(url: str, runs: int) -> None:
    """Time ``guardd status --json`` end to end (interpreter start, configuration, store, every window sum) with
    6 budgets like ``bench/status.py``'s, on the shared store at ``url``."""
    budgets = "".join(
        f'[[budgets]]\nname = "b{i}"\nmatch = {{ team = "t{i % 5}" }}\ndaily = 50\nweekly = 300\nmonthly = 1000\n'
        'rolling = [{ window = "10m", limit = 5 }]\n'
        for i in range(5)
    )
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "guardd.toml"
        config.write_text(
            f'[guardd]\nstate_dir = "state"\ntimezone = "Europe/Berlin"\ninstance = "bench"\n[store]\nurl = "{url}"\n'
            f'{budgets}[[budgets]]\nname = "all"\nmonthly = 100000\ndaily = 5000\n'
        )
        cmd = [sys.executable, "-m", "guardd", "status", "--json", "-c", str(config)]
        reference = [sys.executable, "-c", "pass"]
        # As installed: byte-code cached (one untimed run writes it), whatever this shell says; the validated
        # configuration kept in a cache of this run's own (the untimed run keeps it), as for every run after a
        # first one.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")
        subprocess.run(cmd, capture_output=True, cwd=HERE.parent, env=env)
        times, cpus, refs = [], [], []
        for run in range(1, runs + 1):
            started = time.perf_counter()
            subprocess.run(reference, capture_output=True, env=env)
            refs.append(time.perf_counter() - started)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent, env=env)
            seconds = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            if done.returncode not in (0, 1, 2):  # status exits 0/1/2 by budget state
                print(f"guardd status --json on the shared store: exit {done.returncode}: {done.stderr.strip()[:300]}")
                return
            print(
                f"whole command run {run}: {seconds * 1000:.0f} ms, CPU {cpu * 1000:.0f} ms"
                f" (exit {done.returncode}); python -c pass {refs[-1] * 1000:.0f} ms; {load()}"
            )
            times.append(seconds)
            cpus.append(cpu)
    median, ref = statistics.median(times), statistics.median(refs)
    print(
        f"guardd status --json on the shared store, whole process: median {median * 1000:.0f} ms,"
        f" max {max(times) * 1000:.0f} ms, median CPU {statistics.median(cpus) * 1000:.0f} ms ({runs} runs);"
        f" python -c pass median {ref * 1000:.0f} ms (x{median / ref:.1f})"
    )


def build_events(url: str, events: int, series: int, now: datetime) -> None:
    from guardd.core.batch import DAY_MS, HOUR_MS, series_sig
    from guardd.store.postgres.ingest import hash_sql

    asyncio.run(prepare(url))
    now_ms = int(now.timestamp() * 1000)
    span = 90 * DAY_MS
    with psycopg.connect(url, autocommit=True) as conn:
        labels = [{"svc": f"s{i}", "team": f"t{i % 5}"} for i in range(1, series + 1)]
        conn.cursor().executemany(
            "INSERT INTO series(id, sig, model, key, provider, labels) VALUES (%s, %s, %s, %s, 'P', %s)",
            [
                (
                    i,
                    series_sig(f"model-{i % 20}", f"key-{i % 8}", "P", lab),
                    f"model-{i % 20}",
                    f"key-{i % 8}",
                    json.dumps(lab, sort_keys=True),
                )
                for i, lab in enumerate(labels, 1)
            ],
        )
        conn.execute(
            f"INSERT INTO events(h, k, ts, series, cost, instance) SELECT {hash_sql(KEY)}, {KEY},"
            " %s + i * %s, 1 + i %% %s, (1000000 + (i %% 997) * 1000) * 0.000000000001, 'bench'"
            " FROM generate_series(1::bigint, %s) i",
            (now_ms - span, span // events, series, events),
        )
        for level, size in ((0, HOUR_MS), (1, DAY_MS)):
            conn.execute(
                "INSERT INTO rollups (level, bucket, series, cost, events, unpriced)"
                f" SELECT {level}, ts / {size}, series, sum(cost), count(*), 0 FROM events GROUP BY 2, 3"
            )
        conn.execute("VACUUM ANALYZE")


async def status_sums(url: str, now: datetime) -> float:
    from guardd.core.periods import window_at
    from guardd.store.postgres.db import PgStore
    from guardd.store.postgres.events import PgEventStore

    zone = ZoneInfo("Europe/Berlin")
    windows = [window_at(kind, zone, now, 0) for kind in ("daily", "weekly", "monthly")]
    spans = [(w.start, w.end) for w in windows] + [(now - timedelta(minutes=10), now)]
    async with PgStore.open(url, "bench") as store:
        events = PgEventStore(store)
        started = time.perf_counter()
        await events.load_series()
        for start, end in spans:
            await events.grouped_sums(None, start, end)
        return time.perf_counter() - started


if __name__ == "__main__":
    main()
