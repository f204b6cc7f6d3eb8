"""`scripts/bench`: the API's throughput beside a bare-Litestar baseline, and a soak test.

usage: scripts/bench [--duration S] [--connections N] [--rounds N] [--only NAME,...]
                     [--json FILE] [--profile NAME] [--tracing]
       scripts/bench --soak [--duration S] [--connections N] [--json FILE]
       scripts/bench --workers 1,2,4 [--apis 1,2] [--job-count N] [--json FILE]
       scripts/bench --jobs [--job-count N] [--job-steps S] [--connections N] [--rounds N]
                     [--json FILE] [--celery-peer DIR]

Throughput (default): starts PostgreSQL and Redis (DATABASE_URL / REDIS_URL when set, else
embedded ones), a private database migrated with Alembic, the dev token issuer, the API
(`uvicorn app.main:app`) and a bare Litestar app (scripts/bench_baseline.py) served with
the same uvicorn flags. Both servers share one CPU core; the load generator (wrk, or a
small Python one when wrk is missing) runs on another. Each round measures every endpoint
right after a baseline run of its own; the report gives each endpoint's median req/s, p99
latency and its share of the baseline (the median of those paired ratios) against the
target set in ENDPOINTS below. Endpoints whose route is not in /openapi.json are skipped.
Exit status 1 when an endpoint misses its target or answers with errors.

Soak (--soak): the API (and the SAQ worker when app/worker.py exists) under mixed
authenticated reads and writes from four dev users for --duration seconds (default 120)
at 50 connections, counting every unexpected status, with p50/p99 per operation and the
API process's RSS sampled every 10 s (target < 120 MiB and flat).

--tracing also serves the API twice more with OpenTelemetry on (sampler ratio 1.0 and
0.1, exporting to a local OTLP sink in this process) and measures each endpoint on all
three, each run paired with its own baseline run: rows `NAME`, `NAME+trace1.0`,
`NAME+trace0.1`.

Scaling (--workers): the numbers behind the Kubernetes replica advice (README
"Kubernetes"). For each worker count, --job-count demo jobs of fixed work (10 steps, no pauses)
are queued through the API, then that many SAQ worker processes start; jobs finished per
second are counted from when the last worker says alive (startup is not counted). Then
/v1/me and /v1/children are loaded through the edge (nginx with scripts/edge/nginx.conf,
as tests/test_edge.py runs it) in front of 1, then 2 API processes (--apis). Nothing is
pinned to a core: the processes share the machine as replicas share a node.

--profile NAME attaches py-spy to the API while NAME is under load and prints where the
time goes (the collapsed stacks are kept under .devdata/bench/).

Jobs (--jobs): the jobs path end to end. The API (one uvicorn process, pinned with the
driver) and one SAQ worker (`saq app.worker.settings`, pinned to the other core); the
driver POSTs --job-count demo jobs of --job-steps steps (no delay) with --connections
(default 16) in flight, then waits until every record says `complete`. Per round: jobs/s
from the first POST to the last completion, the worker's CPU ms per job and the API's
CPU ms per POST (utime + stime of each process over the round). The creation limits stay
on, raised above what the one bench user sends. --celery-peer DIR also runs DIR/run.py,
a side-by-side driver for a Celery stack doing the same work, from this checkout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import asyncpg
import httpx
from devstack import (
    REPO_ROOT,
    IssuerInfo,
    OtlpReceiver,
    asyncpg_dsn,
    backing_services,
    dev_issuer,
    free_port,
    log,
    shielded_from_signals,
    signals_raise_keyboard_interrupt,
    spawn,
    stop_process,
    wait_for_http,
    with_database,
)

STATE_DIR = REPO_ROOT / ".devdata" / "bench"
BASELINE_APP_DIR = REPO_ROOT / "scripts"

# How the API is served in production (the Dockerfile's CMD), and so how both servers are
# served here: one worker process, uvloop and httptools, no Server header, uvicorn's access
# log off (the API writes its own JSON access line per request to stderr, which is kept).
UVICORN_FLAGS = (
    "--workers",
    "1",
    "--loop",
    "uvloop",
    "--http",
    "httptools",
    "--no-access-log",
    "--no-server-header",
    "--log-level",
    "warning",
)
# The SAQ worker as the image runs it (`saq app.worker.settings`).
WORKER_COMMAND = (sys.executable, "-m", "saq", "app.worker.settings")
BENCH_USER = "alice"  # tenant "acme"
SOAK_USERS = ("alice", "bob", "carol", "dave")  # two in acme, one in globex, one untenanted
# Children each soak connection creates before it only updates them (so a parent has
# connections x this many, a bounded family).
SOAK_CHILDREN_PER_WORKER = 3
# Memory targets of one API process: after startup, at any time during the soak, and
# the trend (least-squares slope) over the soak's second half, when pools and caches have
# filled: steeper than that is a leak.
RSS_STARTUP_TARGET_MIB = 110.0
RSS_PEAK_TARGET_MIB = 150.0
RSS_FLAT_MIB_PER_MINUTE = 0.2


# --- what is measured -------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One GET measured against the baseline.

    `path` may hold `{placeholders}` filled by the endpoint's seed; the endpoint is
    measured only when `route` (default: `path` without its query) is in /openapi.json.
    """

    name: str
    path: str
    target: float
    auth: bool = True
    seed: str | None = None
    route: str | None = None

    @property
    def openapi_route(self) -> str:
        return self.route or self.path.partition("?")[0]


# One line per endpoint. Targets: the share of the bare baseline's req/s each endpoint must
# reach on the 2-core reference machine (the floors in the README's Performance table).
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("health", "/health", 0.88, auth=False),
    Endpoint("me", "/v1/me", 0.72),
    Endpoint("children", "/v1/children", 0.16, seed="children"),
    Endpoint("affirmations", "/v1/affirmations?childId={child_id}", 0.14, seed="children"),
    Endpoint("projects", "/v1/projects?limit=20", 0.13, seed="projects"),
)
BASELINE = Endpoint("baseline", "/", 1.0, auth=False)
# --tracing: the API served again with these variables, beside the one with tracing off.
TRACING_VARIANTS = {
    f"trace{ratio}": {
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": ratio,
    }
    for ratio in ("1.0", "0.1")
}


# --- the stack under test -----------------------------------------------------------------


