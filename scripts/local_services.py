"""Real local PostgreSQL and Redis servers on loopback, for development and tests (stdlib only).

    python scripts/local_services.py start [--dir .services] [--pg-port 55432] [--redis-port 56379]
    python scripts/local_services.py stop [--dir .services]
    python scripts/local_services.py status [--dir .services]

`start` runs both servers detached (they outlive the command), creates the database `arbiter` and prints
`ARBITER_DB=...` and `ARBITER_REDIS=...`, which it also writes to DIR/services.env; when they already run
it only prints the URLs. `stop` stops both by pid; `status` says what runs.

From Python (tests) the servers are children of the calling process, stopped when the block ends:

    with PostgresServer(tmp_path / "pg") as pg, RedisServer(tmp_path / "redis") as redis:
        url = pg.create_database("arbiter")

What is installed: the highest PostgreSQL >= 15 under /usr/lib/postgresql/*/bin and `redis-server`; when
missing they are installed with apt-get (root only). PostgreSQL refuses to run as root, so when we are root
every PostgreSQL program runs as the `postgres` user (`runuser -u postgres --`): the server's folder is
chowned to it, and any folder above it the `postgres` user cannot enter gets the search bit (x, never r)
for it, with a note on stderr (pytest's tmp_path lies under /tmp/pytest-of-root, which is mode 700).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO

LOOPBACK = "127.0.0.1"
POSTGRES_ROOT = Path("/usr/lib/postgresql")
MIN_POSTGRES_VERSION = 15
POSTGRES_USER = "postgres"
DATABASE_NAME = re.compile(r"[a-z0-9_]{1,63}")
# A Unix socket's path must fit in sockaddr_un.sun_path (108 bytes with its terminating NUL).
MAX_SOCKET_PATH = 107
APT_TIMEOUT = 900.0
COMMAND_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
LOG_TAIL_LINES = 40
POLL_INTERVAL = 0.05

DEFAULT_DIR = ".services"
DEFAULT_PG_PORT = 55432
DEFAULT_REDIS_PORT = 56379
CLI_DATABASE = "arbiter"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick for a bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_is_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:port (SO_REUSEADDR, so sockets in TIME_WAIT do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def _pid_alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie (an exited process its parent has not reaped yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists but belongs to someone else
    try:
        # /proc/PID/stat is "PID (COMM) STATE ..."; COMM may hold spaces and parentheses, so split at the last ")".
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state not in {"Z", "X"}


def _parent_pid(pid: int) -> int | None:
    """The parent of process `pid`, or None when it is gone."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _wait_gone(pid: int, timeout: float) -> bool:
    """Poll until process `pid` is gone (or a zombie); False when it is still running after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while _pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL)
    return True


def _log_tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last `lines` lines of `log`, for error messages."""
    try:
        text = log.read_text(errors="replace")
    except OSError as error:
        return f"(no log: {error})"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _output_tail(result: subprocess.CompletedProcess[str], lines: int = LOG_TAIL_LINES) -> str:
    """The last `lines` lines of a finished command's stdout and stderr, for error messages."""
    return "\n".join(((result.stdout or "") + (result.stderr or "")).splitlines()[-lines:])


def _note(message: str) -> None:
    """Tell the person at the terminal what we did on their behalf (stderr; pytest captures it)."""
    print(f"local_services: {message}", file=sys.stderr, flush=True)


def _apt_install(package: str) -> None:
    """`apt-get install -y --no-install-recommends PACKAGE`, with `apt-get update` first only when that fails."""
    if os.geteuid() != 0:
        raise RuntimeError(f"{package} is not installed and installing it needs root: sudo apt-get install {package}")
    if shutil.which("apt-get") is None:
        raise RuntimeError(f"{package} is not installed and there is no apt-get to install it with")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Wait for another apt or dpkg (another test process installing the same thing) instead of failing at once.
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=300"]
    install = [*apt, "install", "-y", "--no-install-recommends", package]

    def run(command: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=APT_TIMEOUT, check=False
        )

    _note(f"installing {package} with apt-get")
    result = run(install)
    if result.returncode != 0:
        _note(f"apt-get install {package} failed; running apt-get update and trying again")
        update = run([*apt, "update"])
        if update.returncode != 0:
            raise RuntimeError(f"apt-get update failed (exit {update.returncode}):\n{_output_tail(update)}")
        result = run(install)
        if result.returncode != 0:
            raise RuntimeError(f"apt-get install {package} failed (exit {result.returncode}):\n{_output_tail(result)}")


