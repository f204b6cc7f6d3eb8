"""The access log's fast path and the queued JSON log handler, in process and in real uvicorn."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import devstack
import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from app import logging as app_logging
from app.access_log import log_access
from app.logging import JsonFormatter, JsonQueueHandler
from tests.support.processes import REPO_ROOT

FIELDS: dict[str, object] = {
    "method": "GET",
    "path": "/v1/me",
    "status": 200,
    "duration_ms": 1.25,
    "request_id": "r-1",
    "client_request_id": "spa-1",
    "sub": "user-1",
}


def log_sample() -> None:
    log_access(
        method="GET",
        path="/v1/me",
        status=200,
        duration_ms=1.25,
        request_id="r-1",
        sub="user-1",
        client_request_id="spa-1",
    )


def test_handler_keeps_every_line_in_order_across_threads() -> None:
    stream = io.StringIO()
    handler = JsonQueueHandler(stream, interval=0.001)

    def produce(thread: int) -> None:
        for number in range(2000):
            handler.put(f"{thread}:{number}\n".encode())

    threads = [threading.Thread(target=produce, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    handler.flush()
    lines = stream.getvalue().splitlines()
    handler.close()
    assert len(lines) == 8000
    for index in range(4):
        numbers = [int(line.split(":")[1]) for line in lines if line.startswith(f"{index}:")]
        assert numbers == list(range(2000))


def test_handler_writes_without_an_explicit_flush() -> None:
    stream = io.StringIO()
    handler = JsonQueueHandler(stream, interval=0.01)
    handler.put(b"one\n")
    deadline = time.monotonic() + 5
    while "one" not in stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    handler.close()
    assert stream.getvalue() == "one\n"


class _StuckStream(io.StringIO):
    """A stream whose writes wait until released, as a stderr nobody reads would."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def write(self, text: str) -> int:
        self.entered.set()
        self.release.wait(10)
        return super().write(text)


def test_handler_bounds_its_queue_and_says_how_many_lines_it_dropped() -> None:
    stream = _StuckStream()
    handler = JsonQueueHandler(stream, max_pending=3)
    handler.put(b"first\n")
    assert stream.entered.wait(5)  # the listener holds "first", stuck in the write
    for number in range(5):
        handler.put(f"{number}\n".encode())  # 0-2 wait, 3 and 4 are dropped
    stream.release.set()
    handler.flush()
    handler.put(b"after\n")  # the queue has room again: the count goes first
    handler.close()
    lines = stream.getvalue().splitlines()
    assert lines[:4] == ["first", "0", "1", "2"]
    notice = json.loads(lines[4])
    assert notice["level"] == "warning"
    assert notice["msg"].startswith("2 log lines dropped")
    assert lines[5:] == ["after"]


def test_a_closed_handler_still_writes_at_once() -> None:
    # After logging.shutdown closed it (exit), a late line is written directly.
    stream = io.StringIO()
    handler = JsonQueueHandler(stream)
    handler.close()
    handler.put(b"late\n")
    assert stream.getvalue() == "late\n"


