"""A real PgBouncer (Debian's `pgbouncer` package) in transaction pooling mode, in front of
the test PostgreSQL, for the tests and the suite's PgBouncer pass (`pytest --pgbouncer`).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import devstack
from sqlalchemy.engine import make_url

__all__ = ["PgBouncer", "running_pgbouncer"]

# PgBouncer refuses to run as root; it can switch to this user itself (`-u`).
UNPRIVILEGED_USER = "nobody"


def _run_as(host: str) -> str:
    """Who PgBouncer runs as when we are root: the owner of a private socket directory
    (the embedded PostgreSQL keeps its socket in its own data folder), else nobody."""
    if host.startswith("/"):
        owner = pwd.getpwuid(Path(host).stat().st_uid).pw_name
        if owner != "root":
            return owner
    return UNPRIVILEGED_USER


@dataclass(frozen=True)
class PgBouncer:
    url: str  # the same server URL as given, through PgBouncer
    logfile: Path

    def log(self) -> str:
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""


def _server_address(url: str) -> tuple[str, int, str]:
    """(host or socket directory, port, user) of a SQLAlchemy PostgreSQL URL."""
    parsed = make_url(url)
    host = parsed.host or str(parsed.query.get("host") or "")
    if not host:
        raise ValueError(f"no host or socket directory in {url!r}")
    return host, parsed.port or 5432, parsed.username or "postgres"


@contextlib.contextmanager
def running_pgbouncer(
    server_url: str,
    *,
    pool_size: int = 20,
    ignore_startup_parameters: str = "",
    settings: Mapping[str, str] | None = None,
) -> Iterator[PgBouncer]:
    """PgBouncer in transaction pooling mode in front of `server_url`'s server.

    Every database of that server is reachable through it (auto-databases); at most
    `pool_size` server connections per database and user, so a small pool makes many
    clients share each server connection, as in production. `settings` (e.g. a deployed
    pgbouncer.ini's) replace these, except where it listens, its files and how it
    authenticates, which stay the harness's.
    """
    binary = devstack.pgbouncer_binary()
    if binary is None:
        raise RuntimeError("pgbouncer is not installed (apt-get install pgbouncer)")
    host, port, user = _server_address(server_url)
    password = make_url(server_url).password or ""
    state = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    # Readable and writable by the unprivileged user PgBouncer switches to.
    state.chmod(0o777)
    listen_port = devstack.free_port()
    users = state / "users.txt"
    users.write_text(f'"{user}" "{password}"\n')
    harness = {
        "listen_addr": "127.0.0.1",
        "listen_port": str(listen_port),
        "unix_socket_dir": "",
        "auth_type": "trust",
        "auth_file": str(users),
        "logfile": str(state / "pgbouncer.log"),
        "pidfile": str(state / "pgbouncer.pid"),
    }
    pooling = {
        "pool_mode": "transaction",
        "default_pool_size": str(pool_size),
        "max_client_conn": "1000",
        # What every client that connects through PgBouncer must cope with: no session
        # state survives a transaction.
        "server_reset_query": "",
        "ignore_startup_parameters": ignore_startup_parameters,
    }
    chosen = {**pooling, **(settings or {}), **harness}
    lines = ["[databases]", f"* = host={host} port={port}", "[pgbouncer]"]
    lines += [f"{key} = {value}" for key, value in chosen.items()]
    config = state / "pgbouncer.ini"
    config.write_text("\n".join([*lines, ""]))
    for path in (users, config):
        path.chmod(0o644)
    command = [binary, str(config)]
    if os.geteuid() == 0:
        command[1:1] = ["-u", _run_as(host)]
    process = devstack.spawn(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    bouncer = PgBouncer(url=_through(server_url, listen_port), logfile=state / "pgbouncer.log")
    try:
        _wait_listening(process, listen_port, bouncer)
        yield bouncer
    finally:
        devstack.stop_process(process, "pgbouncer", timeout=10)
        if process.stderr is not None:
            process.stderr.close()
        shutil.rmtree(state, ignore_errors=True)


def _through(server_url: str, listen_port: int) -> str:
    parsed = make_url(server_url)
    query = {key: value for key, value in parsed.query.items() if key != "host"}
    rendered = parsed.set(host="127.0.0.1", port=listen_port, query=query)
    return rendered.render_as_string(hide_password=False)


def _wait_listening(process: subprocess.Popen[bytes], port: int, bouncer: PgBouncer) -> None:
    import socket

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"pgbouncer exited with {process.returncode}: {bouncer.log()[-2000:]}"
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"pgbouncer did not listen on {port} within 15 s")