@dataclass
class Stack:
    api_url: str
    api: subprocess.Popen[bytes]
    issuer: IssuerInfo
    database_url: str
    baseline_url: str | None = None
    baseline_pid: int | None = None
    worker_pid: int | None = None
    # More APIs on the same database, each with its own variables (--tracing): url, pid.
    variants: dict[str, tuple[str, int]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    # What the API was started with, for starting more API or worker processes alike.
    env: dict[str, str] = field(default_factory=dict)

    def token(self, username: str) -> str:
        if username not in self.tokens:
            # Long enough for any run; one token per user, reused, as an SPA does.
            self.tokens[username] = self.issuer.token(username, ttl=6 * 3600)
        return self.tokens[username]

    def headers(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(username)}"}


@dataclass(frozen=True)
class Cpus:
    """Where the servers and the load generator run (None: wherever the OS likes)."""

    server: str | None
    load: str | None

    @classmethod
    def pick(cls) -> Cpus:
        available = sorted(os.sched_getaffinity(0))
        if len(available) < 2 or shutil.which("taskset") is None:
            log("fewer than 2 usable cores (or no taskset): server and load are not pinned")
            return cls(None, None)
        return cls(str(available[0]), str(available[1]))

    def pinned(self, cpu: str | None, command: Sequence[str]) -> list[str]:
        return ["taskset", "-c", cpu, *command] if cpu is not None else list(command)


def _uvicorn(app: str, port: int, extra: Sequence[str] = ()) -> list[str]:
    command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    return [*command, *UVICORN_FLAGS, *extra]


async def _admin_sql(server_url: str, sql: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@contextlib.contextmanager
def private_database(server_url: str) -> Iterator[str]:
    """A fresh database on `server_url`, migrated to head, dropped afterwards."""
    name = f"bench_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin_sql(server_url, f'CREATE DATABASE "{name}"'))
    try:
        url = with_database(server_url, name)
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "alembic", "upgrade", "head"],
            cwd=REPO_ROOT,
            env={**os.environ, "DATABASE_URL": url},
            check=True,
            stdout=subprocess.DEVNULL,
        )
        log(f"database {name} migrated in {time.monotonic() - started:.1f} s")
        yield url
    finally:
        with shielded_from_signals():
            asyncio.run(_admin_sql(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def _server(
    name: str, command: Sequence[str], env: dict[str, str], log_to: IO[Any] | int
) -> Iterator[subprocess.Popen[bytes]]:
    process = spawn(command, env=env, stdout=subprocess.DEVNULL, stderr=log_to)
    try:
        yield process
    finally:
        stop_process(process, name)


def start_stack(
    stack: contextlib.ExitStack,
    cpus: Cpus,
    *,
    baseline: bool,
    worker: bool,
    api_log: Path | None,
    app: str = "app.main:app",
    extra_env: dict[str, str] | None = None,
    api_cpu: str | None = None,
    worker_cpu: str | None = None,
    variants: dict[str, dict[str, str]] | None = None,
) -> Stack:
    """Start everything on `stack`, which stops it all (in reverse order) when closed.

    The API runs on `api_cpu` (default: the server core), the worker on `worker_cpu`
    (default: unpinned)."""
    services = stack.enter_context(backing_services(STATE_DIR, durable=False))
    database_url = stack.enter_context(private_database(services.database_url))
    issuer = stack.enter_context(dev_issuer())
    env = {
        **os.environ,
        **issuer.env(),
        "DATABASE_URL": database_url,
        "REDIS_URL": services.redis_url,
        # Queue names are unique per run, so a shared Redis is never disturbed.
        "SAQ_QUEUE": f"bench-{uuid.uuid4().hex[:8]}",
        "LOG_LEVEL": "INFO",  # the access log stays on: it is part of the real cost
        "PYTHONUNBUFFERED": "1",
        # The request limiter stays on, counting every request as at the default limit,
        # but one bench user sends far more than 600 a minute: with the limit that high,
        # every request takes an admitted caller's path (a refusal would be cheaper and
        # flatter the figures). Its own prefix: a shared Redis is never disturbed.
        "RATE_LIMIT_PER_MINUTE": "1000000000",
        "LIMITS_KEY_PREFIX": f"bench-{uuid.uuid4().hex[:8]}:",
        "METRICS_TOKEN": uuid.uuid4().hex,
        **(extra_env or {}),
    }
    log_sink: IO[Any] | int = subprocess.DEVNULL
    if api_log is not None:
        log_sink = stack.enter_context(api_log.open("ab"))
    port = free_port()
    api_cpu = api_cpu or cpus.server
    api = stack.enter_context(
        _server("API", cpus.pinned(api_cpu, _uvicorn(app, port)), env, log_sink)
    )
    api_url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{api_url}/health", timeout=60, process=api)
    log(f"API {api.pid} on {api_url} (cpu {api_cpu or 'any'})")
    result = Stack(api_url=api_url, api=api, issuer=issuer, database_url=database_url, env=env)
    for name, overrides in (variants or {}).items():
        port = free_port()
        command = cpus.pinned(cpus.server, _uvicorn(app, port))
        process = stack.enter_context(_server(f"API {name}", command, env | overrides, log_sink))
        wait_for_http(f"http://127.0.0.1:{port}/health", timeout=60, process=process)
        result.variants[name] = (f"http://127.0.0.1:{port}", process.pid)
        log(f"API {name} {process.pid} on port {port}")
    if baseline:
        port = free_port()
        command = _uvicorn("bench_baseline:app", port, ["--app-dir", str(BASELINE_APP_DIR)])
        process = stack.enter_context(
            _server("baseline", cpus.pinned(cpus.server, command), env, subprocess.DEVNULL)
        )
        result.baseline_url = f"http://127.0.0.1:{port}"
        result.baseline_pid = process.pid
        wait_for_http(f"{result.baseline_url}/", timeout=60, process=process)
        log(f"baseline {process.pid} on {result.baseline_url}")
    if worker and (REPO_ROOT / "app" / "worker.py").exists():
        command = cpus.pinned(worker_cpu, WORKER_COMMAND)
        process = stack.enter_context(_server("worker", command, env, subprocess.DEVNULL))
        result.worker_pid = process.pid
        log(f"SAQ worker {process.pid} started (cpu {worker_cpu or 'any'})")
    return result


@contextlib.contextmanager
def _stopping_at_exit() -> Iterator[contextlib.ExitStack]:
    stack = contextlib.ExitStack()
    try:
        yield stack
    finally:
        # Stopping must finish even if the user presses Ctrl-C again.
        with shielded_from_signals():
            stack.close()


def openapi_routes(api_url: str) -> set[str]:
    response = httpx.get(f"{api_url}/openapi.json", timeout=10)
    response.raise_for_status()
    return set(response.json().get("paths", {}))


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    # /proc/PID/stat: the command may contain spaces, so split after its closing ")".
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


# --- seeding through the API --------------------------------------------------------------


class SeedError(Exception):
    pass


def _expect(response: httpx.Response, *statuses: int) -> Any:
    if response.status_code not in statuses:
        method, path = response.request.method, response.request.url.path
        raise SeedError(f"{method} {path} → {response.status_code}: {response.text[:200]}")
    return response.json() if response.content else None


def child_body(index: int, *, age: int = 7, child_id: str | None = None) -> dict[str, Any]:
    today = dt.date.today()
    body: dict[str, Any] = {
        "name": f"Bench child {index}",
        # Day 1 of this month, `age` years ago: a valid date in every month.
        "birthday": today.replace(year=today.year - age, day=1).isoformat(),
        "interests": ["animals", "space", "music"][: 1 + index % 3],
    }
    if child_id is not None:
        body["id"] = child_id
    return body


async def _seed_children(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, str]:
    ids = []
    for index in range(10):
        created = _expect(
            await client.post("/v1/children", json=child_body(index), headers=headers), 201
        )
        ids.append(str(created["id"]))
    return {"child_id": ids[0]}


async def _seed_projects(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, str]:
    async def create(numbers: range) -> None:
        for number in numbers:
            body = {"name": f"Bench project {number:04d}", "description": "Seeded by bench"}
            _expect(await client.post("/v1/projects", json=body, headers=headers), 201)

    # 1,000 projects in the caller's tenant, written by 10 concurrent clients.
    await asyncio.gather(*(create(range(start, 1000, 10)) for start in range(10)))
    return {}


SEEDS: dict[str, Callable[[httpx.AsyncClient, dict[str, str]], Awaitable[dict[str, str]]]] = {
    "children": _seed_children,
    "projects": _seed_projects,
}


async def seed(stack: Stack, names: set[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Run each named seed once; returns (placeholders, failures by seed name)."""
    values: dict[str, str] = {}
    failures: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        for name in sorted(names):
            started = time.monotonic()
            try:
                values.update(await SEEDS[name](client, stack.headers(BENCH_USER)))
            except (SeedError, httpx.HTTPError, KeyError, TypeError) as exc:
                failures[name] = str(exc) or type(exc).__name__
                continue
            log(f"seeded {name} in {time.monotonic() - started:.1f} s")
    return values, failures


# --- load generators ------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors, timeouts and 4xx/5xx answers

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


# Prints wrk's summary as one JSON line, so nothing depends on its human-readable format.
WRK_REPORT_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "errors": %d, "p50_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


class LoadGenerator:
    name = "abstract"

    def __init__(self, cpu: str | None, connections: int) -> None:
        self.cpu = cpu
        self.connections = connections

    def run(self, url: str, headers: dict[str, str], seconds: float) -> LoadResult:
        raise NotImplementedError

    @staticmethod
    def _parse(output: str) -> dict[str, Any]:
        for line in output.splitlines():
            if line.startswith("BENCH_JSON "):
                parsed: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
                return parsed
        raise RuntimeError(f"the load generator printed no result:\n{output[-2000:]}")


class Wrk(LoadGenerator):
    name = "wrk"

    def __init__(self, cpu: str | None, connections: int, script: Path) -> None:
        super().__init__(cpu, connections)
        self.script = script

    def run(self, url: str, headers: dict[str, str], seconds: float) -> LoadResult:
        command = ["wrk", "-t1", f"-c{self.connections}", f"-d{max(1, round(seconds))}s"]
        command += ["--timeout", "5s", "-s", str(self.script)]
        for name, value in headers.items():
            command += ["-H", f"{name}: {value}"]
        command.append(url)
        if self.cpu is not None:
            command = ["taskset", "-c", self.cpu, *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"wrk failed ({result.returncode}): {result.stderr.strip()}")
        data = self._parse(result.stdout)
        return LoadResult(
            requests=data["requests"],
            seconds=data["duration_us"] / 1e6,
            p50_ms=data["p50_us"] / 1000,
            p99_ms=data["p99_us"] / 1000,
            errors=data["errors"],
        )


class PythonLoad(LoadGenerator):
    """Keep-alive HTTP/1.1 GETs over raw asyncio streams, in a child process.

    Slower than wrk (it may saturate before a fast server does, which flattens ratios),
    so it is only the fallback when wrk is not installed.
    """

    name = "python"

    def run(self, url: str, headers: dict[str, str], seconds: float) -> LoadResult:
        spec = {"url": url, "headers": headers, "seconds": seconds, "connections": self.connections}
        command = [sys.executable, __file__, "--loadgen", json.dumps(spec)]
        if self.cpu is not None:
            command = ["taskset", "-c", self.cpu, *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"load generator failed: {result.stderr.strip()[-2000:]}")
        data = self._parse(result.stdout)
        return LoadResult(**data)


async def _python_load(spec: dict[str, Any]) -> dict[str, Any]:
    parts = urlsplit(spec["url"])
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{name}: {value}" for name, value in spec["headers"].items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + spec["seconds"]
    latencies: list[float] = []
    errors = 0

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while loop.time() < deadline:
                started = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                match = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
                if match is None:
                    raise RuntimeError("response without Content-Length")
                await reader.readexactly(int(match.group(1)))
                latencies.append(time.perf_counter() - started)
                if not head.startswith((b"HTTP/1.1 2", b"HTTP/1.1 3")):
                    errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    outcomes = await asyncio.gather(
        *(connection() for _ in range(spec["connections"])), return_exceptions=True
    )
    elapsed = time.perf_counter() - started
    errors += sum(isinstance(outcome, BaseException) for outcome in outcomes)
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "p50_ms": _percentile(latencies, 50) * 1000,
        "p99_ms": _percentile(latencies, 99) * 1000,
        "errors": errors,
    }


def _percentile(sorted_values: Sequence[float], percent: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, round(percent / 100 * (len(sorted_values) - 1)))
    return sorted_values[index]


def _loadgen_main(spec_json: str) -> int:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    result = asyncio.run(_python_load(json.loads(spec_json)))
    print("BENCH_JSON " + json.dumps(result), flush=True)
    return 0


def pick_load_generator(
    cpus: Cpus, connections: int, workdir: Path, choice: str = "auto"
) -> LoadGenerator:
    if choice == "python":
        return PythonLoad(cpus.load, connections)
    if shutil.which("wrk") is None:
        if choice == "wrk":
            raise SystemExit("scripts/bench: wrk is not installed (apt-get install -y wrk)")
        log("wrk is not installed (Debian/Ubuntu: apt-get install -y wrk); using the slower")
        log("Python load generator, which may cap the baseline and understate the ratios")
        return PythonLoad(cpus.load, connections)
    script = workdir / "report.lua"
    script.write_text(WRK_REPORT_LUA)
    return Wrk(cpus.load, connections, script)


# --- throughput mode ------------------------------------------------------------------------


@dataclass
class Measured:
    endpoint: Endpoint
    url: str
    headers: dict[str, str]
    server_pid: int
    runs: list[LoadResult] = field(default_factory=list)
    # The server's CPU time per request: unlike req/s it hardly moves when other work
    # on the machine steals cycles, so it shows small gains that throughput noise hides.
    cpu_us: list[float] = field(default_factory=list)
    # The baseline run made just before each of this endpoint's runs, with its CPU/req.
    paired_baseline: list[tuple[LoadResult, float]] = field(default_factory=list)

    def measure(self, load: LoadGenerator, seconds: float) -> LoadResult:
        cpu_before = process_cpu_seconds(self.server_pid)
        result = load.run(self.url, self.headers, seconds)
        self.record(result, process_cpu_seconds(self.server_pid) - cpu_before)
        return result

    def record(self, result: LoadResult, cpu_seconds: float) -> None:
        self.runs.append(result)
        self.cpu_us.append(cpu_seconds / result.requests * 1e6 if result.requests else 0.0)


def measure_together(
    load: LoadGenerator, baseline: Measured, endpoint: Measured, seconds: float
) -> None:
    """Load both servers at once: they share one core, so whatever else the machine does
    slows both alike, and the ratio of their req/s is the inverse of their costs."""
    servers = (baseline, endpoint)
    before = [process_cpu_seconds(item.server_pid) for item in servers]
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [pool.submit(load.run, item.url, item.headers, seconds) for item in servers]
        results = [run.result() for run in runs]
    for item, result, cpu_before in zip(servers, results, before, strict=True):
        item.record(result, process_cpu_seconds(item.server_pid) - cpu_before)


@dataclass
class Skipped:
    endpoint: Endpoint
    reason: str


def _prepare(
    stack: Stack, wanted: Sequence[Endpoint]
) -> tuple[list[Measured], list[Skipped], dict[str, float]]:
    """Check presence, seed data, fill placeholders and check each URL answers 200."""
    routes = openapi_routes(stack.api_url)
    present = [endpoint for endpoint in wanted if endpoint.openapi_route in routes]
    skipped = [
        Skipped(endpoint, f"endpoint not present (no {endpoint.openapi_route} in /openapi.json)")
        for endpoint in wanted
        if endpoint.openapi_route not in routes
    ]
    seed_names = {endpoint.seed for endpoint in present if endpoint.seed}
    seed_started = time.monotonic()
    values, failures = asyncio.run(seed(stack, seed_names))
    seed_seconds = time.monotonic() - seed_started
    measured: list[Measured] = []
    for endpoint in present:
        if endpoint.seed in failures:
            skipped.append(
                Skipped(endpoint, f"seeding {endpoint.seed} failed: {failures[endpoint.seed]}")
            )
            continue
        url = stack.api_url + endpoint.path.format(**values)
        headers = stack.headers(BENCH_USER) if endpoint.auth else {}
        response = httpx.get(url, headers=headers, timeout=10)
        if response.status_code != 200:
            reason = f"answers {response.status_code}: {response.text[:160]}"
            skipped.append(Skipped(endpoint, reason))
            continue
        measured.append(Measured(endpoint, url, headers, stack.api.pid))
    return measured, skipped, {"seed_seconds": round(seed_seconds, 1)}


def _with_variants(stack: Stack, measured: list[Measured]) -> list[Measured]:
    """Each endpoint, then the same request on every variant API (no target of its own)."""
    result: list[Measured] = []
    for item in measured:
        result.append(item)
        path = item.url.removeprefix(stack.api_url)
        for name, (url, pid) in stack.variants.items():
            endpoint = replace(item.endpoint, name=f"{item.endpoint.name}+{name}", target=0.0)
            result.append(Measured(endpoint, url + path, item.headers, pid))
    return result


def _ratio(measured: Measured) -> float:
    # Each run's ratio uses the baseline run made right before it, which cancels most of
    # the drift of a shared machine; the median drops the odd disturbed pair.
    pairs = zip(measured.runs, measured.paired_baseline, strict=True)
    return statistics.median(run.rps / base.rps for run, (base, _) in pairs if base.rps)


def _cpu_ratio(measured: Measured) -> float | None:
    pairs = zip(measured.cpu_us, measured.paired_baseline, strict=True)
    ratios = [base_cpu / cpu for cpu, (_, base_cpu) in pairs if cpu]
    return statistics.median(ratios) if ratios else None


def _summarise(measured: Measured) -> dict[str, Any]:
    endpoint = measured.endpoint
    is_baseline = endpoint is BASELINE
    ratio = 1.0 if is_baseline else _ratio(measured)
    cpu_ratio = 1.0 if is_baseline else _cpu_ratio(measured)
    errors = sum(run.errors for run in measured.runs)
    passed = errors == 0 and (is_baseline or ratio >= endpoint.target)
    return {
        "name": endpoint.name,
        "path": urlsplit(measured.url).path + ("?…" if "?" in measured.url else ""),
        "rps_median": round(statistics.median(run.rps for run in measured.runs), 1),
        "rps_runs": [round(run.rps, 1) for run in measured.runs],
        "p50_ms_median": round(statistics.median(run.p50_ms for run in measured.runs), 2),
        "p99_ms_median": round(statistics.median(run.p99_ms for run in measured.runs), 2),
        "ratio": round(ratio, 4),
        "cpu_us_per_request_median": round(statistics.median(measured.cpu_us), 1),
        "cpu_us_runs": [round(value, 1) for value in measured.cpu_us],
        # Baseline CPU per request over this one's (paired like the ratio): the share of
        # the baseline's req/s this endpoint would reach if the API process were the only
        # limit.
        "cpu_ratio": None if cpu_ratio is None else round(cpu_ratio, 4),
        "target": None if is_baseline else endpoint.target,
        "errors": errors,
        "result": "-" if is_baseline and errors == 0 else ("PASS" if passed else "FAIL"),
    }


def _table(rows: list[dict[str, Any]], skipped: list[Skipped]) -> str:
    header = (
        f"{'endpoint':<19} {'path':<22} {'req/s':>7} {'p99 ms':>7} {'ratio':>6} {'target':>6}"
        f" {'result':<6} {'errors':>6} {'CPU µs/req':>10} {'CPU ratio':>9}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        target = "-" if row["target"] is None else f"{row['target']:.0%}"
        cpu_ratio = "-" if row["cpu_ratio"] is None else f"{row['cpu_ratio']:.1%}"
        lines.append(
            f"{row['name']:<19} {row['path'][:22]:<22} {row['rps_median']:>7.0f}"
            f" {row['p99_ms_median']:>7.2f} {row['ratio']:>6.1%} {target:>6} {row['result']:<6}"
            f" {row['errors']:>6} {row['cpu_us_per_request_median']:>10.1f} {cpu_ratio:>9}"
        )
    for item in skipped:
        lines.append(
            f"{item.endpoint.name:<19} {item.endpoint.path[:22]:<22} skipped: {item.reason}"
        )
    lines.append(
        "ratio = median over rounds of req/s over the baseline run just before (the target"
        " applies to it); CPU ratio = the same pairs' API-process CPU per request, baseline"
        " over endpoint (noise-robust, ignores PostgreSQL's share)"
    )
    return "\n".join(lines)


def throughput(args: argparse.Namespace) -> int:
    cpus = Cpus.pick()
    wanted = _select(args.only)
    with signals_raise_keyboard_interrupt(), _stopping_at_exit() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        load = pick_load_generator(cpus, args.connections, workdir, args.loadgen)
        sink = stack.enter_context(OtlpReceiver(keep=False)) if args.tracing else None
        variants = {
            name: {**overrides, "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint}
            for name, overrides in TRACING_VARIANTS.items()
            if sink is not None
        }
        api = start_stack(
            stack,
            cpus,
            baseline=True,
            worker=False,
            api_log=args.api_log,
            app=args.app,
            variants=variants,
        )
        assert api.baseline_url is not None
        measured, skipped, seeding = _prepare(api, wanted)
        measured = _with_variants(api, measured)
        assert api.baseline_pid is not None
        baseline = Measured(BASELINE, f"{api.baseline_url}/", {}, api.baseline_pid)
        targets = [baseline, *measured]
        load_before = os.getloadavg()
        rss_start = rss_mib(api.api.pid)
        # Warm-up, not measured: pools open, caches fill, the first-call costs are paid.
        for item in targets:
            load.run(item.url, item.headers, args.warmup)
        for round_number in range(1, args.rounds + 1):
            for endpoint in measured:
                # Every endpoint run right after its own baseline run (or, --together, at
                # the same time): a noisy neighbour then slows both sides of the ratio alike.
                if args.together:
                    measure_together(load, baseline, endpoint, args.duration)
                else:
                    baseline.measure(load, args.duration)
                    endpoint.measure(load, args.duration)
                for item in (baseline, endpoint):
                    result = item.runs[-1]
                    log(
                        f"round {round_number}/{args.rounds}  {item.endpoint.name:<19}"
                        f" {result.rps:>8.0f} req/s  p99 {result.p99_ms:6.2f} ms"
                        f"  {item.cpu_us[-1]:6.1f} µs CPU/req"
                        + (f"  ERRORS {result.errors}" if result.errors else "")
                    )
                endpoint.paired_baseline.append((baseline.runs[-1], baseline.cpu_us[-1]))
        rows = [_summarise(item) for item in targets]
        rss_end = rss_mib(api.api.pid)
        profile = None
        if args.profile:
            profile = _profile(api, targets, args.profile, load, args.duration)
    print()
    print(
        f"scripts/bench: {args.rounds} rounds x {args.duration:g} s"
        f"{' (baseline loaded at the same time)' if args.together else ''}, {args.connections}"
        f" connections, load generator {load.name}, server cpu {cpus.server or 'any'},"
        f" load cpu {cpus.load or 'any'}, load average before {load_before[0]:.2f}"
    )
    print(f"uvicorn {' '.join(UVICORN_FLAGS)}; API RSS {rss_start:.0f} → {rss_end:.0f} MiB")
    if sink is not None:
        print(
            f"tracing: APIs {', '.join(api.variants)} exported {sink.requests} OTLP requests,"
            f" {sink.bytes / 2**20:.1f} MiB, to a sink in this process (BatchSpanProcessor"
            " defaults: spans past its queue of 2,048 are dropped, not waited for)"
        )
    print(_table(rows, skipped))
    failed = [row["name"] for row in rows if row["result"] == "FAIL"]
    print("\nresult: " + ("FAIL (" + ", ".join(failed) + ")" if failed else "PASS"))
    if args.json:
        report = {
            "mode": "throughput",
            "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "commit": _git_commit(),
            "settings": {
                "duration_s": args.duration,
                "rounds": args.rounds,
                "together": args.together,
                "tracing": args.tracing,
                "connections": args.connections,
                "load_generator": load.name,
                "uvicorn_flags": list(UVICORN_FLAGS),
                "server_cpu": cpus.server,
                "load_cpu": cpus.load,
                "load_average_before": load_before[0],
                **seeding,
            },
            "results": rows,
            "skipped": [{"name": s.endpoint.name, "reason": s.reason} for s in skipped],
            "api_rss_mib": {"start": round(rss_start, 1), "end": round(rss_end, 1)},
            "profile": profile,
            "passed": not failed,
        }
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        log(f"wrote {args.json}")
    return 1 if failed else 0


def _select(only: list[str] | None) -> list[Endpoint]:
    if not only:
        return list(ENDPOINTS)
    names = {name.strip() for group in only for name in group.split(",") if name.strip()}
    known = {endpoint.name for endpoint in ENDPOINTS}
    unknown = names - known
    if unknown:
        raise SystemExit(
            f"scripts/bench: unknown endpoint(s) {', '.join(sorted(unknown))};"
            f" known: {', '.join(sorted(known))}"
        )
    return [endpoint for endpoint in ENDPOINTS if endpoint.name in names]


def _git_commit() -> str | None:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    return result.stdout.strip() or None


# --- profiling ------------------------------------------------------------------------------


def _profile(
    stack: Stack, targets: list[Measured], name: str, load: LoadGenerator, seconds: float
) -> dict[str, Any] | None:
    """Sample the API with py-spy while `name` is under load; print the hottest frames."""
    py_spy = Path(sys.executable).parent / "py-spy"
    if not py_spy.exists():
        log("py-spy is not installed (it is in the dev extra): no profile")
        return None
    item = next((t for t in targets if t.endpoint.name == name), None)
    if item is None:
        log(f"--profile {name}: that endpoint was not measured; no profile")
        return None
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    output = STATE_DIR / f"profile-{name}.txt"
    command = [str(py_spy), "record", "--pid", str(item.server_pid), "--format", "raw"]
    # Blocking sampling (the default) pauses the API briefly per sample but gives whole
    # stacks; --nonblocking cuts coroutine stacks short. Profiles are never the measurement.
    # --gil: only the thread holding the GIL, i.e. the Python work that competes with
    # the event loop (an idle log-writer thread waiting on its event is not work).
    command += ["--rate", "200", "--gil", "--duration", str(max(2, round(seconds)))]
    command += ["--output", str(output)]
    if load.cpu is not None:
        command = ["taskset", "-c", load.cpu, *command]
    recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)
    load.run(item.url, item.headers, seconds)
    _, stderr = recorder.communicate(timeout=seconds + 30)
    if recorder.returncode != 0 or not output.exists():
        log(f"py-spy failed: {stderr.decode().strip()[-500:]}")
        return None
    summary = summarise_profile(output.read_text())
    print(f"\nprofile of {name} ({summary['samples']} samples, stacks in {output}):")
    for title, key in (("self time", "self"), ("inclusive time", "inclusive")):
        print(f"  top frames by {title}:")
        for frame, share in summary[key][:25]:
            print(f"    {share:6.1%}  {frame}")
    return summary


ENTRY_CHAIN_SHARE = 0.97


def summarise_profile(collapsed: str, top: int = 40) -> dict[str, Any]:
    """Self and inclusive share of each frame from py-spy's collapsed stacks."""
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short_frame(frame) for frame in stack.split(";")]
        total += count
        self_counts[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return {"samples": 0, "self": [], "inclusive": []}
    # Frames in (nearly) every sample are the entry chain (runpy, click, uvicorn.main,
    # asyncio.run): true but useless; the request path starts below them.
    below_entry = [
        (frame, count / total)
        for frame, count in inclusive.most_common()
        if count / total < ENTRY_CHAIN_SHARE
    ]
    return {
        "samples": total,
        "self": [(frame, count / total) for frame, count in self_counts.most_common(top)],
        "inclusive": below_entry[:top],
    }


def _short_frame(frame: str) -> str:
    # "f (/repo/.venv/lib/python3.11/site-packages/litestar/x.py:12)" → "f (litestar/x.py)"
    match = re.match(r"(.*) \((.*?)(?::\d+)?\)$", frame)
    if match is None:
        return frame
    function, path = match.groups()
    for marker in ("site-packages/", str(REPO_ROOT) + "/", "lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{function} ({path})"


# --- soak mode --------------------------------------------------------------------------------


@dataclass
class OpStats:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    unexpected: int = 0
    transport_errors: int = 0


@dataclass
class SoakWorker:
    """One connection's worth of traffic: a user and the objects it created itself.

    Every worker touches only its own children and projects, so concurrent workers never
    race each other into 404s or 412s and any such answer is a real error.
    """

    user: str
    headers: dict[str, str]
    rng: random.Random
    children: list[str] = field(default_factory=list)
    projects: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)


class TransportError(Exception):
    """No HTTP answer: refused, reset, timed out or malformed."""


@dataclass(frozen=True)
class RawResponse:
    status_code: int
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")


class KeepAliveClient:
    """One keep-alive HTTP/1.1 connection per soak worker, with JSON bodies.

    httpx's connection pool spent ~5 ms of CPU per request at 50 connections, so the soak
    measured its own client; this costs a small fraction of that. Enough HTTP for this
    API: Content-Length bodies (Litestar sends no chunked responses to these requests).
    """

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(base_url)
        self._host, self._port, self._netloc = parts.hostname, parts.port, parts.netloc
        self._timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(self, path: str, *, headers: dict[str, str] | None = None) -> RawResponse:
        return await self.request("GET", path, headers=headers)

    async def delete(self, path: str, *, headers: dict[str, str] | None = None) -> RawResponse:
        return await self.request("DELETE", path, headers=headers)

    async def post(
        self, path: str, *, json: Any = None, headers: dict[str, str] | None = None
    ) -> RawResponse:
        return await self.request("POST", path, headers=headers, body=json)

    async def patch(
        self, path: str, *, json: Any = None, headers: dict[str, str] | None = None
    ) -> RawResponse:
        return await self.request("PATCH", path, headers=headers, body=json)

    async def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, body: Any = None
    ) -> RawResponse:
        payload = b"" if body is None else json.dumps(body).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self._netloc}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if body is not None:
            lines.append("Content-Type: application/json")
        if body is not None or method in ("POST", "PATCH", "PUT"):
            lines.append(f"Content-Length: {len(payload)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload
        try:
            async with asyncio.timeout(self._timeout):
                return await self._exchange(data)
        except (OSError, EOFError, TimeoutError, ValueError) as exc:
            # asyncio.IncompleteReadError is an EOFError: the server closed mid-answer.
            await self.close()
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc

    async def _exchange(self, data: bytes) -> RawResponse:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        self._writer.write(data)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status, length, close = int(head[9:12]), 0, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                close = value.strip().lower() == b"close"
            elif name == b"transfer-encoding":
                raise ValueError("chunked responses are not supported here")
        content = await self._reader.readexactly(length) if length else b""
        if close:
            await self.close()
        return RawResponse(status, content)

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


Op = Callable[[KeepAliveClient, SoakWorker], Awaitable[tuple[str, RawResponse, set[int]]]]


def _soak_ops(routes: set[str]) -> list[tuple[str, float, Op]]:
    """The operations whose routes exist, with weights (name, weight, op)."""
    ops: list[tuple[str, float, Op]] = []

    def add(name: str, weight: float, needs: str) -> Callable[[Op], Op]:
        def register(op: Op) -> Op:
            if needs in routes:
                ops.append((name, weight, op))
            return op

        return register

    @add("GET /health", 1, "/health")
    async def health(client: KeepAliveClient, w: SoakWorker) -> tuple[str, RawResponse, set[int]]:
        return "GET /health", await client.get("/health"), {200}

    @add("GET /v1/me", 3, "/v1/me")
    async def me(client: KeepAliveClient, w: SoakWorker) -> tuple[str, RawResponse, set[int]]:
        return "GET /v1/me", await client.get("/v1/me", headers=w.headers), {200}

    @add("POST /v1/children", 1, "/v1/children")
    async def upsert_child(
        client: KeepAliveClient, w: SoakWorker
    ) -> tuple[str, RawResponse, set[int]]:
        # A family stays a family: each worker creates up to a few children, then only
        # updates them. GET /v1/children returns all of a parent's children, so unbounded
        # creation made every list answer grow through the soak (thousands of children
        # per parent after ten minutes) and the process's memory with it.
        full = len(w.children) >= SOAK_CHILDREN_PER_WORKER
        if w.children and (full or w.rng.random() < 0.5):  # update one of ours
            body = child_body(w.rng.randrange(100), child_id=w.rng.choice(w.children))
            response = await client.post("/v1/children", json=body, headers=w.headers)
            return "POST /v1/children (update)", response, {200}
        response = await client.post(
            "/v1/children",
            json=child_body(len(w.children), age=w.rng.randint(3, 12)),
            headers=w.headers,
        )
        if response.status_code == 201:
            w.children.append(str(response.json()["id"]))
        return "POST /v1/children (create)", response, {201}

    @add("GET /v1/children", 2, "/v1/children")
    async def list_children(
        client: KeepAliveClient, w: SoakWorker
    ) -> tuple[str, RawResponse, set[int]]:
        return "GET /v1/children", await client.get("/v1/children", headers=w.headers), {200}

    @add("GET /v1/children/{id}", 1, "/v1/children/{child_id}")
    async def get_child(
        client: KeepAliveClient, w: SoakWorker
    ) -> tuple[str, RawResponse, set[int]]:
        if not w.children:
            return await upsert_child(client, w)
        response = await client.get(f"/v1/children/{w.rng.choice(w.children)}", headers=w.headers)
        return "GET /v1/children/{id}", response, {200}

    content = (
        ("/v1/affirmations", ""),
        ("/v1/subjects", ""),
        ("/v1/flashcards", "&difficulty=easy"),
        ("/v1/chores/daily", ""),
        ("/v1/outdoor/activities", "&isDaily=true"),
    )
    for route, extra in content:

        def content_op(route: str = route, extra: str = extra) -> Op:
            async def op(
                client: KeepAliveClient, w: SoakWorker
            ) -> tuple[str, RawResponse, set[int]]:
                if not w.children:
                    return await upsert_child(client, w)
                url = f"{route}?childId={w.rng.choice(w.children)}{extra}"
                return f"GET {route}", await client.get(url, headers=w.headers), {200}

            return op

        add(f"GET {route}", 1, route)(content_op())

    @add("POST /v1/projects", 1, "/v1/projects")
    async def create_project(
        client: KeepAliveClient, w: SoakWorker
    ) -> tuple[str, RawResponse, set[int]]:
        body = {"name": f"Soak project {w.rng.randrange(10**6)}", "description": "soak"}
        response = await client.post("/v1/projects", json=body, headers=w.headers)
        if response.status_code == 201 and len(w.projects) < 50:
            w.projects.append(str(response.json()["id"]))
        return "POST /v1/projects", response, {201}

    @add("GET /v1/projects", 2, "/v1/projects")
    async def list_projects(
        client: KeepAliveClient, w: SoakWorker
    ) -> tuple[str, RawResponse, set[int]]:
        query = "?limit=20" if w.rng.random() < 0.7 else "?limit=10&q=soak"
        return (
            "GET /v1/projects",
            await client.get(f"/v1/projects{query}", headers=w.headers),
            {200},
        )

    project_route = next((r for r in routes if re.fullmatch(r"/v1/projects/\{[^}]+\}", r)), "")

    @add("PATCH /v1/projects/{id}", 1, project_route)
    async def patch_project(
        client: KeepAliveClient, w: SoakWorker
    ) -> tuple[str, RawResponse, set[int]]:
        if not w.projects:
            return await create_project(client, w)
        body = {"description": f"patched {w.rng.randrange(10**6)}"}
        response = await client.patch(
            f"/v1/projects/{w.rng.choice(w.projects)}", json=body, headers=w.headers
        )
        return "PATCH /v1/projects/{id}", response, {200}

    @add("GET /v1/projects/{id}", 1, project_route)
    async def get_project(
        client: KeepAliveClient, w: SoakWorker
    ) -> tuple[str, RawResponse, set[int]]:
        if not w.projects:
            return await create_project(client, w)
        response = await client.get(f"/v1/projects/{w.rng.choice(w.projects)}", headers=w.headers)
        return "GET /v1/projects/{id}", response, {200}

    @add("DELETE /v1/projects/{id}", 0.3, project_route)
    async def delete_project(
        client: KeepAliveClient, w: SoakWorker
    ) -> tuple[str, RawResponse, set[int]]:
        if not w.projects:
            return await create_project(client, w)
        project = w.projects.pop(w.rng.randrange(len(w.projects)))
        response = await client.delete(f"/v1/projects/{project}", headers=w.headers)
        return "DELETE /v1/projects/{id}", response, {204}

    job_route = next((r for r in routes if re.fullmatch(r"/v1/jobs/\{[^}]+\}", r)), "")

    @add("POST /v1/jobs", 0.5, "/v1/jobs")
    async def create_job(
        client: KeepAliveClient, w: SoakWorker
    ) -> tuple[str, RawResponse, set[int]]:
        body = {"kind": "demo", "params": {"steps": 2, "delay_ms": 10}}
        response = await client.post("/v1/jobs", json=body, headers=w.headers)
        if response.status_code == 202 and len(w.jobs) < 20:
            w.jobs.append(str(response.json()["job_id"]))
        # The soak asks for far more jobs than JOB_LIMIT_PER_MINUTE (30 per user) allows:
        # a 429 is the limit at work, not an error.
        return "POST /v1/jobs", response, {202, 429}

    @add("GET /v1/jobs/{id}", 0.5, job_route)
    async def get_job(client: KeepAliveClient, w: SoakWorker) -> tuple[str, RawResponse, set[int]]:
        if not w.jobs or "/v1/jobs" not in routes:
            return await me(client, w)
        response = await client.get(f"/v1/jobs/{w.rng.choice(w.jobs)}", headers=w.headers)
        return "GET /v1/jobs/{id}", response, {200}

    return ops


async def _soak_traffic(
    stack: Stack, seconds: float, connections: int, on_tick: Callable[[float], None]
) -> tuple[dict[str, OpStats], float, list[str]]:
    routes = openapi_routes(stack.api_url)
    ops = _soak_ops(routes)
    names = [name for name, _, _ in ops]
    weights = [weight for _, weight, _ in ops]
    functions = [op for _, _, op in ops]
    stats: dict[str, OpStats] = defaultdict(OpStats)
    samples: list[str] = []  # first few unexpected answers, to show
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    async def run_worker(index: int) -> None:
        user = SOAK_USERS[index % len(SOAK_USERS)]
        worker = SoakWorker(user, stack.headers(user), random.Random(index))
        client = KeepAliveClient(stack.api_url)
        try:
            while loop.time() < deadline:
                position = worker.rng.choices(range(len(functions)), weights)[0]
                started = time.perf_counter()
                try:
                    label, response, expected = await functions[position](client, worker)
                except TransportError as exc:
                    stats[names[position]].transport_errors += 1
                    if len(samples) < 10:
                        samples.append(f"{names[position]}: {exc}")
                    continue
                op = stats[label]
                op.latencies.append(time.perf_counter() - started)
                op.statuses[response.status_code] += 1
                if response.status_code not in expected:
                    op.unexpected += 1
                    if len(samples) < 10:
                        samples.append(f"{label} → {response.status_code}: {response.text[:160]}")
        finally:
            await client.close()

    async def ticker() -> None:
        started = loop.time()
        while loop.time() < deadline:
            await asyncio.sleep(min(10.0, max(0.0, deadline - loop.time())))
            on_tick(loop.time() - started)

    started = time.perf_counter()
    await asyncio.gather(ticker(), *(run_worker(index) for index in range(connections)))
    elapsed = time.perf_counter() - started
    return stats, elapsed, samples


def soak(args: argparse.Namespace) -> int:
    cpus = Cpus.pick()
    seconds = args.duration if args.duration_given else 120.0
    connections = args.connections if args.connections_given else 50
    rss: list[tuple[float, float]] = []
    with signals_raise_keyboard_interrupt(), _stopping_at_exit() as stack:
        api = start_stack(
            stack, cpus, baseline=False, worker=True, api_log=args.api_log, app=args.app
        )
        for user in SOAK_USERS:  # fetch tokens before the clock starts
            api.token(user)
        rss.append((0.0, rss_mib(api.api.pid)))
        log(f"soak: {seconds:g} s at {connections} connections; RSS {rss[0][1]:.1f} MiB")

        def on_tick(elapsed: float) -> None:
            rss.append((elapsed, rss_mib(api.api.pid)))
            log(f"soak: {elapsed:5.0f} s  RSS {rss[-1][1]:.1f} MiB")

        previous_affinity = os.sched_getaffinity(0)
        if cpus.load is not None:  # the client runs in this process: keep it off the API's core
            os.sched_setaffinity(0, {int(cpus.load)})
        api_cpu, client_cpu = process_cpu_seconds(api.api.pid), time.process_time()
        try:
            stats, elapsed, samples = asyncio.run(_soak_traffic(api, seconds, connections, on_tick))
        finally:
            os.sched_setaffinity(0, previous_affinity)
        # Who was the bottleneck: an API near 100 % of its core is saturated; a client near
        # 100 % means the numbers describe the load generator more than the API.
        busy = {
            "api": (process_cpu_seconds(api.api.pid) - api_cpu) / elapsed,
            "client": (time.process_time() - client_cpu) / elapsed,
        }
        time.sleep(1.0)
        rss.append((elapsed + 1.0, rss_mib(api.api.pid)))
    return _soak_report(args, stats, elapsed, samples, rss, connections, busy)


def _slope_per_minute(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB) points, in MiB per minute."""
    mean_t = statistics.fmean(at for at, _ in points)
    mean_v = statistics.fmean(value for _, value in points)
    spread = sum((at - mean_t) ** 2 for at, _ in points)
    if not spread:
        return 0.0
    return 60 * sum((at - mean_t) * (value - mean_v) for at, value in points) / spread


def _soak_report(
    args: argparse.Namespace,
    stats: dict[str, OpStats],
    elapsed: float,
    samples: list[str],
    rss: list[tuple[float, float]],
    connections: int,
    busy: dict[str, float],
) -> int:
    everything = sorted(latency for op in stats.values() for latency in op.latencies)
    total = len(everything)
    unexpected = sum(op.unexpected for op in stats.values())
    transport = sum(op.transport_errors for op in stats.values())
    server_errors = sum(
        count for op in stats.values() for status, count in op.statuses.items() if status >= 500
    )
    peak = max(value for _, value in rss)
    startup = rss[0][1]
    # Early growth is pools and caches filling; the trend over the second half is what a
    # leak looks like.
    first = [(at, value) for at, value in rss if at <= elapsed / 2]
    settled = [(at, value) for at, value in rss if at >= elapsed / 2]
    first_slope = _slope_per_minute(first) if len(first) >= 3 else 0.0
    slope = _slope_per_minute(settled) if len(settled) >= 3 else 0.0
    growth = rss[-1][1] - settled[0][1] if settled else 0.0
    flat = slope <= RSS_FLAT_MIB_PER_MINUTE
    checks = {
        "zero errors": unexpected == 0 and transport == 0,
        f"RSS at start < {RSS_STARTUP_TARGET_MIB:.0f} MiB": startup < RSS_STARTUP_TARGET_MIB,
        f"RSS peak < {RSS_PEAK_TARGET_MIB:.0f} MiB": peak < RSS_PEAK_TARGET_MIB,
        "RSS flat": flat,
    }
    print()
    print(
        f"scripts/bench --soak: {elapsed:.0f} s, {connections} connections, {total} requests,"
        f" {total / elapsed:.0f} req/s"
    )
    print(
        f"{'operation':<34} {'count':>7} {'p50 ms':>7} {'p99 ms':>8} {'unexpected':>10}  statuses"
    )
    for label in sorted(stats):
        op = stats[label]
        latencies = sorted(op.latencies)
        statuses = ", ".join(f"{status}x{count}" for status, count in sorted(op.statuses.items()))
        print(
            f"{label:<34} {len(latencies):>7} {_percentile(latencies, 50) * 1000:>7.1f}"
            f" {_percentile(latencies, 99) * 1000:>8.1f} {op.unexpected + op.transport_errors:>10}"
            f"  {statuses}"
        )
    print(
        f"{'all':<34} {total:>7} {_percentile(everything, 50) * 1000:>7.1f}"
        f" {_percentile(everything, 99) * 1000:>8.1f} {unexpected + transport:>10}"
    )
    print(f"unexpected statuses {unexpected} (5xx: {server_errors}); transport errors {transport}")
    for sample in samples:
        print(f"  e.g. {sample}")
    print(f"CPU: API process {busy['api']:.0%} of a core, load generator {busy['client']:.0%}")
    print("API RSS (MiB): " + ", ".join(f"{at:.0f}s {value:.1f}" for at, value in rss))
    print(
        f"RSS at start {startup:.1f} MiB, peak {peak:.1f} MiB; trend first half"
        f" {first_slope:+.2f} MiB/min, second half {slope:+.2f} MiB/min ({growth:+.1f} MiB;"
        f" flat: <= {RSS_FLAT_MIB_PER_MINUTE} MiB/min)"
    )
    for name, passed in checks.items():
        print(f"  {name:<16} {'PASS' if passed else 'FAIL'}")
    passed_all = all(checks.values())
    print("\nresult: " + ("PASS" if passed_all else "FAIL"))
    if args.json:
        report = {
            "mode": "soak",
            "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "commit": _git_commit(),
            "seconds": round(elapsed, 1),
            "connections": connections,
            "requests": total,
            "rps": round(total / elapsed, 1),
            "p50_ms": round(_percentile(everything, 50) * 1000, 2),
            "p99_ms": round(_percentile(everything, 99) * 1000, 2),
            "unexpected": unexpected,
            "server_errors": server_errors,
            "transport_errors": transport,
            "operations": {
                label: {
                    "count": len(op.latencies),
                    "p50_ms": round(_percentile(sorted(op.latencies), 50) * 1000, 2),
                    "p99_ms": round(_percentile(sorted(op.latencies), 99) * 1000, 2),
                    "statuses": {str(k): v for k, v in sorted(op.statuses.items())},
                    "unexpected": op.unexpected,
                    "transport_errors": op.transport_errors,
                }
                for label, op in sorted(stats.items())
            },
            "rss_mib": [[round(at, 1), round(value, 1)] for at, value in rss],
            "rss_trend_mib_per_min": round(slope, 2),
            "cpu_busy": {name: round(value, 3) for name, value in busy.items()},
            "checks": checks,
            "passed": passed_all,
        }
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        log(f"wrote {args.json}")
    return 0 if passed_all else 1


# --- scaling mode (--workers) ---------------------------------------------------------------

# Fixed work per job: ten progress reports (a row update and a publish each), no pauses.
DEMO_JOB = {"kind": "demo", "params": {"steps": 10, "delay_ms": 0}}
# The job limits would refuse a batch of hundreds from four users. The sweep (a recovery
# path, not throughput) is kept out: while a backlog drains, a sweep that reads a job as
# queued can put it back to queued just after a worker started it, which then ends
# "failed unexpectedly" (18 and 38 of 400 jobs in two runs at the default 10 s). The
# environment's own values win, e.g. JOB_SWEEP_INTERVAL_SECONDS=10 to see that race.
SCALING_ENV = {
    "JOB_LIMIT_PER_MINUTE": "0",
    "MAX_OPEN_JOBS_PER_USER": "0",
    "JOB_SWEEP_INTERVAL_SECONDS": "3600",
}
SCALING_ENDPOINTS = ("me", "children")
FINISHED_STATUSES = ["complete", "failed", "aborted"]


async def _enqueue_demo_jobs(stack: Stack, count: int) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:

        async def enqueue(numbers: range) -> None:
            for number in numbers:
                headers = stack.headers(SOAK_USERS[number % len(SOAK_USERS)])
                body = _expect(await client.post("/v1/jobs", json=DEMO_JOB, headers=headers), 202)
                ids.append(uuid.UUID(body["job_id"]))

        await asyncio.gather(*(enqueue(range(start, count, 10)) for start in range(10)))
    return ids


async def _job_throughput(
    stack: Stack, workers: list[subprocess.Popen[bytes]], ids: list[uuid.UUID]
) -> dict[str, Any]:
    """Jobs finished per second once every worker process is up (startup not counted)."""
    import redis.asyncio as aioredis

    redis = aioredis.Redis.from_url(stack.env["REDIS_URL"])
    database = await asyncpg.connect(asyncpg_dsn(stack.database_url))
    try:
        # The queue fills before any worker runs; count from when the last one says alive.
        pattern = f"jobs:alive:{stack.env['SAQ_QUEUE']}:*"
        while len([key async for key in redis.scan_iter(match=pattern)]) < len(workers):
            if any(worker.poll() is not None for worker in workers):
                raise RuntimeError("a worker process exited during startup")
            await asyncio.sleep(0.05)
        all_up = dt.datetime.now(dt.UTC)
        pids = [worker.pid for worker in workers]
        cpu_at_start = _tree_cpu_seconds(pids)
        deadline = time.monotonic() + 600
        query = "SELECT count(*), max(updated_at) FROM jobs WHERE id = ANY($1) AND status = ANY($2)"
        while (row := await database.fetchrow(query, ids, FINISHED_STATUSES))[0] < len(ids):
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {row[0]} of {len(ids)} jobs finished in 600 s")
            await asyncio.sleep(0.2)
        cpu_seconds = _tree_cpu_seconds(pids) - cpu_at_start
        after = await database.fetchval(
            "SELECT count(*) FROM jobs WHERE id = ANY($1) AND updated_at > $2", ids, all_up
        )
        failures = await database.fetch(
            "SELECT error, count(*) FROM jobs WHERE id = ANY($1) AND status <> 'complete'"
            " GROUP BY error",
            ids,
        )
    finally:
        await database.close()
        await redis.aclose()
    seconds = (row[1] - all_up).total_seconds()
    return {
        "jobs": len(ids),
        "measured_jobs": after,
        "seconds": round(seconds, 2),
        "jobs_per_s": round(after / seconds, 1),
        # Cores the worker processes kept busy (the rest: PostgreSQL, Redis, idle).
        "worker_cores": round(cpu_seconds / max(seconds, 0.001), 2),
        "failed": sum(count for _, count in failures),
        "errors": {str(error): count for error, count in failures},
    }


def measure_workers(
    stack: Stack, processes: int, count: int, log_path: Path | None
) -> dict[str, Any]:
    # The whole batch waits in the queue before the first worker starts.
    ids = asyncio.run(_enqueue_demo_jobs(stack, count))
    with contextlib.ExitStack() as running:
        sink: IO[Any] | int = subprocess.DEVNULL
        if log_path is not None:
            sink = running.enter_context(log_path.open("ab"))
        workers = [
            running.enter_context(_server(f"worker {n}", WORKER_COMMAND, stack.env, sink))
            for n in range(processes)
        ]
        result: dict[str, Any] = asyncio.run(_job_throughput(stack, workers, ids))
    log(f"{processes} worker(s): {result['jobs_per_s']} jobs/s ({result})")
    return {"workers": processes, **result}


@contextlib.contextmanager
def edge_in_front(api_ports: Sequence[int], workdir: Path) -> Iterator[tuple[str, int]]:
    """scripts/edge/nginx.conf unchanged (as tests/test_edge.py runs it) before the APIs;
    yields its URL and its master's pid."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise SystemExit("scripts/bench --workers: nginx is not installed (apt-get install nginx)")
    state = Path(tempfile.mkdtemp(prefix="edge-", dir=workdir))
    shutil.copy(REPO_ROOT / "scripts" / "edge" / "nginx.conf", state / "nginx.conf")
    port = free_port()
    (state / "listen.conf").write_text(f"listen 127.0.0.1:{port};\n")
    upstream = "".join(f"server 127.0.0.1:{api_port};\n" for api_port in api_ports)
    (state / "upstream.conf").write_text(upstream)
    command = [nginx, "-p", str(state), "-c", str(state / "nginx.conf"), "-e", "stderr"]
    command += ["-g", f"daemon off; pid {state / 'nginx.pid'};"]
    with _server("edge", command, {**os.environ}, subprocess.DEVNULL) as process:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/health", timeout=30, process=process)
        yield url, process.pid


def _tree_cpu_seconds(pids: Sequence[int]) -> float:
    """CPU time of these processes and their children (nginx's workers) so far."""
    import psutil

    processes = [psutil.Process(pid) for pid in pids]
    processes += [child for process in processes for child in process.children(recursive=True)]
    return sum(sum(process.cpu_times()[:2]) for process in processes)


def _client_cpu_seconds() -> float:
    """CPU time of this process's finished children: the load generator, once it ran."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure_apis(
    stack: Stack,
    processes: int,
    measured: Sequence[Measured],
    load: LoadGenerator,
    args: argparse.Namespace,
    workdir: Path,
) -> dict[str, tuple[LoadResult, list[float]]]:
    """One run per endpoint through the edge before `processes` API processes: each
    endpoint's result and the cores busy meanwhile (API processes, nginx, load generator)."""
    api_pids = [stack.api.pid]
    ports = [int(urlsplit(stack.api_url).port or 0)]
    with contextlib.ExitStack() as running:
        for _ in range(processes - 1):
            port = free_port()
            extra = running.enter_context(
                _server("API", _uvicorn(args.app, port), stack.env, subprocess.DEVNULL)
            )
            wait_for_http(f"http://127.0.0.1:{port}/health", timeout=60, process=extra)
            api_pids.append(extra.pid)
            ports.append(port)
        edge_url, edge_pid = running.enter_context(edge_in_front(ports, workdir))
        results = {}
        for item in measured:
            url = item.url.replace(stack.api_url, edge_url, 1)
            load.run(url, item.headers, args.warmup)
            before = [_tree_cpu_seconds(api_pids), _tree_cpu_seconds([edge_pid])]
            client_before = _client_cpu_seconds()
            result = load.run(url, item.headers, args.duration)
            after = [_tree_cpu_seconds(api_pids), _tree_cpu_seconds([edge_pid])]
            spent = [b - a for a, b in zip(before, after, strict=True)]
            spent.append(_client_cpu_seconds() - client_before)
            results[item.endpoint.name] = (result, [value / result.seconds for value in spent])
            log(f"{processes} API process(es), {item.endpoint.name}: {result.rps:.0f} req/s")
    return results


def _job_row(processes: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    errors: Counter[str] = Counter()
    for run in runs:
        errors.update(run["errors"])
    return {
        "workers": processes,
        "jobs_per_s": statistics.median(run["jobs_per_s"] for run in runs),
        "worker_cores": statistics.median(run["worker_cores"] for run in runs),
        "failed": sum(run["failed"] for run in runs),
        "errors": dict(errors),
        "runs": runs,
    }


def _api_row(
    processes: int, endpoint: str, runs: list[tuple[LoadResult, list[float]]]
) -> dict[str, Any]:
    busy = zip(*(cores for _, cores in runs), strict=True)
    cores = [round(statistics.median(column), 2) for column in busy]
    return {
        "api_processes": processes,
        "endpoint": endpoint,
        "rps_median": round(statistics.median(result.rps for result, _ in runs), 1),
        "p99_ms_median": round(statistics.median(result.p99_ms for result, _ in runs), 2),
        "errors": sum(result.errors for result, _ in runs),
        # Cores kept busy (medians): the API processes together, nginx, the load generator.
        "cores": dict(zip(("api", "edge", "load_generator"), cores, strict=True)),
        "rps_runs": [round(result.rps, 1) for result, _ in runs],
    }


def scaling(args: argparse.Namespace) -> int:
    """Job throughput by worker processes, API throughput by API processes behind the edge.

    Rounds interleave the counts (1, 2, 4, 1, 2, 4, ...), so a neighbour's load that comes
    and goes slows every count alike; each figure is the median of its rounds.
    """
    # Nothing pinned: extra processes may use every core, as replicas would use nodes.
    cpus = Cpus(None, None)
    job_runs: dict[int, list[dict[str, Any]]] = defaultdict(list)
    api_runs: dict[tuple[int, str], list[tuple[LoadResult, list[float]]]] = defaultdict(list)
    with signals_raise_keyboard_interrupt(), _stopping_at_exit() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        load = pick_load_generator(cpus, args.connections, workdir, args.loadgen)
        api = start_stack(
            stack,
            cpus,
            baseline=False,
            worker=False,
            api_log=args.api_log,
            app=args.app,
            extra_env={**SCALING_ENV, **{k: os.environ[k] for k in SCALING_ENV if k in os.environ}},
        )
        load_before = os.getloadavg()
        for _ in range(args.rounds):
            for processes in args.workers:
                run = measure_workers(api, processes, args.job_count, args.api_log)
                job_runs[processes].append(run)
        # Seeded once: every API count reads the same rows.
        wanted = [endpoint for endpoint in ENDPOINTS if endpoint.name in SCALING_ENDPOINTS]
        measured, skipped, _ = _prepare(api, wanted)
        for gap in skipped:
            log(f"{gap.endpoint.name}: skipped ({gap.reason})")
        for _ in range(args.rounds):
            for processes in args.apis:
                results = measure_apis(api, processes, measured, load, args, workdir)
                for name, outcome in results.items():
                    api_runs[(processes, name)].append(outcome)
        load_after = os.getloadavg()
    jobs = [_job_row(processes, runs) for processes, runs in job_runs.items()]
    apis = [_api_row(processes, name, runs) for (processes, name), runs in api_runs.items()]
    print()
    print(
        f"scripts/bench --workers: {os.cpu_count()} cores, load average {load_before[0]:.2f}"
        f" before, {load_after[0]:.2f} after; load generator {load.name}"
    )
    print(
        f"median of {args.rounds} interleaved rounds; demo jobs {json.dumps(DEMO_JOB['params'])},"
        f" {args.job_count} per run, worker startup not counted; {args.duration:g} s per API run"
    )
    print(
        f"{'worker processes':<18} {'jobs/s':>8} {'x first':>8} {'failed':>7}"
        f" {'cores busy: workers':>20}"
    )
    for row in jobs:
        factor = row["jobs_per_s"] / jobs[0]["jobs_per_s"]
        print(
            f"{row['workers']:<18} {row['jobs_per_s']:>8.1f} {factor:>8.2f} {row['failed']:>7}"
            f" {row['worker_cores']:>20.2f}"
        )
    for row in jobs:
        if row["errors"]:
            print(f"  {row['workers']} worker process(es), failed jobs: {row['errors']}")
    print(
        f"\n{'API processes':<14} {'endpoint':<10} {'req/s':>7} {'p99 ms':>7} {'errors':>6}"
        f"  {'cores busy: API':>15} {'edge':>5} {'load':>5}   (through the edge, nginx)"
    )
    for row in apis:
        cores = row["cores"]
        print(
            f"{row['api_processes']:<14} {row['endpoint']:<10} {row['rps_median']:>7.0f}"
            f" {row['p99_ms_median']:>7.2f} {row['errors']:>6}  {cores['api']:>15.2f}"
            f" {cores['edge']:>5.2f} {cores['load_generator']:>5.2f}"
        )
    if args.json:
        report = {
            "mode": "scaling",
            "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "commit": _git_commit(),
            "load_average": {"before": load_before[0], "after": load_after[0]},
            "load_generator": load.name,
            "jobs": jobs,
            "apis": apis,
        }
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        log(f"wrote {args.json}")
    failed = any(row["failed"] for row in jobs) or any(row["errors"] for row in apis)
    return 1 if failed else 0


# --- jobs: POST /v1/jobs -> SAQ -> worker ------------------------------------------------------

JOB_WAIT_S = 300.0
# Limits stay on (they are part of a POST's cost) but far above what one bench user sends.
JOB_BENCH_ENV = {"JOB_LIMIT_PER_MINUTE": "1000000000", "MAX_OPEN_JOBS_PER_USER": "100000000"}


@dataclass
class JobRound:
    jobs: int
    posted_s: float
    wall_s: float
    api_cpu_s: float
    worker_cpu_s: float
    statuses: dict[int, int]

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / self.wall_s

    @property
    def worker_ms_per_job(self) -> float:
        return 1000 * self.worker_cpu_s / self.jobs

    @property
    def api_ms_per_post(self) -> float:
        return 1000 * self.api_cpu_s / self.jobs


async def _count_complete(connection: asyncpg.Connection, since: dt.datetime) -> int:
    # Plain SQL on purpose: the bench reads the table as an outsider would.
    count = await connection.fetchval(
        "SELECT count(*) FROM jobs WHERE status = 'complete' AND created_at >= $1", since
    )
    return int(count)


async def _job_round(
    stack: Stack, count: int, steps: int, in_flight: int, worker_pid: int
) -> JobRound:
    """POST `count` demo jobs, `in_flight` at a time, and wait until all are complete."""
    body = {"kind": "demo", "params": {"steps": steps, "delay_ms": 0}}
    statuses: Counter[int] = Counter()
    connection = await asyncpg.connect(asyncpg_dsn(stack.database_url))
    try:
        since = await connection.fetchval("SELECT now()")
        api_cpu, worker_cpu = process_cpu_seconds(stack.api.pid), process_cpu_seconds(worker_pid)
        limits = httpx.Limits(max_connections=in_flight)
        async with httpx.AsyncClient(
            base_url=stack.api_url, headers=stack.headers(BENCH_USER), limits=limits, timeout=30
        ) as client:
            gate = asyncio.Semaphore(in_flight)

            async def post() -> None:
                async with gate:
                    response = await client.post("/v1/jobs", json=body)
                statuses[response.status_code] += 1

            started = time.monotonic()
            await asyncio.gather(*(post() for _ in range(count)))
            posted = time.monotonic() - started
        deadline = started + JOB_WAIT_S
        while (done := await _count_complete(connection, since)) < count:
            if statuses[202] < count or time.monotonic() > deadline:
                answers = dict(statuses)
                raise SystemExit(f"scripts/bench --jobs: {done} of {count} complete; {answers}")
            await asyncio.sleep(0.02)
        wall = time.monotonic() - started
        return JobRound(
            jobs=count,
            posted_s=posted,
            wall_s=wall,
            api_cpu_s=process_cpu_seconds(stack.api.pid) - api_cpu,
            worker_cpu_s=process_cpu_seconds(worker_pid) - worker_cpu,
            statuses=dict(statuses),
        )
    finally:
        await connection.close()


def jobs(args: argparse.Namespace) -> int:
    cpus = Cpus.pick()
    # As the Celery side-by-side driver places them: the worker alone on one core, the
    # API with the driver on the other.
    api_cpu, worker_cpu = cpus.load, cpus.server
    rounds: list[JobRound] = []
    with signals_raise_keyboard_interrupt(), _stopping_at_exit() as stack:
        api = start_stack(
            stack,
            cpus,
            baseline=False,
            worker=True,
            api_log=args.api_log,
            app=args.app,
            extra_env=JOB_BENCH_ENV,
            api_cpu=api_cpu,
            worker_cpu=worker_cpu,
        )
        if api.worker_pid is None:
            raise SystemExit("scripts/bench --jobs: no worker (app/worker.py) to run the jobs")
        load_before = os.getloadavg()
        # Warm-up, not measured: pools open, the first-call costs are paid.
        asyncio.run(_job_round(api, 20, args.job_steps, args.connections, api.worker_pid))
        for round_number in range(1, args.rounds + 1):
            result = asyncio.run(
                _job_round(api, args.job_count, args.job_steps, args.connections, api.worker_pid)
            )
            rounds.append(result)
            log(
                f"round {round_number}/{args.rounds}  {result.jobs_per_s:6.1f} jobs/s"
                f"  worker {result.worker_ms_per_job:5.2f} ms CPU/job"
                f"  API {result.api_ms_per_post:5.2f} ms CPU/POST  answers {result.statuses}"
            )
    summary = {
        "jobs_per_s": statistics.median(r.jobs_per_s for r in rounds),
        "worker_cpu_ms_per_job": statistics.median(r.worker_ms_per_job for r in rounds),
        "api_cpu_ms_per_post": statistics.median(r.api_ms_per_post for r in rounds),
    }
    print(
        f"\nscripts/bench --jobs: {args.job_count} demo jobs x {args.job_steps} steps (delay 0),"
        f" {args.connections} POSTs in flight, median of {args.rounds} rounds; worker on cpu"
        f" {worker_cpu or 'any'}, API + driver on cpu {api_cpu or 'any'}; load average"
        f" before {load_before[0]:.2f}"
    )
    print(f"{'jobs/s':>8} {'worker CPU ms/job':>18} {'API CPU ms/POST':>16}")
    print(
        f"{summary['jobs_per_s']:8.1f} {summary['worker_cpu_ms_per_job']:18.2f}"
        f" {summary['api_cpu_ms_per_post']:16.2f}"
    )
    print("(CPU per job is steadier than jobs/s on a shared machine.)")
    if args.json:
        report = {
            "mode": "jobs",
            "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "commit": _git_commit(),
            "settings": {
                "jobs": args.job_count,
                "steps": args.job_steps,
                "in_flight": args.connections,
                "rounds": args.rounds,
                "worker_cpu": worker_cpu,
                "api_cpu": api_cpu,
                "load_average_before": load_before[0],
            },
            "rounds": [
                {**r.__dict__, "statuses": {str(k): v for k, v in r.statuses.items()}}
                for r in rounds
            ],
            "summary": summary,
        }
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        log(f"wrote {args.json}")
    if args.celery_peer:
        return _run_celery_peer(args)
    return 0


def _run_celery_peer(args: argparse.Namespace) -> int:
    """The side-by-side driver in DIR (run.py), on this checkout, with the same work."""
    driver = Path(args.celery_peer).resolve() / "run.py"
    if not driver.exists():
        raise SystemExit(f"scripts/bench --celery-peer: no run.py in {driver.parent}")
    command = [
        sys.executable,
        str(driver),
        "--jobs",
        str(args.job_count),
        "--steps",
        str(args.job_steps),
        "--conc",
        str(args.connections),
        "--rounds",
        str(args.rounds),
    ]
    log(f"side by side: {' '.join(command)}")
    env = {
        **os.environ,
        "BENCH_MAIN": str(REPO_ROOT),
        # The driver's tokens name its own client (azp "bench-api"), and it sends as one
        # user: like for like with Celery, which has no per-user share of the worker, the
        # share is above any worker's concurrency.
        "KEYCLOAK_ALLOWED_CLIENTS": "bench-api",
        "MAX_ACTIVE_JOBS_PER_USER": "100000000",
    }
    return subprocess.run(command, cwd=REPO_ROOT, env=env).returncode


# --- command line ---------------------------------------------------------------------------


def _counts(text: str) -> list[int]:
    counts = [int(item) for item in text.split(",") if item.strip()]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("want positive whole numbers, e.g. 1,2,4")
    return counts


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Endpoints: " + ", ".join(f"{e.name} ({e.path})" for e in ENDPOINTS),
    )
    parser.add_argument("--soak", action="store_true", help="mixed read/write soak instead")
    parser.add_argument(
        "--workers",
        type=_counts,
        metavar="N,N,...",
        help="scaling instead: demo-job throughput with these many SAQ worker processes, and"
        " API throughput with --apis processes behind the edge (e.g. --workers 1,2,4)",
    )
    parser.add_argument(
        "--apis", type=_counts, default=[1, 2], metavar="N,N,...", help="with --workers (1,2)"
    )
    parser.add_argument(
        "--jobs", action="store_true", help="the jobs path (POST /v1/jobs -> SAQ -> worker) instead"
    )
    parser.add_argument(
        "--job-count", type=int, help="jobs per --jobs round (400) or --workers run (600)"
    )
    parser.add_argument("--job-steps", type=int, default=5, help="steps per demo job (5)")
    parser.add_argument(
        "--celery-peer",
        metavar="DIR",
        help="with --jobs: also run DIR/run.py, a side-by-side driver for a Celery stack"
        " doing the same work, against this checkout",
    )
    parser.add_argument(
        "--duration", type=float, default=None, help="seconds per run (6), or of the soak (120)"
    )
    parser.add_argument(
        "--connections", type=int, default=None, help="concurrent connections (32; soak 50)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (3)")
    parser.add_argument(
        "--together",
        action="store_true",
        help="load the baseline and each endpoint at the same time on the shared server core"
        " (steadier on a busy machine)",
    )
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds per target")
    parser.add_argument(
        "--only", action="append", metavar="NAME[,NAME]", help="measure only these endpoints"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument(
        "--profile", metavar="NAME", help="py-spy the server while NAME (or baseline) is loaded"
    )
    parser.add_argument(
        "--tracing",
        action="store_true",
        help="also measure the API with OpenTelemetry on (sampler ratio 1.0 and 0.1)",
    )
    parser.add_argument(
        "--api-log",
        type=Path,
        metavar="FILE",
        help="keep the API's (and --workers' workers') JSON logs (default: dropped)",
    )
    parser.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator for throughput runs (auto: wrk when installed)",
    )
    parser.add_argument(
        "--app",
        default="app.main:app",
        metavar="MODULE:ATTR",
        help="the ASGI app served as the API (default app.main:app); for trying variants",
    )
    args = parser.parse_args(argv)
    args.duration_given = args.duration is not None
    args.connections_given = args.connections is not None
    args.duration = 6.0 if args.duration is None else args.duration
    args.connections = (16 if args.jobs else 32) if args.connections is None else args.connections
    if args.job_count is None:
        args.job_count = 600 if args.workers else 400
    if args.duration <= 0 or args.connections <= 0 or args.rounds <= 0:
        parser.error("--duration, --connections and --rounds must be positive")
    if args.jobs and (args.job_count <= 0 or not 1 <= args.job_steps <= 100):
        parser.error("--job-count must be positive and --job-steps 1..100")
    if args.celery_peer and not args.jobs:
        parser.error("--celery-peer goes with --jobs")
    if args.profile and args.profile not in {e.name for e in (BASELINE, *ENDPOINTS)}:
        parser.error(f"--profile: unknown endpoint {args.profile!r}")
    return args


def main(argv: list[str]) -> int:
    if argv[:1] == ["--loadgen"]:  # internal: the fallback load generator's child process
        return _loadgen_main(argv[1])
    args = parse_args(argv)
    try:
        if args.workers:
            return scaling(args)
        if args.jobs:
            return jobs(args)
        return soak(args) if args.soak else throughput(args)
    except KeyboardInterrupt:
        log("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
