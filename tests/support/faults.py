"""Private backing services for fault tests: a PostgreSQL the test may stop and start again,
and a Redis, both started for the test alone (never the machine's shared servers).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import devstack

from tests.support.processes import REPO_ROOT


@dataclass
class PrivatePostgres:
    """An embedded PostgreSQL (pgserver) under the test's control."""

    url: str
    pgdata: Path
    # The postmaster's own options (socket dir, no TCP), kept so a restart listens
    # exactly where the app already points.
    options: str

    @property
    def _owner(self) -> str | None:
        owner = pwd.getpwuid(self.pgdata.stat().st_uid).pw_name
        return None if owner == pwd.getpwuid(os.getuid()).pw_name else owner

    def _pg_ctl(self, *args: str) -> None:
        try:
            devstack.postgres_program("pg_ctl")(
                ["-w", "-t", "30", *args],
                pgdata=self.pgdata,
                user=self._owner,
                stdin=subprocess.DEVNULL,
                timeout=60,
            )
        except subprocess.CalledProcessError as error:
            # pgserver logs the program's output on the `pgserver` logger.
            raise RuntimeError(f"pg_ctl {' '.join(args)} failed ({error.returncode})") from None

    def stop(self) -> None:
        """Fast shutdown: open connections are cut, as when a server restarts or fails over."""
        self._pg_ctl("-m", "fast", "stop")

    def start(self) -> None:
        self._pg_ctl("-o", self.options, "-l", str(self.pgdata / "restart.log"), "start")

    def _processes(self) -> list[int]:
        """The postmaster and every backend and helper process it forked."""
        postmaster = int((self.pgdata / "postmaster.pid").read_text().split()[0])
        pids = [postmaster]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                # The parent pid follows the parenthesised command name.
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    pids.append(int(stat.parent.name))
        return pids

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """SIGSTOP the whole server: connections stay open but nothing answers, as when a
        host stalls or a network path silently drops packets. SIGCONT when the block ends."""
        pids = self._processes()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)


def _postmaster_options(pgdata: Path) -> str:
    """Options after `-D <pgdata>` in postmaster.opts, quoted for `pg_ctl -o`."""
    words = shlex.split((pgdata / "postmaster.opts").read_text())
    options = words[1:]
    if "-D" in options:
        at = options.index("-D")
        del options[at : at + 2]
    return shlex.join(options)


def migrate(database_url: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=REPO_ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        check=True,
        capture_output=True,
        timeout=120,
    )


@contextlib.contextmanager
def private_services(state_dir: Path) -> Iterator[tuple[PrivatePostgres, str]]:
    """A migrated private PostgreSQL and a private Redis URL, stopped when the block ends."""
    # Run as root, PostgreSQL runs as another user (devstack.postgres_system_user), who must
    # be able to enter the folder above its data folder: a TemporaryDirectory is 0700.
    state_dir.chmod(0o755)
    with (
        devstack.embedded_postgres(state_dir / "pg", durable=False) as database_url,
        devstack.embedded_redis(state_dir / "redis") as redis_url,
    ):
        pgdata = (state_dir / "pg").resolve()
        migrate(database_url)
        yield PrivatePostgres(database_url, pgdata, _postmaster_options(pgdata)), redis_url
