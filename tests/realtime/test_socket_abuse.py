"""Sockets whose client stops reading, on a real uvicorn process started the way API.md
says (`uvicorn app.main:app`, no flags): what the server holds for them stays bounded, the
socket is closed `1008`, and the memory is given back (issue 19, finding 1)."""

from __future__ import annotations

import contextlib
import socket as net
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import psutil
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.support.processes import running_api

MIB = 1024 * 1024
MESSAGE = "x" * (64 * 1024 - 16)  # compresses to almost nothing
METRICS_TOKEN = "backpressure-metrics-token"


@pytest.fixture(scope="module")
def api() -> Iterator[tuple[str, psutil.Process]]:
    with running_api({"METRICS_TOKEN": METRICS_TOKEN}) as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        yield base_url, _listener(port)


def _listener(port: int) -> psutil.Process:
    for connection in psutil.net_connections(kind="tcp"):
        if connection.laddr and connection.laddr.port == port and connection.status == "LISTEN":
            assert connection.pid is not None
            return psutil.Process(connection.pid)
    raise AssertionError(f"nothing listens on {port}")


def _rss_mib(process: psutil.Process) -> float:
    return float(process.memory_info().rss) / MIB


def _open_sockets(base_url: str) -> float:
    metrics = httpx.get(
        f"{base_url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    ).text
    line = next(line for line in metrics.splitlines() if line.startswith("websocket_connections"))
    return float(line.split()[-1])


def _non_reader(url: str) -> ClientConnection:
    # max_queue=1: the client's own reader stops taking frames off the wire at once, so
    # the server's answers pile up on its side, as with a client that never reads.
    return connect(url, open_timeout=10, close_timeout=1, max_size=None, max_queue=1)


def _flood(client: ClientConnection, stop: threading.Event, sent: list[int] | None = None) -> None:
    """Send 64 KiB messages as fast as the server takes them, counting them in `sent`."""
    while not stop.is_set():
        try:
            client.send(MESSAGE)
        except (ConnectionClosed, OSError):
            return
        if sent is not None:
            sent[0] += 1


def _until_the_server_stops_reading(sent: list[int]) -> None:
    """Wait until a second passes without the server taking another message: its sends
    are blocked (the client reads nothing), and its own reading has stopped with them."""
    deadline = time.monotonic() + 60
    last = -1
    while sent[0] != last and time.monotonic() < deadline:
        last = sent[0]
        time.sleep(1.0)


def _read_everything(client: ClientConnection) -> None:
    while True:
        client.recv(timeout=15)


def test_clients_that_never_read_hold_bounded_memory_which_is_given_back(
    api: tuple[str, psutil.Process], token: Callable[[str], str]
) -> None:
    base_url, process = api
    url = base_url.replace("http://", "ws://", 1) + f"/ws/echo?token={token('alice')}"
    before = _rss_mib(process)
    stop = threading.Event()
    clients = [_non_reader(url) for _ in range(20)]
    threads = [threading.Thread(target=_flood, args=(c, stop), daemon=True) for c in clients]
    for thread in threads:
        thread.start()
    peak = before
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        peak = max(peak, _rss_mib(process))
        time.sleep(0.5)
    stop.set()
    for client in clients:  # the clients vanish without a word, sends still blocked
        client.socket.shutdown(net.SHUT_RDWR)
    for thread in threads:
        thread.join(timeout=10)
    for _ in range(50):
        if _open_sockets(base_url) == 0:
            break
        time.sleep(0.2)
    after = _rss_mib(process)
    print(f"API RSS {before:.0f} MiB -> peak {peak:.0f} MiB -> {after:.0f} MiB")
    assert peak < 200, f"the API grew to {peak:.0f} MiB (from {before:.0f})"
    assert _open_sockets(base_url) == 0
    assert after < before + 30, f"memory not given back: {before:.0f} -> {after:.0f} MiB"


def test_a_client_that_stops_reading_is_closed_1008(
    api: tuple[str, psutil.Process], token: Callable[[str], str]
) -> None:
    base_url, _ = api
    url = base_url.replace("http://", "ws://", 1) + f"/ws/echo?token={token('bob')}"
    client = _non_reader(url)
    stop, sent = threading.Event(), [0]
    flooder = threading.Thread(target=_flood, args=(client, stop, sent), daemon=True)
    flooder.start()
    _until_the_server_stops_reading(sent)
    # The server waits 10 s for the client to take what it was sent, then gives the
    # socket up: its handler ends while the client still reads nothing.
    deadline = time.monotonic() + 25
    while _open_sockets(base_url) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _open_sockets(base_url) == 0, "the server still holds a client that reads nothing"
    stop.set()
    # Reading again, the client gets the backlog, then the close frame the server queued
    # (when the server could still send it: a loaded run may drop the connection first).
    with contextlib.suppress(TimeoutError), pytest.raises(ConnectionClosed):
        _read_everything(client)
    with contextlib.suppress(OSError):  # already closed, or a flooder's send still waits
        client.socket.shutdown(net.SHUT_RDWR)
    flooder.join(timeout=10)
    if client.protocol.close_rcvd is not None:
        assert client.protocol.close_rcvd.code == 1008
        assert client.protocol.close_rcvd.reason == "Client is not reading"