def _installed_postgres() -> dict[int, Path]:
    """The bin folders of the installed PostgreSQL versions, by major version."""
    found: dict[int, Path] = {}
    for initdb in POSTGRES_ROOT.glob("*/bin/initdb"):
        version = initdb.parent.parent.name
        if version.isdigit():
            found[int(version)] = initdb.parent
    return found


def ensure_postgres_installed() -> Path:
    """The bin folder of the highest installed PostgreSQL >= 15 (initdb, pg_ctl, postgres, psql).

    Installs Debian's `postgresql` with apt-get when there is none. Raises RuntimeError when that fails, when
    only older versions are available or when the `postgres` user is missing (we run as root).
    """
    versions = {v: path for v, path in _installed_postgres().items() if v >= MIN_POSTGRES_VERSION}
    if not versions:
        _apt_install("postgresql")
        versions = {v: path for v, path in _installed_postgres().items() if v >= MIN_POSTGRES_VERSION}
        if not versions:
            raise RuntimeError(f"no PostgreSQL >= {MIN_POSTGRES_VERSION} under {POSTGRES_ROOT} after installing it")
    if os.geteuid() == 0:
        _postgres_ids()  # fail here, clearly, rather than in runuser
    return versions[max(versions)]


def ensure_redis_installed() -> Path:
    """The path of `redis-server`, installed with apt-get when missing."""
    found = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin:/usr/sbin:/usr/local/bin")
    if found is None:
        _apt_install("redis-server")
        found = shutil.which("redis-server", path="/usr/bin:/usr/sbin:/usr/local/bin")
        if found is None:
            raise RuntimeError("redis-server is still missing after apt-get install redis-server")
    return Path(found)


def _postgres_ids() -> tuple[int, int]:
    """The uid and gid of the `postgres` user (Debian's postgresql package creates it)."""
    try:
        user = pwd.getpwnam(POSTGRES_USER)
    except KeyError:
        raise RuntimeError(
            f"there is no {POSTGRES_USER!r} user to run PostgreSQL as (it refuses to run as root); "
            "installing Debian's postgresql package creates it"
        ) from None
    return user.pw_uid, user.pw_gid


def _can_search(path: Path, uid: int, gids: set[int]) -> bool:
    """Whether a process with `uid` and `gids` may enter the folder `path` (ACLs aside)."""
    info = path.stat()
    if info.st_uid == uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid in gids:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def _let_postgres_reach(folder: Path) -> None:
    """Give the `postgres` user the search (x) permission on each folder above `folder` that it cannot enter.

    Only the bit of the permission class the `postgres` user falls in is added, never read or write: it can
    then reach paths it already knows, but not list the folders' contents.
    """
    uid, gid = _postgres_ids()
    gids = set(os.getgrouplist(POSTGRES_USER, gid))
    for parent in reversed(folder.resolve().parents):
        if _can_search(parent, uid, gids):
            continue
        info = parent.stat()
        bit = stat.S_IXUSR if info.st_uid == uid else stat.S_IXGRP if info.st_gid in gids else stat.S_IXOTH
        os.chmod(parent, stat.S_IMODE(info.st_mode) | bit)
        _note(
            f"allowed the {POSTGRES_USER} user to enter {parent} (added the search bit, mode now "
            f"{stat.S_IMODE(info.st_mode) | bit:o})"
        )


