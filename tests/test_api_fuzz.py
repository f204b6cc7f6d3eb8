"""Quality gate: property-based fuzzing of every operation in /openapi.json (schemathesis).

The real API runs under uvicorn (with the SAQ worker once the app has one) on the session's
PostgreSQL and Redis, and schemathesis's own CLI drives it with a valid dev-issuer token:
generated valid and invalid requests for each documented operation, checking that nothing
answers 5xx and that every answer matches its documented status code, content type and
schema. Operations are read from the document at run time, so new endpoints are covered
as soon as they are registered.

Time: the run is bounded by FUZZ_MAX_TIME seconds (default 60; 150 with `scripts/test
--all`); FUZZ_SEED changes the generated data (default 1, so a failure reproduces). A
table of operations, requests and status codes is printed (`pytest -s` shows it live;
otherwise it appears with a failure).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.live import Operation, fetch_document, operations, run_logged, running_stack
from tests.support.processes import REPO_ROOT

pytestmark = pytest.mark.slow

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    # Requests that break the documented schema must be refused with a 4xx.
    "negative_data_rejection",
    # Operations that document a token must refuse requests without a valid one.
    "ignored_auth",
)


def _max_time() -> int:
    default = 150 if os.environ.get("TEST_ALL") else 60
    return int(os.environ.get("FUZZ_MAX_TIME", default))


@pytest.fixture(scope="module")
def live_api() -> Iterator[str]:
    with running_stack() as base_url:
        yield base_url


def _requests_per_operation(tried: list[Operation], har: dict[str, Any]) -> dict[str, Counter[int]]:
    """Status codes seen per documented operation, from the HAR of every request sent."""
    patterns = [
        (op, re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(op.path)) + "$"))
        for op in tried
    ]
    counts: dict[str, Counter[int]] = {str(op): Counter() for op in tried}
    for entry in har.get("log", {}).get("entries", []):
        method = entry["request"]["method"]
        path = urlsplit(entry["request"]["url"]).path
        matching = [op for op, pattern in patterns if pattern.match(path)]
        key = next((str(op) for op in matching if op.method == method), None)
        if key is None:  # schemathesis also probes methods a path does not document
            key = "undocumented methods" if matching else "undocumented paths"
        counts.setdefault(key, Counter())[int(entry["response"]["status"])] += 1
    return counts


def _summary(tried: int, counts: dict[str, Counter[int]], report: dict[str, Any]) -> str:
    width = max(len(key) for key in counts)
    lines = [f"{'operation':<{width}}  requests  status codes"]
    for key, statuses in counts.items():
        codes = ", ".join(f"{code}x{count}" for code, count in sorted(statuses.items()))
        lines.append(f"{key:<{width}}  {statuses.total():>8}  {codes}")
    cases = report.get("test_cases", {})
    lines.append(
        f"{tried} operations, {sum(c.total() for c in counts.values())} requests, "
        f"{cases.get('generated', '?')} generated cases, "
        f"{len(report.get('failures', []))} failures, {len(report.get('errors', []))} errors, "
        f"stopped by {report.get('stop_reason', '?')}"
    )
    return "\n".join(lines)


@pytest.fixture
def report_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: a concurrent pytest run may prune it during a long run.
    with tempfile.TemporaryDirectory(prefix="fuzz-") as folder:
        yield Path(folder)


def test_every_operation_survives_fuzzing(
    live_api: str, token: Callable[[str], str], report_dir: Path
) -> None:
    tried = operations(fetch_document(live_api))
    assert tried, "the OpenAPI document lists no operations"
    max_time = _max_time()
    report_path, har_path = report_dir / "fuzz.json", report_dir / "fuzz.har"
    command = [
        str(Path(sys.executable).parent / "st"),
        "run",
        f"{live_api}/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--header",
        f"Authorization: Bearer {token('alice')}",
        "--max-time",
        str(max_time),
        # One worker: Hypothesis describes strategies with ast.parse, which on CPython 3.11
        # can fail when two threads parse at once ("AST constructor recursion depth
        # mismatch"); one worker also keeps a seeded run reproducible.
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--seed",
        os.environ.get("FUZZ_SEED", "1"),
        "--report",
        "json,har",
        "--report-json-path",
        str(report_path),
        "--report-har-path",
        str(har_path),
    ]
    started = time.monotonic()
    result = run_logged(command, cwd=REPO_ROOT, timeout=max_time + 120)
    print(f"schemathesis ran for {time.monotonic() - started:.0f} s", flush=True)
    assert result.returncode == 0, f"schemathesis found problems:\n{result.stdout[-12_000:]}"
    counts = _requests_per_operation(tried, json.loads(har_path.read_text()))
    print(_summary(len(tried), counts, json.loads(report_path.read_text())), flush=True)
    untested = [str(op) for op in tried if not counts[str(op)]]
    assert not untested, f"operations the fuzzer never reached: {untested}"
