"""WebSocket fan-out benchmark: many listeners on one API process, watching a few jobs.

usage: .venv/bin/python scripts/bench_ws.py [--listeners 1000] [--jobs 10] [--steps 20]
           [--interval-ms 100] [--client-processes 2] [--timeout 180] [--uvicorn-args "..."]

Starts a private stack (its own database on DATABASE_URL's server or an embedded
PostgreSQL, REDIS_URL or an embedded Redis, the dev token issuer) and ONE API process
(uvicorn, as the Dockerfile runs it), creates `--jobs` demo jobs (no worker serves their
queue, so they stay queued) and connects `--listeners` WebSockets spread evenly over them,
from `--client-processes` separate processes so the clients' own work does not queue
behind the publisher. Then this process plays the worker for every job with the app's own
progress writer (commit the row, then PUBLISH), one update per `--interval-ms` per job,
the jobs staggered. Publish time is taken just before PUBLISH, receive time when a client
reads the message; both are CLOCK_MONOTONIC, shared by all processes on the machine.

Reports whether every listener got every update, p50/p95/p99/max publish->receive
latency, the API process's Redis connections (CLIENT LIST matched to its sockets), its
RSS and CPU. Targets: p99 < 100 ms, <= 3 Redis connections per process. The API's two
socket caps are set to `--listeners`, since every listener is the same user on one process.
Bounded: everything stops after `--timeout` seconds, pass or fail. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import multiprocessing
import os
import resource
import shlex
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import httpx
import msgspec
import psutil
import redis
import websockets
from devstack import (
    REPO_ROOT,
    asyncpg_dsn,
    backing_services,
    dev_issuer,
    free_port,
    log,
    spawn,
    stop_process,
    wait_for_http,
    with_database,
)

sys.path.insert(0, str(REPO_ROOT))

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import create_async_engine

from app.jobs.progress import ProgressPublisher
from app.jobs.recorder import JobStateWriter
from app.jobs.repository import JobRepository
from app.jobs.schemas import ProgressMessage

STATE_DIR = REPO_ROOT / ".devdata" / "bench"
Key = tuple[str, str, int]  # job id, status, step
# (listener index, key, received at) for every message after each listener's first.
Received = list[tuple[int, Key, float]]


class TimedWriter(JobStateWriter):
    """The worker's progress writer, noting when each message is handed to Redis."""

    def __init__(
        self, repository: JobRepository, publisher: ProgressPublisher, published: dict[Key, float]
    ) -> None:
        super().__init__(repository, publisher)
        self._published = published

    async def publish(self, message: ProgressMessage) -> None:
        self._published[(message.job_id, message.status, message.step)] = time.perf_counter()
        await super().publish(message)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--listeners", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--interval-ms", type=int, default=100)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=180)
    parser.add_argument("--uvicorn-args", default="", help="extra uvicorn flags, quoted")
    return parser.parse_args(argv)


# --- listener processes -----------------------------------------------------------------


async def _listen(index: int, url: str, received: Received, first: asyncio.Future[None]) -> None:
    async with websockets.connect(url, open_timeout=60, max_queue=None) as socket:
        async for raw in socket:
            now = time.perf_counter()
            if not first.done():
                first.set_result(None)  # the current state: this listener is subscribed
                continue
            message = msgspec.json.decode(raw)
            received.append((index, (message["job_id"], message["status"], message["step"]), now))


async def _listeners(urls: list[tuple[int, str]], pipe: Connection) -> None:
    received: Received = []
    gate = asyncio.Semaphore(50)  # a steady stream of handshakes, not a flood
    tasks: list[asyncio.Task[None]] = []

    async def connect(index: int, url: str) -> None:
        async with gate:
            first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(_listen(index, url, received, first))
            tasks.append(task)
            await asyncio.wait((first, task), return_when=asyncio.FIRST_COMPLETED)
            if not first.done():
                task.result()  # raises why it failed

    await asyncio.gather(*(connect(index, url) for index, url in urls))
    # The sockets are this process's long-lived objects: keep full collections from
    # walking them all during the measurement (a client-side artefact otherwise).
    gc.collect()
    gc.freeze()
    pipe.send(("ready", len(tasks)))
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failed = sum(1 for result in results if isinstance(result, BaseException))
    pipe.send(("done", received, failed))


def _listener_process(urls: list[tuple[int, str]], pipe: Connection) -> None:
    try:
        asyncio.run(_listeners(urls, pipe))
    except Exception as exc:
        pipe.send(("error", repr(exc)))


# --- the measured run -------------------------------------------------------------------


