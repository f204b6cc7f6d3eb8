"""`scripts/bench_ws.py` as shipped, at a small size: it must run as the README says.

The benchmark is not a test, but it drifted twice unseen: it kept the default per-user
socket cap, so every listener past the 20th was refused 1008, and it built the progress
writer with a constructor the jobs code no longer had. Here 40 listeners (past that cap)
on 2 jobs run through the same code paths as the 1,000 of a real run.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.processes import REPO_ROOT

pytestmark = pytest.mark.slow


def test_the_fan_out_benchmark_runs_past_the_per_user_socket_cap() -> None:
    command = [sys.executable, "scripts/bench_ws.py", "--listeners", "40", "--jobs", "2"]
    command += ["--steps", "3", "--interval-ms", "50", "--client-processes", "1"]
    result = subprocess.run(
        [*command, "--timeout", "90"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    report = result.stdout + result.stderr
    # 2 jobs x (claim + 3 steps + complete), each message to the 20 listeners of its job.
    assert "delivered           200 of 200 messages (missing 0, failed sockets 0)" in report, (
        report[-4000:]
    )
    assert "verdict             PASS" in report, report[-4000:]
    assert result.returncode == 0, report[-4000:]
