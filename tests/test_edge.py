"""The edge (scripts/edge/nginx.conf, compose.yml service `edge`) in front of a live API.

Runs the repository's nginx.conf unchanged with Debian's nginx (package nginx-light; CI
installs it), pointed at the API served as the image serves it (the Dockerfile's uvicorn
command). Only the two small files beside it that say where to listen and where the API
is are the test's own.

Found without an edge (issue 13, item 6): a 100 MB request header on anonymous /health
took 11 s and stalled other requests, four of them took the API from 130 to 665 MiB, and
500 slow-loris connections were still open after 30 s.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import devstack
import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.support.api_process import LoggedApi, image_like_api
from tests.support.processes import REPO_ROOT

EDGE_DIR = REPO_ROOT / "scripts" / "edge"
NGINX = shutil.which("nginx") or next(
    (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(path).exists()), None
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        NGINX is None, reason="nginx is not installed (apt-get install nginx-light)"
    ),
]

HEADER_TIMEOUT_S = 10  # client_header_timeout in nginx.conf
IN_FLIGHT_PER_ADDRESS = 200  # limit_conn per_address in nginx.conf
SOCKETS_PER_ADDRESS = 32  # limit_conn sockets_per_address in nginx.conf


@dataclass(frozen=True)
class Edge:
    base_url: str
    port: int
    log_path: Path
    api: LoggedApi

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, f"nginx exited with code {process.returncode}"
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nginx did not listen on {port}")


@contextlib.contextmanager
def _running_edge(state: Path, upstream_port: int) -> Iterator[tuple[str, int, Path]]:
    """The repository's nginx.conf on a free port in front of `upstream_port`; yields its
    base URL, port and the file that gets both its logs (stdout: access, stderr: error)."""
    assert NGINX is not None
    shutil.copy(EDGE_DIR / "nginx.conf", state / "nginx.conf")
    port = devstack.free_port()
    # Every loopback address, so tests can come from 127.0.0.2, 127.0.0.3, …
    (state / "listen.conf").write_text(f"listen {port};\n")
    (state / "upstream.conf").write_text(f"server 127.0.0.1:{upstream_port};\n")
    command = [NGINX, "-p", str(state), "-c", str(state / "nginx.conf"), "-e", "stderr"]
    command += ["-g", f"daemon off; pid {state / 'nginx.pid'};"]
    checked = subprocess.run(
        [*command, "-t"], capture_output=True, text=True, timeout=30, check=False
    )
    assert checked.returncode == 0, checked.stderr
    log_path = state / "edge.log"
    with log_path.open("wb") as output:
        process = devstack.spawn(command, stdout=output, stderr=output)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_port(port, process)
        yield base_url, port, log_path
    finally:
        devstack.stop_process(process, "nginx", timeout=10)


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    state = tmp_path_factory.mktemp("edge")
    with image_like_api(state / "api.log") as api, _running_edge(state, api.port) as running:
        base_url, port, log_path = running
        devstack.wait_for_http(f"{base_url}/health", timeout=30)
        yield Edge(base_url, port, log_path, api)


def _raw_request(port: int, head: bytes, timeout: float = 10) -> tuple[int, bytes, float]:
    """Send `head` on a fresh connection; the status line's code, the answer and seconds."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):  # the edge may close before we finish sending
            sock.sendall(head)
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer and len(answer) > 4096:
                    break
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
    return status, answer, time.monotonic() - started


def test_normal_traffic_passes(edge: Edge, token: Callable[[str], str]) -> None:
    headers = {"Authorization": f"Bearer {token('alice')}", "X-Request-ID": "edge-test-1"}
    with httpx.Client(base_url=edge.base_url, timeout=10) as http:
        health = http.get("/health")
        assert health.status_code == 200
        assert health.json() == {"status": "ok"}
        me = http.get("/v1/me", headers=headers)
        assert me.status_code == 200, me.text
        assert me.json()["username"] == "alice"
        assert len(me.headers["x-request-id"]) == 32  # the API's own id, not the client's
        created = http.post("/v1/projects", json={"name": "via the edge"}, headers=headers)
        assert created.status_code == 201, created.text
        refused = http.get("/v1/me")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert "server" not in health.headers or "nginx/" not in health.headers["server"]


