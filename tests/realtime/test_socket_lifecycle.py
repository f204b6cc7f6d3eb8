"""Sockets on a real uvicorn process: token lifetime and in-band renewal, message size and
per-caller socket limits, also over two processes (API.md, "WebSockets" and "Operations").

The API here serves a queue no worker reads, so a job stays `queued` and its socket stays
open: only the socket's own lifecycle can end it.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import devstack
import httpx
import jwt
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from app.auth.authenticator import MAX_SOCKET_REFUSALS
from tests.support.processes import forget_saq_queue, running_api

MAX_SOCKETS = 3
KIB = 1024


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    queue = f"idle-{uuid.uuid4().hex[:12]}"
    env = {"SAQ_QUEUE": queue, "MAX_SOCKETS_PER_USER": str(MAX_SOCKETS)}
    with running_api(env) as base_url:
        yield base_url
    forget_saq_queue(os.environ["REDIS_URL"], queue)


def _ws(base_url: str, path: str) -> ClientConnection:
    url = base_url.replace("http://", "ws://", 1) + path
    # The client's own cap is far above the server's, so the server's limit is what acts.
    return connect(url, open_timeout=10, close_timeout=5, max_size=4 * 1024 * KIB)


def _job(base_url: str, token: str) -> str:
    response = httpx.post(
        f"{base_url}/v1/jobs",
        json={"kind": "demo", "params": {"steps": 100, "delay_ms": 10_000}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


@contextlib.contextmanager
def _job_socket(base_url: str, job_id: str, token: str) -> Iterator[ClientConnection]:
    with _ws(base_url, f"/ws/jobs/{job_id}?token={token}") as socket:
        first: dict[str, Any] = json.loads(socket.recv(timeout=10))
        assert first["job_id"] == job_id
        assert first["status"] == "queued"
        yield socket


def _closed_with(socket: ClientConnection, timeout: float) -> tuple[int | None, float]:
    """The close code and when it came, the socket having sent nothing more."""
    started = time.monotonic()
    with pytest.raises(ConnectionClosed):
        socket.recv(timeout=timeout)
    return socket.close_code, time.monotonic() - started


def _still_open(socket: ClientConnection, seconds: float) -> bool:
    try:
        socket.recv(timeout=seconds)
    except TimeoutError:
        return True
    except ConnectionClosed:
        return False
    raise AssertionError("the socket sent an unexpected message")


def test_socket_closes_4401_once_its_token_expires(api: str, issuer: devstack.IssuerInfo) -> None:
    long_lived = issuer.mint(username="carol")
    job_id = _job(api, long_lived)
    short = issuer.mint(username="carol", ttl=3)
    expires_at = jwt.decode(short, options={"verify_signature": False})["exp"]
    with _job_socket(api, job_id, short) as socket:
        code, _ = _closed_with(socket, timeout=20)
        closed_at = time.time()
    assert code == 4401
    assert expires_at - 1 <= closed_at <= expires_at + 15


def test_in_band_renewal_keeps_the_socket_open(api: str, issuer: devstack.IssuerInfo) -> None:
    job_id = _job(api, issuer.mint(username="carol"))
    # Long enough to open the socket and renew it on a loaded machine; the socket must then
    # outlive this first token.
    first = issuer.mint(username="carol", ttl=6)
    first_exp = jwt.decode(first, options={"verify_signature": False})["exp"]
    with _job_socket(api, job_id, first) as socket:
        socket.send(json.dumps({"type": "auth", "token": issuer.mint(username="carol", ttl=60)}))
        past_first_exp = max(first_exp - time.time(), 0.0) + 3
        assert _still_open(socket, past_first_exp), "a renewed socket was closed"
        # Renewed again with a short token: that one's expiry counts now.
        socket.send(json.dumps({"type": "auth", "token": issuer.mint(username="carol", ttl=2)}))
        code, _ = _closed_with(socket, timeout=15)
    assert code == 4401


@pytest.mark.parametrize(
    "renewal",
    [
        pytest.param(lambda issuer: issuer.mint(username="dave"), id="another-sub"),
        pytest.param(lambda issuer: issuer.mint(username="carol", alg="none"), id="unsigned"),
        pytest.param(lambda issuer: issuer.mint(username="carol", ttl=-60), id="expired"),
        pytest.param(lambda issuer: "not-a-token", id="garbage"),
    ],
)
def test_a_refused_renewal_closes_4401(api: str, issuer: devstack.IssuerInfo, renewal: Any) -> None:
    token = issuer.mint(username="carol")
    job_id = _job(api, token)
    with _job_socket(api, job_id, token) as socket:
        socket.send(json.dumps({"type": "auth", "token": renewal(issuer)}))
        code, seconds = _closed_with(socket, timeout=10)
    assert code == 4401
    assert seconds < 5


def test_other_client_messages_are_ignored(api: str, issuer: devstack.IssuerInfo) -> None:
    token = issuer.mint(username="carol")
    job_id = _job(api, token)
    with _job_socket(api, job_id, token) as socket:
        for text in ("hello", '{"type": "ping"}', '{"type": "auth"}', "[1, 2]"):
            socket.send(text)
        assert _still_open(socket, 1)


def test_a_message_over_64_kib_closes_1009(api: str, issuer: devstack.IssuerInfo) -> None:
    echo_path = f"/ws/echo?token={issuer.mint(username='dave')}"
    with _ws(api, echo_path) as echo:
        largest = "é" * (32 * KIB)  # 64 KiB of UTF-8 exactly: still fine
        echo.send(largest)
        assert echo.recv(timeout=10) == largest
        echo.send("x" * (64 * KIB + 1))
        code, _ = _closed_with(echo, timeout=10)
    assert code == 1009
    with _ws(api, echo_path) as echo:
        echo.send(b"\0" * (64 * KIB + 1))
        assert _closed_with(echo, timeout=10)[0] == 1009

    token = issuer.mint(username="carol")
    job_id = _job(api, token)
    with _job_socket(api, job_id, token) as socket:
        socket.send("y" * (1024 * KIB))
        code, _ = _closed_with(socket, timeout=10)
    assert code == 1009


def test_one_caller_holds_at_most_max_sockets_per_user(
    api: str, issuer: devstack.IssuerInfo
) -> None:
    carol = issuer.mint(username="carol")
    job_id = _job(api, carol)
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(_job_socket(api, job_id, carol)) for _ in range(MAX_SOCKETS)]
        with _ws(api, f"/ws/jobs/{job_id}?token={carol}") as extra:
            assert _closed_with(extra, timeout=10)[0] == 1008
        # Another caller is not affected by carol's sockets.
        bob = issuer.mint(username="bob")
        with _job_socket(api, _job(api, bob), bob) as other:
            assert _still_open(other, 0.2)
        # A socket given back makes room again.
        sockets.pop().close()
        time.sleep(0.3)
        sockets.append(stack.enter_context(_job_socket(api, job_id, carol)))
        for socket in sockets:
            assert _still_open(socket, 0.05)


def test_the_cap_protects_one_process(issuer: devstack.IssuerInfo) -> None:
    # API.md: the cap protects a process; it is not summed over processes.
    queue = f"idle-{uuid.uuid4().hex[:12]}"
    env = {"SAQ_QUEUE": queue, "MAX_SOCKETS_PER_USER": "2"}
    carol = issuer.mint(username="carol", claims={"sub": f"sockets-{uuid.uuid4()}"})
    try:
        with running_api(env) as first, running_api(env) as second, contextlib.ExitStack() as stack:
            job_id = _job(first, carol)
            held = [stack.enter_context(_job_socket(first, job_id, carol)) for _ in range(2)]
            with _ws(first, f"/ws/jobs/{job_id}?token={carol}") as extra:
                assert _closed_with(extra, timeout=10)[0] == 1008
            held += [stack.enter_context(_job_socket(second, job_id, carol)) for _ in range(2)]
            for socket in held:
                assert _still_open(socket, 0.05)
    finally:
        forget_saq_queue(os.environ["REDIS_URL"], queue)


def test_a_full_process_closes_1013_whoever_asks(issuer: devstack.IssuerInfo) -> None:
    # MAX_SOCKETS_PER_PROCESS bounds what one process holds over all callers (memory and
    # file descriptors); a client told 1013 tries again later, maybe on another process.
    queue = f"idle-{uuid.uuid4().hex[:12]}"
    env = {"SAQ_QUEUE": queue, "MAX_SOCKETS_PER_PROCESS": "2", "MAX_SOCKETS_PER_USER": "5"}
    carol, dave = (issuer.mint(username=name) for name in ("carol", "dave"))
    try:
        with running_api(env) as base_url, contextlib.ExitStack() as stack:
            held = [
                stack.enter_context(_job_socket(base_url, _job(base_url, token), token))
                for token in (carol, dave)
            ]
            for token in (carol, dave):
                with _ws(base_url, f"/ws/echo?token={token}") as extra:
                    assert _closed_with(extra, timeout=10)[0] == 1013
            held.pop().close()
            time.sleep(0.3)
            with _ws(base_url, f"/ws/echo?token={dave}") as again:
                again.send("hello")
                assert again.recv(timeout=10) == "hello"
    finally:
        forget_saq_queue(os.environ["REDIS_URL"], queue)


def test_a_flood_of_anonymous_upgrades_is_refused_at_the_handshake(
    issuer: devstack.IssuerInfo,
) -> None:
    # A refused socket is accepted, then closed 4401, so a browser can read why; the
    # server holds each until the client answers. Past MAX_SOCKET_REFUSALS in 10 s, an
    # anonymous flood is answered 403 at the handshake and costs the process nothing more.
    with running_api() as base_url:
        closed_4401, refused_status = 0, None
        # Refusals older than 10 s no longer count: on a slow machine a few more than
        # MAX_SOCKET_REFUSALS may be accepted first, never fewer.
        while refused_status is None and closed_4401 < 2 * MAX_SOCKET_REFUSALS:
            try:
                refused = _ws(base_url, "/ws/echo")
            except InvalidStatus as handshake:
                refused_status = handshake.response.status_code
                continue
            with refused:
                assert _closed_with(refused, timeout=10)[0] == 4401
            closed_4401 += 1
        assert refused_status == 403, "anonymous upgrades were never refused at the handshake"
        assert closed_4401 >= MAX_SOCKET_REFUSALS
        # A signed-in caller is served meanwhile: only refusals are counted.
        with _ws(base_url, f"/ws/echo?token={issuer.mint(username='carol')}") as signed_in:
            signed_in.send("hello")
            assert signed_in.recv(timeout=10) == "hello"
