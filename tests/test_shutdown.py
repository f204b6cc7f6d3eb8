"""Rolling restarts: SIGTERM to a real `uvicorn app.main:app` finishes the request in
flight, closes open WebSockets with 1001, refuses new connections and exits 0.

The in-flight request is made slow for real: the API's keys are past their (1-second)
TTL, and the dev issuer's JWKS answers after 2.5 s, so the request waits for the key
re-read while the API is told to stop.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import devstack
import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.support.processes import REPO_ROOT, forget_saq_queue

# The image's flags (Dockerfile CMD) except the bind address; no --timeout-graceful-shutdown,
# so the app's own 10 s bound is what applies.
UVICORN_FLAGS = ["--proxy-headers", "--no-server-header", "--no-access-log"]


@pytest.fixture
def private() -> Iterator[devstack.IssuerInfo]:
    with devstack.dev_issuer() as issuer:
        yield issuer


def _ws(base_url: str, path: str) -> ClientConnection:
    return connect(base_url.replace("http://", "ws://", 1) + path, open_timeout=10)


def _close_code(socket: ClientConnection, timeout: float) -> int | None:
    with pytest.raises(ConnectionClosed):
        socket.recv(timeout=timeout)
    return socket.close_code


def test_sigterm_drains_requests_closes_sockets_1001_and_exits_0(
    private: devstack.IssuerInfo,
) -> None:
    queue = f"idle-{uuid.uuid4().hex[:12]}"
    port = devstack.free_port()
    env = {**os.environ, **private.env(), "SAQ_QUEUE": queue, "LOG_LEVEL": "INFO"}
    env["KEYCLOAK_JWKS_TTL_SECONDS"] = "1"
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), *UVICORN_FLAGS]
    process = devstack.spawn(command, env=env, cwd=REPO_ROOT, stderr=subprocess.PIPE)
    base_url = f"http://127.0.0.1:{port}"
    try:
        devstack.wait_for_http(f"{base_url}/health", timeout=30, process=process)
        token = private.mint(username="carol")
        job = httpx.post(
            f"{base_url}/v1/jobs",
            json={"kind": "demo", "params": {"steps": 100, "delay_ms": 10_000}},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert job.status_code == 202, job.text
        with (
            _ws(base_url, f"/ws/jobs/{job.json()['job_id']}?token={token}") as job_socket,
            _ws(base_url, f"/ws/echo?token={token}") as echo,
        ):
            job_socket.recv(timeout=10)  # the current state
            echo.send("still here")
            assert echo.recv(timeout=10) == "still here"

            # Keys older than the 1-second TTL must be read again before a token is
            # accepted, and the JWKS now takes 2.5 s to answer.
            private.set_jwks_fault(None, delay_ms=2_500)
            time.sleep(1.2)
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                started = time.monotonic()
                in_flight = pool.submit(
                    httpx.get,
                    f"{base_url}/v1/me",
                    headers={"Authorization": f"Bearer {private.mint(username='dave')}"},
                    timeout=30,
                )
                time.sleep(0.7)
                assert not in_flight.done()
                process.send_signal(signal.SIGTERM)

                assert _close_code(job_socket, timeout=5) == 1001
                assert _close_code(echo, timeout=5) == 1001
                response = in_flight.result(timeout=20)
        assert response.status_code == 200, response.text
        assert response.json()["username"] == "dave"
        assert time.monotonic() - started >= 2.4

        assert process.wait(timeout=20) == 0
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{base_url}/health", timeout=2)
    finally:
        private.set_jwks_fault(None)
        devstack.stop_process(process, "api", timeout=10)
        assert process.stderr is not None
        log = process.stderr.read().decode(errors="replace")
        process.stderr.close()
        forget_saq_queue(os.environ["REDIS_URL"], queue)
    assert "Traceback" not in log, log[-3000:]


def test_requests_still_running_after_the_grace_period_do_not_hold_the_exit(
    private: devstack.IssuerInfo,
) -> None:
    """The bound: a request still unfinished after 10 s is cut, and the process exits 0."""
    port = devstack.free_port()
    env = {**os.environ, **private.env(), "LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), *UVICORN_FLAGS]
    process = devstack.spawn(command, env=env, cwd=REPO_ROOT)
    try:
        devstack.wait_for_http(f"http://127.0.0.1:{port}/health", timeout=30, process=process)
        # A request whose body never finishes arriving stays in flight for as long as the
        # client wants.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as stalled:
            token = private.mint(username="carol")
            stalled.sendall(
                b"POST /v1/projects HTTP/1.1\r\nHost: api\r\n"
                + f"Authorization: Bearer {token}\r\n".encode()
                + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                + b'{"name": '
            )
            time.sleep(1)
            process.send_signal(signal.SIGTERM)
            started = time.monotonic()
            assert process.wait(timeout=30) == 0
            assert 9 <= time.monotonic() - started < 14
    finally:
        devstack.stop_process(process, "api", timeout=10)