def test_huge_header_is_refused_at_the_edge(edge: Edge) -> None:
    head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5_000_000 + b"\r\n\r\n"
    status, answer, seconds = _raw_request(edge.port, head)
    assert status in (400, 431), answer[:300]
    assert seconds < 5
    assert b'"status_code":%d' % status in answer, answer[:500]  # the API's error shape
    # Many headers that each fit but together do not.
    many = b"".join(b"X-H%d: %s\r\n" % (n, b"b" * 15_000) for n in range(8))
    status, answer, _ = _raw_request(
        edge.port, b"GET /health HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n"
    )
    assert status in (400, 431), answer[:300]
    long_uri = b"GET /health?" + b"q" * 40_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    status, answer, _ = _raw_request(edge.port, long_uri)
    assert status in (400, 414), answer[:300]
    assert b'"status_code":%d' % status in answer, answer[:500]
    assert "X-Big" not in edge.api.log()  # the API never saw them
    with httpx.Client(base_url=edge.base_url, timeout=10) as http:
        assert http.get("/health").status_code == 200


def test_a_token_sized_header_passes(edge: Edge, token: Callable[[str], str]) -> None:
    headers = {"Authorization": f"Bearer {token('alice')}", "X-Padding": "p" * 12_000}
    with httpx.Client(base_url=edge.base_url, timeout=10) as http:
        assert http.get("/v1/me", headers=headers).status_code == 200


def test_body_over_the_limit_is_413_at_the_edge(edge: Edge, token: Callable[[str], str]) -> None:
    headers = {"Authorization": f"Bearer {token('alice')}", "Content-Type": "application/json"}
    body = b'{"name": "x", "description": "' + b" " * 200_000 + b'"}'
    with httpx.Client(base_url=edge.base_url, timeout=10) as http:
        response = http.post("/v1/projects", content=body, headers=headers)
    assert response.status_code == 413
    assert response.json()["status_code"] == 413


def test_slow_loris_connections_are_cut_and_others_are_served(edge: Edge) -> None:
    count = 150
    sockets = [socket.create_connection(("127.0.0.1", edge.port), timeout=30) for _ in range(count)]
    closed_at: dict[int, float] = {}
    started = time.monotonic()
    stop = threading.Event()

    def dribble() -> None:
        # A byte of header per second per connection, never finishing the header.
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        while not stop.is_set() and len(closed_at) < count:
            for index, sock in enumerate(sockets):
                if index in closed_at:
                    continue
                try:
                    sock.sendall(b"X")
                    sock.setblocking(False)
                    try:
                        if sock.recv(4096) == b"":
                            closed_at[index] = time.monotonic() - started
                    except BlockingIOError:
                        pass
                    finally:
                        sock.setblocking(True)
                except OSError:
                    closed_at[index] = time.monotonic() - started
            stop.wait(1.0)

    worker = threading.Thread(target=dribble, daemon=True)
    worker.start()
    try:
        slowest = 0.0
        with httpx.Client(base_url=edge.base_url, timeout=10) as http:
            while time.monotonic() - started < HEADER_TIMEOUT_S + 5 and len(closed_at) < count:
                asked = time.monotonic()
                assert http.get("/health").status_code == 200
                slowest = max(slowest, time.monotonic() - asked)
                time.sleep(0.2)
        worker.join(timeout=HEADER_TIMEOUT_S + 10)
    finally:
        stop.set()
        for sock in sockets:
            sock.close()
    print(
        f"slow-loris: {len(closed_at)}/{count} cut, "
        f"last at {max(closed_at.values(), default=0):.1f} s;"
        f" slowest normal request {slowest:.3f} s"
    )
    assert len(closed_at) == count, f"{count - len(closed_at)} slow connections still open"
    assert max(closed_at.values()) < HEADER_TIMEOUT_S + 4
    assert slowest < 1.0


def _unfinished_upload(port: int, source: str = "127.0.0.1") -> socket.socket:
    """A request in flight at the edge: its head sent, its body never."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    sock.sendall(b"POST /v1/projects HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
    return sock


def _socket_upgrade(port: int, path: str, source: str = "127.0.0.1") -> socket.socket:
    """A WebSocket handshake sent from `source`; the socket is then left idle."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    return sock


def _status_of(sock: socket.socket) -> int:
    head = sock.recv(4096)
    return int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0


def test_requests_in_flight_per_address_are_capped(edge: Edge) -> None:
    with contextlib.ExitStack() as stack:
        for _ in range(IN_FLIGHT_PER_ADDRESS):
            stack.enter_context(_unfinished_upload(edge.port))
        time.sleep(0.3)
        with httpx.Client(base_url=edge.base_url, timeout=10) as http:
            refused = http.get("/health")
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["status_code"] == 429
    with httpx.Client(base_url=edge.base_url, timeout=10) as http:
        assert http.get("/health").status_code == 200