async def _play_worker(
    writer: JobStateWriter, job_id: uuid.UUID, steps: int, interval: float, offset: float
) -> None:
    """What the worker does for a demo job: claim, one report per step, complete."""
    await asyncio.sleep(offset)
    await writer.claim(job_id, attempt=1)
    for step in range(1, steps + 1):
        await asyncio.sleep(interval)
        await writer.report(job_id, step, steps, f"Step {step} of {steps} done")
    await asyncio.sleep(interval)
    await writer.complete(job_id, {"kind": "demo", "steps": steps, "message": "done"}, "done")


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _redis_connections(pid: int, redis_url: str) -> list[str]:
    """The API process's entries in Redis's CLIENT LIST (matched by client address)."""
    local_ports = {c.laddr.port for c in psutil.Process(pid).net_connections("inet") if c.raddr}
    client = redis.Redis.from_url(redis_url)
    try:
        clients: list[dict[str, Any]] = client.client_list()  # type: ignore[assignment]
    finally:
        client.close()
    return [
        f"{c['addr']} cmd={c['cmd']} sub={c['sub']}"
        for c in clients
        if int(str(c["addr"]).rsplit(":", 1)[1]) in local_ports
    ]


async def _receive(pipe: Connection, expected: str) -> tuple[Any, ...]:
    message: tuple[Any, ...] = await asyncio.to_thread(pipe.recv)
    if message[0] != expected:
        raise RuntimeError(f"a listener process failed: {message[1:]}")
    return message


@dataclass
class Outcome:
    job_ids: list[str]
    published: dict[Key, float]
    received: Received
    failed_sockets: int
    connect_s: float
    connections_idle: list[str]
    connections_busy: list[str]
    rss_idle: int
    rss_connected: int
    rss_after: int
    cpu_api: float
    cpu_clients: float


async def _run(args: argparse.Namespace, env: dict[str, str], base: str, api_pid: int) -> Outcome:
    token = env["BENCH_TOKEN"]
    api = psutil.Process(api_pid)
    rss_idle = api.memory_info().rss
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as http:
        job_ids = []
        for _ in range(args.jobs):
            response = await http.post("/v1/jobs", json={"kind": "demo"})
            response.raise_for_status()
            job_ids.append(response.json()["job_id"])

    ws_base = base.replace("http://", "ws://")
    urls = [
        (index, f"{ws_base}/ws/jobs/{job_ids[index % len(job_ids)]}?token={token}")
        for index in range(args.listeners)
    ]
    context = multiprocessing.get_context("spawn")
    pipes, processes = [], []
    started = time.perf_counter()
    log(f"connecting {args.listeners} listeners from {args.client_processes} processes...")
    for share in range(args.client_processes):
        parent, child = context.Pipe()
        process = context.Process(
            target=_listener_process, args=(urls[share :: args.client_processes], child)
        )
        process.start()
        pipes.append(parent)
        processes.append(process)
    try:
        for pipe in pipes:
            await _receive(pipe, "ready")
        connect_s = time.perf_counter() - started
        log(f"{args.listeners} listeners subscribed in {connect_s:.1f} s")
        rss_connected = api.memory_info().rss
        connections_idle = _redis_connections(api_pid, env["REDIS_URL"])

        published: dict[Key, float] = {}
        engine = create_async_engine(env["DATABASE_URL"], pool_size=args.jobs)
        publisher = Redis.from_url(env["REDIS_URL"])
        writer = TimedWriter(JobRepository(engine), ProgressPublisher(publisher), published)
        interval = args.interval_ms / 1000
        clients = [psutil.Process(process.pid) for process in processes]
        cpu_api, cpu_clients = _cpu_seconds(api), sum(map(_cpu_seconds, clients))
        wall = time.perf_counter()
        log(f"publishing {args.steps + 2} updates per job, every {args.interval_ms} ms per job")
        try:
            await asyncio.gather(
                *(
                    _play_worker(
                        writer, uuid.UUID(job_id), args.steps, interval, i * interval / args.jobs
                    )
                    for i, job_id in enumerate(job_ids)
                )
            )
            connections_busy = _redis_connections(api_pid, env["REDIS_URL"])
            cpu_api = (_cpu_seconds(api) - cpu_api) / (time.perf_counter() - wall)
            cpu_clients = (sum(map(_cpu_seconds, clients)) - cpu_clients) / (
                time.perf_counter() - wall
            )
        finally:
            await publisher.aclose()
            await engine.dispose()
        received: Received = []
        failed = 0
        for pipe in pipes:  # every socket closes after the terminal message
            _, part, part_failed = await _receive(pipe, "done")
            received += part
            failed += part_failed
        return Outcome(
            job_ids=job_ids,
            published=published,
            received=received,
            failed_sockets=failed,
            connect_s=connect_s,
            connections_idle=connections_idle,
            connections_busy=connections_busy,
            rss_idle=rss_idle,
            rss_connected=rss_connected,
            rss_after=api.memory_info().rss,
            cpu_api=cpu_api,
            cpu_clients=cpu_clients,
        )
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()


