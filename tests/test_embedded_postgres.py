"""The embedded PostgreSQL (`pgserver`'s binaries) writes nothing outside its data folder.

Run as root, pgserver's own `PostgresServer` added a `pgserver` user to /etc/passwd,
/etc/group and /etc/shadow with `useradd` and widened the permissions of every folder
above the data folder (issue 24, point 8). devstack now runs the server as an existing
unprivileged user instead, and falls back to pgserver's start (saying what it changes) only
for a clone that user may not enter.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import subprocess
from pathlib import Path

import devstack
import pytest

from tests.support.processes import REPO_ROOT

pytestmark = pytest.mark.slow

ACCOUNT_FILES = [Path("/etc/passwd"), Path("/etc/group"), Path("/etc/shadow")]


def _fingerprint(paths: list[Path]) -> dict[str, str]:
    return {
        str(path): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in paths
        if path.exists() and os.access(path, os.R_OK)
    }


def _modes_above(path: Path) -> dict[Path, int]:
    return {parent: parent.stat().st_mode for parent in path.parents}


def test_embedded_postgres_runs_as_an_existing_user_and_touches_nothing_else(
    tmp_path: Path,
) -> None:
    pgdata = REPO_ROOT / ".devdata" / "test-embedded" / tmp_path.name
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    user = devstack.postgres_system_user()
    if user is not None:
        try:
            devstack.check_reachable(pgdata, user)
        except RuntimeError as unreachable:  # then devstack falls back to pgserver's start
            pytest.skip(f"this clone is where {user} may not enter: {unreachable}")
    accounts, modes = _fingerprint(ACCOUNT_FILES), _modes_above(pgdata)
    users = {entry.pw_name for entry in pwd.getpwall()}
    try:
        with devstack.embedded_postgres(pgdata, durable=False) as url:
            postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
            runs_as = pwd.getpwuid(os.stat(f"/proc/{postmaster}").st_uid).pw_name
            assert runs_as != "root"
            assert runs_as == (devstack.postgres_system_user() or pwd.getpwuid(os.getuid()).pw_name)
            assert runs_as in users  # not one made for it
            socket_dir = url.split("host=", 1)[1]
            assert Path(socket_dir) == pgdata.resolve()
            answer = devstack.postgres_program("psql")(
                ["-h", socket_dir, "-U", "postgres", "-d", "postgres", "-qAtc", "SELECT 6 * 7"],
                stdin=subprocess.DEVNULL,
            )
            assert answer.strip() == "42"
        assert not (pgdata / "postmaster.pid").exists(), "the server was not stopped"
    finally:
        subprocess.run(["rm", "-rf", str(pgdata)], check=False)
    assert _fingerprint(ACCOUNT_FILES) == accounts
    assert _modes_above(pgdata) == modes
    assert {entry.pw_name for entry in pwd.getpwall()} == users


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to another user")
def test_a_data_folder_the_server_user_cannot_reach_is_found_before_anything_changes(
    tmp_path: Path,
) -> None:
    # devstack then starts PostgreSQL through pgserver's own PostgresServer, and says what
    # that changes (devstack.PGSERVER_FALLBACK); the check itself changes nothing.
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    with pytest.raises(RuntimeError, match=f"cannot enter {private}"):
        devstack.check_reachable(private / "pg", "nobody")
    assert private.stat().st_mode & 0o777 == 0o700
    assert "pgserver" in devstack.PGSERVER_FALLBACK