def _clean_env() -> dict[str, str]:
    """Our environment without libpq's PG* variables (a PGHOST or PGDATABASE must not redirect us), C locale."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env.update(LC_ALL="C", LANG="C", PGCONNECT_TIMEOUT="10")
    return env


class PostgresServer:
    """A PostgreSQL server on 127.0.0.1:`port` whose cluster lives in `folder`/data (trust auth, user postgres).

    By default the server is a child of this process (run through runuser when we are root), so stop() reaps
    it and its pid is gone right after. With `detached`, `pg_ctl start` daemonizes it to outlive this process
    (the command line uses that). Stopping and starting again on the same folder keeps the data; start() on a
    folder whose server already runs on the same port adopts it.
    """

    def __init__(self, folder: Path, port: int = 0, *, detached: bool = False) -> None:
        """`port` 0 picks a free loopback port now, so `url` is known before start() and kept across restarts."""
        self.folder = Path(folder).absolute()
        self.port = port or free_port()
        self._any_port = port == 0
        self.detached = detached
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        self._process: subprocess.Popen[bytes] | None = None  # runuser (or postgres) when not detached
        self._bin: Path | None = None

    @property
    def url(self) -> str:
        """The URL of the `postgres` database."""
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        """The URL of `database` on this server."""
        return f"postgresql://{POSTGRES_USER}@{LOOPBACK}:{self.port}/{database}"

    @property
    def pid(self) -> int | None:
        """The postmaster's pid (from data/postmaster.pid) while it runs, else None."""
        fields = self._lockfile()
        if fields is None:
            return None
        try:
            pid = int(fields[0])
        except (IndexError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    def _lockfile(self) -> list[str] | None:
        """The lines of data/postmaster.pid: pid, data folder, start time, port, socket folder, listen address,
        shared memory key, status ("ready" once it accepts connections); None without one."""
        try:
            return (self.data / "postmaster.pid").read_text().splitlines()
        except OSError:
            return None

    def _bin_dir(self) -> Path:
        """The bin folder of the version that made data/ (when still installed), else of the highest one."""
        if self._bin is None:
            try:
                major = (self.data / "PG_VERSION").read_text().strip()
            except OSError:
                major = ""
            own = POSTGRES_ROOT / major / "bin"
            self._bin = own if major.isdigit() and (own / "postgres").exists() else ensure_postgres_installed()
        return self._bin

    def _as_postgres(self, command: list[str]) -> list[str]:
        """`command` run as the postgres user when we are root (PostgreSQL will not run as root)."""
        if os.geteuid() == 0:
            return ["runuser", "-u", POSTGRES_USER, "--", *command]
        return command

    def _run(self, command: list[str], timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL program as the postgres user in `folder` (its cwd must be a folder it may enter)."""
        if os.geteuid() == 0:
            # Again on each command: a new pytest session takes the search bit off /tmp/pytest-of-root.
            _let_postgres_reach(self.folder)
        return subprocess.run(
            self._as_postgres(command),
            cwd=self.folder,
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def _socket_dir(self) -> str:
        """Where the server puts its Unix socket: folder/run, or nowhere (TCP only) when that path is too long."""
        run = self.folder / "run"
        if len(str(run / f".s.PGSQL.{self.port}.lock")) > MAX_SOCKET_PATH:
            return ""
        return str(run)

    def _prepare_folder(self) -> None:
        """Create `folder` (and folder/run) owned by the postgres user, reachable by it, with a log it may write."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.log.touch()
        if os.geteuid() != 0:
            return
        uid, gid = _postgres_ids()
        _let_postgres_reach(self.folder)
        os.chown(self.folder, uid, gid)
        os.chown(self.log, uid, gid)
        if self._socket_dir():
            run = self.folder / "run"
            run.mkdir(mode=0o700, exist_ok=True)
            os.chown(run, uid, gid)

    def _initdb(self) -> None:
        """Create the cluster in data/ unless it exists; initdb writes to a side folder renamed when complete."""
        if (self.data / "PG_VERSION").exists():
            return
        if self.data.exists():
            raise RuntimeError(f"{self.data} exists but holds no PostgreSQL cluster (no PG_VERSION); remove it")
        partial = self.folder / "data.initdb"
        shutil.rmtree(partial, ignore_errors=True)
        initdb = str(self._bin_dir() / "initdb")
        options = ["--auth=trust", "-U", POSTGRES_USER, "--locale=C", "--encoding=UTF8", "--no-instructions"]
        result = self._run([initdb, "-D", str(partial), *options], timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed (exit {result.returncode}):\n{_output_tail(result)}")
        partial.rename(self.data)

    def _server_options(self) -> list[str]:
        """The postgres options: loopback TCP on our port, the socket folder, room for many connections."""
        return [
            "-c",
            f"listen_addresses={LOOPBACK}",
            "-p",
            str(self.port),
            "-k",
            self._socket_dir(),
            "-c",
            "max_connections=200",
        ]

    def _running_port(self) -> int | None:
        """The port of the server running from data/ (someone's, perhaps an earlier `start`), or None."""
        fields = self._lockfile()
        if self.pid is None or fields is None or len(fields) < 4 or not fields[3].strip().isdigit():
            return None
        return int(fields[3])

    def _is_ready(self) -> bool:
        """Whether data/postmaster.pid says "ready" and, for our child, names the postmaster we started (the
        child itself, or runuser's child when we are root) rather than being a stale file of an earlier run."""
        fields = self._lockfile()
        if fields is None or len(fields) < 8 or fields[7].strip() != "ready":
            return False
        try:
            pid = int(fields[0])
        except ValueError:
            return False
        if not _pid_alive(pid):
            return False
        return self._process is None or self._process.pid in {pid, _parent_pid(pid)}

    def start(self, timeout: float = 60) -> PostgresServer:
        """Start the server (running initdb first when data/ holds no cluster) and wait until it accepts
        connections. Raises RuntimeError with the log's tail when it does not within `timeout` seconds."""
        if self._process is not None and self._process.poll() is None:
            return self
        self._process = None
        bin_dir = self._bin_dir()  # installs PostgreSQL (and so the postgres user) when missing
        self._prepare_folder()
        running = self._running_port()
        if running is not None:
            if running != self.port and not self._any_port:
                raise RuntimeError(
                    f"PostgreSQL from {self.data} already runs on port {running} (pid {self.pid}), not {self.port}; "
                    "stop it first"
                )
            self.port = running
            return self  # adopt it: stop() stops it
        if not _port_is_free(self.port):
            raise RuntimeError(f"cannot start PostgreSQL: something already listens on {LOOPBACK}:{self.port}")
        self._initdb()
        with self.log.open("a") as log:
            log.write(f"--- local_services: starting PostgreSQL on {LOOPBACK}:{self.port}\n")
        if self.detached:
            self._start_detached(bin_dir, timeout)
        else:
            self._start_child(bin_dir, timeout)
        return self

    def _start_detached(self, bin_dir: Path, timeout: float) -> None:
        """`pg_ctl start -w`: the server daemonizes and outlives us."""
        options = " ".join(shlex.quote(option) for option in self._server_options())
        command = [str(bin_dir / "pg_ctl"), "start", "-w", "-t", str(max(1, round(timeout)))]
        command += ["-D", str(self.data), "-l", str(self.log), "-o", options]
        try:
            result = self._run(command, timeout=timeout + 10)
        except subprocess.TimeoutExpired:
            raise RuntimeError(
                f"pg_ctl start did not return in {timeout + 10:.0f} s; log:\n{_log_tail(self.log)}"
            ) from None
        if result.returncode != 0 or not self._is_ready():
            raise RuntimeError(
                f"PostgreSQL did not start (pg_ctl exit {result.returncode}):\n{_output_tail(result)}\n"
                f"log {self.log}:\n{_log_tail(self.log)}"
            )

    def _start_child(self, bin_dir: Path, timeout: float) -> None:
        """Run postgres in the foreground as our child (in a session of its own) and poll until it is ready."""
        command = self._as_postgres([str(bin_dir / "postgres"), "-D", str(self.data), *self._server_options()])
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                cwd=self.folder,
                env=_clean_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not self._is_ready():
            if self._process.poll() is not None:
                self._process = None
                raise RuntimeError(f"PostgreSQL exited while starting; log {self.log}:\n{_log_tail(self.log)}")
            if time.monotonic() >= deadline:
                self.stop()
                raise RuntimeError(
                    f"PostgreSQL was not ready within {timeout} s; log {self.log}:\n{_log_tail(self.log)}"
                )
            time.sleep(POLL_INTERVAL)

    def stop(self) -> None:
        """Stop the server (`pg_ctl stop -m fast`, then harder when that does not end it in time). Idempotent."""
        pid = self.pid
        if pid is not None and (self.data / "PG_VERSION").exists():
            pg_ctl = str(self._bin_dir() / "pg_ctl")
            for mode in ("fast", "immediate"):
                try:
                    command = [pg_ctl, "stop", "-m", mode, "-w", "-t", str(round(STOP_TIMEOUT)), "-D", str(self.data)]
                    self._run(command, timeout=STOP_TIMEOUT + 5)
                except subprocess.TimeoutExpired:
                    pass
                if _wait_gone(pid, timeout=5):
                    break
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                _wait_gone(pid, timeout=5)
        if self._process is not None:
            if pid is None and self._process.poll() is None:  # still starting: no postmaster.pid to go by
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._process.pid, signal.SIGTERM)
            _reap(self._process, timeout=10)
            self._process = None

    def _psql(self, sql: str, database: str = "postgres") -> str:
        """Run one SQL command with psql over TCP (as the postgres user) and return its unaligned output."""
        psql = str(self._bin_dir() / "psql")
        command = [psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        command += ["-h", LOOPBACK, "-p", str(self.port), "-U", POSTGRES_USER, "-d", database, "-c", sql]
        result = self._run(command)
        if result.returncode != 0:
            raise RuntimeError(f"psql failed on {sql!r} (exit {result.returncode}):\n{_output_tail(result)}")
        return result.stdout

    def database_exists(self, name: str) -> bool:
        """Whether database `name` exists."""
        _check_database_name(name)
        return self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").strip() == "1"

    def create_database(self, name: str) -> str:
        """Create database `name` ([a-z0-9_]{1,63}) unless it exists, and return its URL."""
        if not self.database_exists(name):
            try:
                self._psql(f"CREATE DATABASE {name}")
            except RuntimeError:
                if not self.database_exists(name):  # else someone created it meanwhile
                    raise
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop database `name` if it exists, disconnecting its sessions."""
        _check_database_name(name)
        self._psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def _check_database_name(name: str) -> None:
    """Refuse anything but [a-z0-9_]{1,63}: the name goes into SQL unquoted."""
    if not DATABASE_NAME.fullmatch(name):
        raise ValueError(f"database name {name!r} must match [a-z0-9_]{{1,63}}")


def _reap(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    """Wait for our child `process` (a process group leader); SIGKILL its group when it has not exited in time."""
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _redis_ping(port: int, timeout: float = 1.0) -> bool:
    """Whether a Redis on 127.0.0.1:port answers PING with +PONG (RESP over a raw socket)."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            answer = b""
            while not answer.endswith(b"\r\n"):
                chunk = sock.recv(64)
                if not chunk:
                    break
                answer += chunk
    except OSError:
        return False
    return answer == b"+PONG\r\n"


class RedisServer:
    """A Redis server on 127.0.0.1:`port` without persistence, its log in `folder`/redis.log.

    By default redis-server is a child of this process in a process group of its own. With `detached` it
    daemonizes (--daemonize yes, pid in `folder`/redis.pid) to outlive us, and start() adopts one already
    running from the same folder on the same port.
    """

    def __init__(self, folder: Path, port: int = 0, *, detached: bool = False) -> None:
        """`port` 0 picks a free loopback port now; restart() keeps it."""
        self.folder = Path(folder).absolute()
        self.port = port or free_port()
        self.detached = detached
        self.log = self.folder / "redis.log"
        self.pidfile = self.folder / "redis.pid"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL of database 0."""
        return f"redis://{LOOPBACK}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The redis-server pid while it runs, else None."""
        if self._process is not None:
            return self._process.pid if self._process.poll() is None else None
        if not self.detached:
            return None
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    def start(self, timeout: float = 30) -> RedisServer:
        """Start redis-server and wait until it answers PING. Raises RuntimeError with the log's tail when it does
        not within `timeout` seconds."""
        if self.pid is not None:
            if _redis_ping(self.port):
                return self
            raise RuntimeError(
                f"redis-server from {self.folder} runs (pid {self.pid}) but does not answer on port {self.port}; "
                "stop it first"
            )
        self._process = None
        if not _port_is_free(self.port):
            raise RuntimeError(f"cannot start redis-server: something already listens on {LOOPBACK}:{self.port}")
        redis_server = ensure_redis_installed()
        self.folder.mkdir(parents=True, exist_ok=True)
        command = [str(redis_server), "--bind", LOOPBACK, "--port", str(self.port), "--save", "", "--appendonly"]
        command += ["no", "--dir", str(self.folder), "--logfile", str(self.log)]
        if self.detached:
            self.pidfile.unlink(missing_ok=True)
            command += ["--daemonize", "yes", "--pidfile", str(self.pidfile)]
        else:
            command += ["--daemonize", "no"]
        with self.log.open("ab") as log:
            log.write(f"--- local_services: starting redis-server on {LOOPBACK}:{self.port}\n".encode())
            log.flush()
            # Before it opens its logfile redis-server reports (configuration) errors on stderr.
            self._process = subprocess.Popen(
                command, cwd=self.folder, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        if self.detached:
            self._wait_daemonized(timeout)
        deadline = time.monotonic() + timeout
        while not _redis_ping(self.port, timeout=0.5):
            if self.pid is None:
                self._process = None
                raise RuntimeError(f"redis-server exited while starting; log {self.log}:\n{_log_tail(self.log)}")
            if time.monotonic() >= deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not answer PING within {timeout} s:\n{_log_tail(self.log)}")
            time.sleep(POLL_INTERVAL)
        return self

    def _wait_daemonized(self, timeout: float) -> None:
        """Reap the foreground redis-server, which exits once it forked the daemon, and wait for its pidfile."""
        assert self._process is not None
        try:
            code = self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
            code = None
        self._process = None
        deadline = time.monotonic() + timeout
        while self.pid is None:
            if code != 0 or time.monotonic() >= deadline:
                raise RuntimeError(
                    f"redis-server did not daemonize (exit {code}); log {self.log}:\n{_log_tail(self.log)}"
                )
            time.sleep(POLL_INTERVAL)

    def stop(self) -> None:
        """SIGTERM the server, SIGKILL it when it has not exited within a few seconds. Idempotent."""
        pid = self.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if self._process is not None:
                _reap(self._process, timeout=10)
            elif not _wait_gone(pid, timeout=10):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                _wait_gone(pid, timeout=5)
        elif self._process is not None:  # exited by itself; reap it
            _reap(self._process, timeout=1)
        self._process = None
        if self.detached:
            self.pidfile.unlink(missing_ok=True)

    def restart(self) -> None:
        """Stop and start again on the same port (an outage, for tests); the data is gone (no persistence)."""
        self.stop()
        self.start()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def _env_file(root: Path) -> Path:
    """Where `start` writes the URLs it printed, for `status` (and for `set -a; . .services/services.env`)."""
    return root / "services.env"


def _print_urls(database_url: str, redis_url: str, out: IO[str] | None = None) -> None:
    """The two lines `start` prints: ARBITER_DB=... and ARBITER_REDIS=... (to stdout unless `out`)."""
    out = out or sys.stdout
    print(f"ARBITER_DB={database_url}", file=out)
    print(f"ARBITER_REDIS={redis_url}", file=out)


def _cli_start(root: Path, pg_port: int, redis_port: int) -> int:
    """Start (or find running) both servers detached, create the `arbiter` database, print the URLs."""
    root.mkdir(parents=True, exist_ok=True)
    postgres = PostgresServer(root / "postgres", pg_port, detached=True).start()
    database_url = postgres.create_database(CLI_DATABASE)
    redis = RedisServer(root / "redis", redis_port, detached=True).start()
    with _env_file(root).open("w") as env:
        _print_urls(database_url, redis.url, env)
    _print_urls(database_url, redis.url)
    return 0


def _cli_stop(root: Path) -> int:
    """Stop both servers by pid (nothing to do for those not running)."""
    postgres = PostgresServer(root / "postgres", DEFAULT_PG_PORT, detached=True)
    redis = RedisServer(root / "redis", DEFAULT_REDIS_PORT, detached=True)
    for name, server in (("postgres", postgres), ("redis", redis)):
        pid = server.pid
        server.stop()
        print(f"{name}: {'stopped pid ' + str(pid) if pid else 'was not running'}")
    return 0


def _cli_status(root: Path) -> int:
    """Print whether each server runs (with its pid) and the URLs of the last start; exit 1 unless both run."""
    pids = {
        "postgres": PostgresServer(root / "postgres", DEFAULT_PG_PORT, detached=True).pid,
        "redis": RedisServer(root / "redis", DEFAULT_REDIS_PORT, detached=True).pid,
    }
    for name, pid in pids.items():
        print(f"{name}: {f'running, pid {pid}' if pid else 'not running'}")
    if all(pids.values()) and _env_file(root).exists():
        print(_env_file(root).read_text(), end="")
    return 0 if all(pids.values()) else 1


def main(argv: list[str] | None = None) -> int:
    """The command line: start, stop or status of the development servers in --dir."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="start both servers (detached) and print their URLs")
    stop = commands.add_parser("stop", help="stop both servers")
    status = commands.add_parser("status", help="say whether they run")
    for command in (start, stop, status):
        command.add_argument("--dir", type=Path, default=Path(DEFAULT_DIR), help="their folder (default %(default)s)")
    start.add_argument("--pg-port", type=int, default=DEFAULT_PG_PORT, help="default %(default)s")
    start.add_argument("--redis-port", type=int, default=DEFAULT_REDIS_PORT, help="default %(default)s")
    args = parser.parse_args(argv)
    root: Path = args.dir.absolute()
    try:
        if args.command == "start":
            return _cli_start(root, args.pg_port, args.redis_port)
        if args.command == "stop":
            return _cli_stop(root)
        return _cli_status(root)
    except RuntimeError as error:
        print(f"local_services: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