def _percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _report(args: argparse.Namespace, outcome: Outcome) -> int:
    per_listener: dict[int, set[Key]] = {}
    latencies: list[float] = []
    for index, key, received_at in outcome.received:
        per_listener.setdefault(index, set()).add(key)
        latencies.append((received_at - outcome.published[key]) * 1000)
    missing = 0
    for index in range(args.listeners):
        job_id = outcome.job_ids[index % len(outcome.job_ids)]
        expected = {key for key in outcome.published if key[0] == job_id}
        missing += len(expected - per_listener.get(index, set()))
    latencies.sort()
    p50, p95, p99 = (_percentile(latencies, share) for share in (0.5, 0.95, 0.99))
    connections = max(len(outcome.connections_idle), len(outcome.connections_busy))
    ok = missing == 0 and outcome.failed_sockets == 0 and p99 < 100 and connections <= 3
    mib = 2**20
    expected_total = len(outcome.published) * args.listeners // args.jobs
    lines = [
        "",
        "WebSocket fan-out benchmark (scripts/bench_ws.py)",
        f"  listeners           {args.listeners} on one API process, {args.jobs} jobs,"
        f" subscribed in {outcome.connect_s:.1f} s",
        f"  updates             {len(outcome.published)} published"
        f" ({args.steps + 2} per job, every {args.interval_ms} ms per job)",
        f"  delivered           {len(latencies)} of {expected_total} messages"
        f" (missing {missing}, failed sockets {outcome.failed_sockets})",
        f"  publish->receive    p50 {p50:.1f} ms  p95 {p95:.1f} ms  p99 {p99:.1f} ms"
        f"  max {latencies[-1]:.1f} ms  (target p99 < 100 ms)",
        f"  API Redis conns     {len(outcome.connections_idle)} while idle,"
        f" {len(outcome.connections_busy)} while publishing (target <= 3)",
        *(f"                        {line}" for line in outcome.connections_busy),
        f"  API RSS             {outcome.rss_idle / mib:.1f} MiB before the sockets,"
        f" {outcome.rss_connected / mib:.1f} MiB with them, {outcome.rss_after / mib:.1f} MiB"
        " after publishing",
        f"  CPU (publishing)    API {outcome.cpu_api:.0%} of a core,"
        f" listener processes {outcome.cpu_clients:.0%}",
        f"  machine load        {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        f" on {os.cpu_count()} CPUs (1/5/15 min)",
        f"  verdict             {'PASS' if ok else 'FAIL'}",
        "",
    ]
    print("\n".join(lines), flush=True)
    return 0 if ok else 1


# --- the stack --------------------------------------------------------------------------


async def _admin(base_url: str, sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(asyncpg_dsn(base_url))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def _forget_queue(redis_url: str, queue: str) -> None:
    """The bench's SAQ keys, and only those, leave Redis with it."""
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"saq:*{queue}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def main(argv: list[str]) -> int:
    args = _parse(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = args.listeners * 2 + 512  # the API's sockets (inherited limit) and ours
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    with contextlib.ExitStack() as stack:
        services = stack.enter_context(backing_services(STATE_DIR, durable=False))
        name = f"bench_ws_{uuid.uuid4().hex[:10]}"
        asyncio.run(_admin(services.database_url, f'CREATE DATABASE "{name}"'))
        stack.callback(
            lambda: asyncio.run(
                _admin(services.database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            )
        )
        stack.callback(_forget_queue, services.redis_url, name)
        env = {
            **os.environ,
            "DATABASE_URL": with_database(services.database_url, name),
            "REDIS_URL": services.redis_url,
            "SAQ_QUEUE": name,  # no worker serves it: this script plays the worker
            "LOG_LEVEL": "WARNING",
            # Every listener is the same signed-in user on this one process: both socket
            # caps are raised to the listener count, or all past the 20th are refused 1008.
            "MAX_SOCKETS_PER_USER": str(args.listeners),
            "MAX_SOCKETS_PER_PROCESS": str(args.listeners),
        }
        subprocess.run(
            [sys.executable, "-m", "alembic", "upgrade", "head"],
            cwd=REPO_ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        issuer = stack.enter_context(dev_issuer())
        env.update(issuer.env())
        env["BENCH_TOKEN"] = issuer.token("alice", ttl=3600)
        port = free_port()
        command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--no-access-log", "--log-level", "warning"]
        command += shlex.split(args.uvicorn_args)
        api = spawn(command, env=env)
        stack.callback(stop_process, api, "api")
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/health", timeout=60, process=api)
        log(f"API process {api.pid} on {base}: {shlex.join(command[1:])}")

        async def bounded() -> Outcome:
            async with asyncio.timeout(args.timeout):
                return await _run(args, env, base, api.pid)

        try:
            outcome = asyncio.run(bounded())
        except TimeoutError:
            log(f"gave up after {args.timeout:.0f} s")
            return 2
        return _report(args, outcome)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