def _echo_paths(token: Callable[[str], str]) -> list[str]:
    """Enough signed-in echo sockets to fill an address, spread over the dev users so
    that no one reaches the API's own cap per caller."""
    users = ["alice", "bob", "carol", "dave"]
    return [f"/ws/echo?token={token(users[n % 4])}" for n in range(SOCKETS_PER_ADDRESS)]


def test_sockets_per_address_are_capped(edge: Edge, token: Callable[[str], str]) -> None:
    ws_url = edge.base_url.replace("http://", "ws://")
    with contextlib.ExitStack() as stack:
        for path in _echo_paths(token):
            stack.enter_context(connect(f"{ws_url}{path}", open_timeout=10))
        with _socket_upgrade(edge.port, f"/ws/echo?token={token('alice')}") as refused:
            assert _status_of(refused) == 429
        with httpx.Client(base_url=edge.base_url, timeout=10) as http:
            assert http.get("/health").status_code == 200  # HTTP is not held back


def test_idle_sockets_from_many_addresses_do_not_stop_requests(
    token: Callable[[str], str], tmp_path: Path
) -> None:
    # 2,000 upgrades from ten addresses, anonymous or signed in, then left idle. Its own
    # API: the flood of anonymous upgrades is also what the API's cap on refusals is for,
    # and other tests should not meet it.
    alice = token("alice")
    paths = ["/ws/echo", f"/ws/echo?token={alice}"]
    with (
        image_like_api(tmp_path / "api.log") as api,
        _running_edge(tmp_path, api.port) as (base_url, port, _),
        contextlib.ExitStack() as stack,
    ):
        for address in range(2, 12):
            for index in range(200):
                path = paths[index % 2]
                with contextlib.suppress(OSError):
                    stack.enter_context(_socket_upgrade(port, path, f"127.0.0.{address}"))
        time.sleep(2)
        with httpx.Client(base_url=base_url, timeout=10) as http:
            for _ in range(20):
                asked = time.monotonic()
                assert http.get("/health").status_code == 200
                me = http.get("/v1/me", headers={"Authorization": f"Bearer {alice}"})
                assert me.status_code == 200, me.text
                assert time.monotonic() - asked < 2
        with httpx.Client(base_url=api.base_url, timeout=10) as direct:
            assert direct.get("/health").status_code == 200


def test_no_token_reaches_either_log(
    edge: Edge, token: Callable[[str], str], tmp_path: Path
) -> None:
    bob = token("bob")
    encoded = "".join(f"%{ord(char):02X}" for char in bob)
    queries = [f"?token={bob}", f"?access_token={bob}", f"?to%6Ben={encoded}"]
    # 502s: an edge in front of an API that is not there.
    with _running_edge(tmp_path, devstack.free_port()) as (_, dead_port, dead_log):
        for query in queries:
            with _socket_upgrade(dead_port, f"/ws/jobs/abc{query}") as upgrade:
                assert _status_of(upgrade) == 502
            with httpx.Client(base_url=f"http://127.0.0.1:{dead_port}", timeout=10) as http:
                assert http.get(f"/v1/me{query}").status_code == 502
        time.sleep(0.3)
        logs = dead_log.read_text(errors="replace")
    # 429s: one socket more than an address may hold, with a token in every query.
    with contextlib.ExitStack() as stack:
        for path in _echo_paths(token):
            upgrade = stack.enter_context(_socket_upgrade(edge.port, path))
            assert _status_of(upgrade) == 101  # open (and counted) before the next one
        for query in queries:
            with _socket_upgrade(edge.port, f"/ws/jobs/abc{query}") as refused:
                assert _status_of(refused) == 429
    time.sleep(0.3)
    logs += edge.log()
    # Refusals are logged, with their status and without the query.
    assert "/ws/jobs/abc" in logs
    assert " 502 " in logs
    assert " 429 " in logs
    for secret in (bob, bob.rsplit(".", 1)[1], encoded):
        assert secret not in logs


def test_websockets_pass_through(edge: Edge, token: Callable[[str], str]) -> None:
    ws_url = edge.base_url.replace("http://", "ws://")
    with connect(f"{ws_url}/ws/echo?token={token('carol')}", open_timeout=10) as socket_:
        socket_.send("hello through the edge")
        assert socket_.recv(timeout=10) == "hello through the edge"
    secret = token("bob")
    with connect(
        f"{ws_url}/ws/jobs/0190c7a4-0000-7000-8000-000000000000?token=bad{secret[:20]}"
    ) as refused:
        with pytest.raises(ConnectionClosed) as closed:
            refused.recv(timeout=10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4401
    time.sleep(0.3)
    assert secret[:20] not in edge.log(), "a WebSocket token reached the edge's log"
    assert "/ws/echo" in edge.log()  # the access log is on, just without query strings
