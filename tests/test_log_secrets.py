"""No credential reaches a log line: the redaction itself, and the API run as the image
runs it (the Dockerfile's own CMD flags, uvicorn's default log level) while sockets and
requests carry real tokens, accepted and refused."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import devstack
import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from app.logging import JsonFormatter, redact_secrets
from tests.support.processes import REPO_ROOT

SAMPLE_JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        (f'127.0.0.1:5 - "WebSocket /ws/jobs/1?token={SAMPLE_JWT}" [accepted]', SAMPLE_JWT),
        ("GET /x?a=1&access_token=opaque-value-123&b=2", "opaque-value-123"),
        ("GET /cb?code=1&refresh_token=r.e.f", "r.e.f"),
        ("headers: {'authorization': 'Bearer not-a-jwt-but-secret'}", "not-a-jwt-but-secret"),
        ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        (f"claims came from {SAMPLE_JWT} somewhere", SAMPLE_JWT),
        ("POST /token client_secret=s3cr3t&grant_type=x", "s3cr3t"),
        # Percent-encoded names and values are the same credentials.
        (f"GET /ws/jobs/1?to%6Ben={quote(SAMPLE_JWT, safe='')}", SAMPLE_JWT),
        ("GET /ws/jobs/1?to%6Ben=%65%79%4A" + SAMPLE_JWT[3:], SAMPLE_JWT[3:]),
        ("GET /cb?access%5Ftoken%3Dopaque-value-456", "opaque-value-456"),
        ("GET /cb?a=%2541&refresh_token=%2572%2565%2566%2573", "%2572%2565%2566%2573"),
        (f'{{"msg": "GET /x?to%6Ben={SAMPLE_JWT}", "q": "%22"}}', SAMPLE_JWT),
    ],
)
def test_credentials_are_redacted(line: str, secret: str) -> None:
    cleaned = redact_secrets(line)
    assert secret not in cleaned
    assert "[redacted]" in cleaned


def test_ordinary_text_is_left_alone() -> None:
    line = "GET /v1/projects?limit=20&offset=40&q=token%20bucket 200 in 1.2 ms"
    assert redact_secrets(line) == line


def test_formatter_redacts_extras_and_tracebacks() -> None:
    import logging

    try:
        raise ValueError(f"bad url /ws?token={SAMPLE_JWT}")
    except ValueError:
        record = logging.getLogger("t").makeRecord(
            "t", logging.ERROR, __file__, 0, "failed", (), sys.exc_info(), extra={"url": SAMPLE_JWT}
        )
    line = JsonFormatter().format(record)
    assert SAMPLE_JWT not in line
    assert json.loads(line)["url"] == "[redacted]"


def _image_command(port: int) -> list[str]:
    """The Dockerfile's CMD with only the address changed (its JSON form is parsed)."""
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    cmd_lines = [line for line in dockerfile.splitlines() if line.startswith("CMD ")]
    assert cmd_lines, "the Dockerfile has no CMD line"
    command: list[str] = json.loads(cmd_lines[-1].removeprefix("CMD "))
    assert command[:2] == ["uvicorn", "app.main:app"], command
    for flag, value in (("--host", "127.0.0.1"), ("--port", str(port))):
        command[command.index(flag) + 1] = value
    return [sys.executable, "-m", *command]


def _secret_parts(token: str) -> list[str]:
    # The whole token, and its signature alone (a replayable token needs it).
    return [token, token.rsplit(".", 1)[1]]


def _open_and_close(url: str) -> int | None:
    """Open a WebSocket, read until the server closes it; the close code."""
    try:
        with connect(url, open_timeout=10, close_timeout=2) as socket:
            try:
                while True:
                    socket.recv(timeout=5)
            except ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None
            except TimeoutError:
                return None  # still open: we close it
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


@pytest.mark.slow
def test_api_as_the_image_runs_it_logs_no_token(
    token: Callable[[str], str], issuer: devstack.IssuerInfo, tmp_path: Path
) -> None:
    port = devstack.free_port()
    alice = token("alice")
    expired = issuer.mint(username="bob", ttl=-60)
    forged = alice.rsplit(".", 1)[0] + ".Zm9yZ2VkLXNpZ25hdHVyZS1mb3JnZWQtc2lnbmF0dXJl"
    log_file = tmp_path / "api.log"
    env = {**os.environ, "LOG_LEVEL": "INFO"}  # the image's level, not the suite's WARNING
    with log_file.open("wb") as sink:
        process = subprocess.Popen(
            _image_command(port), cwd=REPO_ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
        try:
            base = f"http://127.0.0.1:{port}"
            devstack.wait_for_http(f"{base}/health", timeout=60, process=process)
            with httpx.Client(base_url=base, timeout=10) as client:
                created = client.post(
                    "/v1/jobs",
                    json={"kind": "demo", "params": {"steps": 3, "delay_ms": 0}},
                    headers={"Authorization": f"Bearer {alice}"},
                )
                assert created.status_code == 202, created.text
                job_id = created.json()["job_id"]
                for bearer in (alice, expired, forged):
                    client.get(
                        f"/v1/me?token={bearer}", headers={"Authorization": f"Bearer {bearer}"}
                    )
            ws = f"ws://127.0.0.1:{port}"
            # Accepted and left open until we close it, accepted then closed 4404 (no such
            # job), refused 4401 (expired, forged), and the public echo with a token too.
            assert _open_and_close(f"{ws}/ws/jobs/{job_id}?token={alice}") in (None, 1000)
            assert _open_and_close(f"{ws}/ws/jobs/{uuid.uuid4()}?token={alice}") == 4404
            assert _open_and_close(f"{ws}/ws/jobs/{job_id}?token={expired}") == 4401
            assert _open_and_close(f"{ws}/ws/jobs/{job_id}?token={forged}") == 4401
            # The same token with its name and value percent-encoded: still the token
            # (accepted), and still redacted from the handshake line.
            encoded = "".join(f"%{ord(char):02X}" for char in alice[:3]) + alice[3:]
            assert _open_and_close(f"{ws}/ws/jobs/{job_id}?to%6Ben={encoded}") in (None, 1000)
            with connect(f"{ws}/ws/echo?token={alice}", open_timeout=10) as echo:
                echo.send("hello")
                assert echo.recv(timeout=5) == "hello"
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    output = log_file.read_text(errors="replace")
    for secret in (*_secret_parts(alice), *_secret_parts(expired), *_secret_parts(forged)):
        assert secret not in output
    # The handshake lines are still logged, as JSON and cleaned, not silenced: a test
    # that passed because nothing was written would prove nothing.
    handshakes = [line for line in output.splitlines() if '"WebSocket /ws/jobs/' in line]
    assert len(handshakes) >= 4, output[-4000:]
    for line in handshakes:
        entry = json.loads(line)
        assert entry["logger"].startswith("uvicorn")
        assert re.search(r"\?token=\[redacted\]", entry["msg"]), entry
