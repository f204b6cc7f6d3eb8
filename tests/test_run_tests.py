"""`scripts/test` ends with one line summing up every pytest pass and the whole run's time,
exits non-zero when a test fails, and counts "no tests collected" (pytest exit 5) as a
failure. Before, the last line was the PgBouncer pass's own summary ("263 passed"),
not the whole run's (issue 24, point 8)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import run_tests

from tests.support.processes import REPO_ROOT

pytestmark = pytest.mark.slow

SAMPLE = """
import pytest

def test_one(): pass
def test_two(): pass
def test_three(): assert False, "on purpose"
@pytest.mark.skip(reason="on purpose")
def test_four(): pass
"""


def _scripts_test(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO_ROOT / "scripts" / "test"), "--no-lint", *args],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_last_line_sums_up_the_run_and_a_failure_fails_it(tmp_path: Path) -> None:
    sample = tmp_path / "test_sample.py"
    sample.write_text(SAMPLE)
    result = _scripts_test(str(sample), "-p", "no:cacheprovider")
    assert result.returncode == 1, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        r"\[devstack\] 2 passed, 1 failed, 1 skipped \(pytest: 2 passed, 1 failed, 1 skipped\)"
        r" in \d+\.\d s",
        last,
    ), last


def test_no_tests_collected_is_a_failure(tmp_path: Path) -> None:
    sample = tmp_path / "test_sample.py"
    sample.write_text(SAMPLE)
    result = _scripts_test(str(sample), "-p", "no:cacheprovider", "-k", "no_such_test")
    assert result.returncode == 1, result.stderr[-2000:]
    assert "pytest collected no tests" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("[devstack] 0 passed, 0 failed, 0 skipped"), last


def test_both_passes_add_up() -> None:
    passes = [
        run_tests.PassCounts("pytest", passed=1000, failed=0, skipped=14),
        run_tests.PassCounts("PgBouncer", passed=263, failed=1, skipped=2),
    ]
    assert run_tests.summary(passes, 812.04) == (
        "1263 passed, 1 failed, 16 skipped (pytest: 1000 passed, 0 failed, 14 skipped; "
        "PgBouncer: 263 passed, 1 failed, 2 skipped) in 812.0 s"
    )