@pytest.fixture
def captured_root_logging() -> Iterator[io.StringIO]:
    """configure_logging's own setup, writing to a StringIO instead of stderr."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_handler = app_logging._handler
    stream = io.StringIO()
    handler = JsonQueueHandler(stream)
    app_logging._handler = handler
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        app_logging._handler = saved_handler
        handler.close()


def test_fast_access_line_equals_what_the_formatter_makes(
    captured_root_logging: io.StringIO,
) -> None:
    log_sample()
    app_logging._handler.flush()  # type: ignore[union-attr]
    fast = json.loads(captured_root_logging.getvalue())
    record = logging.getLogger("app.access").makeRecord(
        "app.access", logging.INFO, __file__, 0, "request", (), None, extra=dict(FIELDS)
    )
    slow = json.loads(JsonFormatter().format(record))
    assert abs(fast.pop("ts") - slow.pop("ts")) < 5
    assert list(fast) == list(slow)
    assert fast == slow


def test_access_line_goes_through_logging_when_another_handler_listens(
    captured_root_logging: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="app.access"):
        log_sample()
    app_logging._handler.flush()  # type: ignore[union-attr]
    assert [record.request_id for record in caplog.records] == ["r-1"]  # type: ignore[attr-defined]
    # Our own handler got it too, through the record.
    assert json.loads(captured_root_logging.getvalue())["request_id"] == "r-1"


def test_no_access_line_below_its_level(captured_root_logging: io.StringIO) -> None:
    logging.getLogger().setLevel(logging.WARNING)
    log_sample()
    app_logging._handler.flush()  # type: ignore[union-attr]
    assert captured_root_logging.getvalue() == ""


def test_uvicorn_writes_one_line_per_request_and_flushes_on_shutdown(
    token: Callable[[str], str], tmp_path: os.PathLike[str]
) -> None:
    log_file = os.path.join(tmp_path, "api.log")
    port = devstack.free_port()
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)]
    command += ["--no-access-log", "--log-level", "warning"]
    with open(log_file, "wb") as sink:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env={**os.environ, "LOG_LEVEL": "INFO"}, stderr=sink
        )
        try:
            base = f"http://127.0.0.1:{port}"
            devstack.wait_for_http(f"{base}/health", timeout=60, process=process)
            sent = []
            with httpx.Client(base_url=base) as client:
                for number in range(60):
                    request_id = f"bench-{number}"
                    headers = {"X-Request-ID": request_id}
                    if number % 3:
                        headers["Authorization"] = f"Bearer {token('bob')}"
                    client.get("/v1/me", headers=headers)
                    sent.append(request_id)
        finally:
            process.send_signal(signal.SIGTERM)  # shut down as an orchestrator would
            process.wait(timeout=30)
    with open(log_file) as lines:
        entries = [json.loads(line) for line in lines if line.startswith("{")]
    access = [entry for entry in entries if entry["logger"] == "app.access"]
    ours = [entry for entry in access if (entry["client_request_id"] or "").startswith("bench-")]
    assert [entry["client_request_id"] for entry in ours] == sent
    assert len({entry["request_id"] for entry in ours}) == len(sent)
    for number, entry in enumerate(ours):
        assert entry["status"] == (200 if number % 3 else 401)
        assert (entry["sub"] is None) == (number % 3 == 0)
        assert entry["method"] == "GET"
        assert entry["path"] == "/v1/me"


def test_generated_request_ids_are_unique_32_hex_characters(client: TestClient[Litestar]) -> None:
    ids = [client.get("/health").headers["x-request-id"] for _ in range(50)]
    assert len(set(ids)) == 50
    for request_id in ids:
        assert len(request_id) == 32
        int(request_id, 16)


def test_routine_cron_lines_are_dropped_and_the_rest_kept() -> None:
    import logging

    from app.logging import RoutineCronFilter

    def record(level: int, message: str, *args: object) -> logging.LogRecord:
        return logging.LogRecord("saq", level, __file__, 1, message, args, None)

    keep = RoutineCronFilter().filter
    cron = "Job<function: sweep_jobs, queue: q, key: cron:sweep_jobs>"
    assert not keep(record(logging.INFO, "Enqueuing %s", cron))
    assert not keep(record(logging.INFO, "Scheduled ['saq:job:q:cron:sweep_jobs']"))
    assert not keep(record(logging.INFO, "Finished %s", cron))
    assert keep(record(logging.ERROR, "Error processing job %s", cron))
    assert keep(record(logging.INFO, "Processing Job<function: demo, key: 0b1c>"))


EXIT_SCRIPT = """
import asyncio, logging
from app.logging import configure_logging

configure_logging("INFO")
logging.getLogger("app.test").info("before exit")

async def forever() -> None:
    await asyncio.Event().wait()

loop = asyncio.new_event_loop()
task = loop.create_task(forever())
loop.run_until_complete(asyncio.sleep(0))
# Left pending: asyncio reports the destroyed task while the interpreter finalizes.
"""


def test_lines_logged_at_exit_are_written_and_the_exit_does_not_hang() -> None:
    result = subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    entries = [json.loads(line) for line in result.stderr.splitlines()]
    assert entries[0]["msg"] == "before exit"
    assert any("Task was destroyed" in entry["msg"] for entry in entries), result.stderr
