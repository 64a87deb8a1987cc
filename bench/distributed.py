"""The distributed backend's services for one benchmark run: a throwaway Postgres and Redis on the server core.

For the distributed backend "the server" is Arbiter and the Postgres and Redis
it works with, so all three share the server core and the load generators keep
the other one. `Services.start()` starts both on free loopback ports
(scripts/local_services.py, children of this process) and pins them right
after they start, before anything connects: every thread of the Postgres
postmaster and of the processes it has already forked (checkpointer,
background writer, WAL writer, launchers), and every thread of redis-server.
The backend Postgres forks for each connection later inherits the
postmaster's affinity; `off_core()` checks that at the end.

Postgres runs with initdb's configuration, its durable defaults (fsync,
synchronous_commit and full_page_writes on, 128 MB of shared buffers): the
only settings given are those local_services gives and any deployment gives
too (loopback TCP on its port, its socket folder, max_connections=200).
Redis runs as local_services runs it: no persistence, since Arbiter's Redis
is a cache of Postgres rebuilt from its ledger, and the default
maxmemory-policy noeviction, which Arbiter requires. `describe()` reads what
they really ran with, for the report.

`stop()` stops both by pid and kills, by pid, any process of theirs still
there after that.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from scripts.local_services import PostgresServer, RedisServer

DATABASE = "arbiter_bench"
# What the report states about the Postgres the numbers came from (plus every setting not at its default).
POSTGRES_SETTINGS = (
    "fsync",
    "synchronous_commit",
    "full_page_writes",
    "wal_level",
    "shared_buffers",
    "effective_cache_size",
    "work_mem",
    "max_wal_size",
    "checkpoint_timeout",
    "max_connections",
)
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def parent_pids() -> dict[int, int]:
    """Every process's parent, by pid, from /proc (processes that vanish while reading are left out)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses, so split at the last ")".
            parents[int(entry.name)] = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return parents


def descendants(parents: Mapping[int, int], root: int) -> list[int]:
    """`root` and every process below it in `parents` (pid -> parent pid), parents before their children."""
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    tree = [root]
    for pid in tree:  # grows while it is walked: breadth first
        tree.extend(sorted(children.get(pid, ())))
    return tree


def process_tree(root: int) -> list[int]:
    """`root` and its descendants, now."""
    return descendants(parent_pids(), root)


def threads(pid: int) -> list[int]:
    """The thread ids of process `pid` (empty once it is gone)."""
    try:
        return sorted(int(task.name) for task in Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return []


def core_set(cores: int | Collection[int]) -> set[int]:
    """One core or several, as the set sched_setaffinity takes."""
    return {cores} if isinstance(cores, int) else set(cores)


def pin(pids: Iterable[int], core: int | Collection[int]) -> list[int]:
    """Put every thread of each process of `pids` on `core` alone (or on the cores given); the processes pinned
    (vanished ones skipped)."""
    cores = core_set(core)
    pinned = []
    for pid in pids:
        done = False
        for tid in threads(pid):
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(tid, cores)
                done = True
        if done:
            pinned.append(pid)
    return pinned


def off_core(pids: Iterable[int], core: int | Collection[int]) -> dict[int, list[int]]:
    """The processes of `pids` with a thread allowed elsewhere than on `core` alone (or than on exactly the
    cores given), with those cores."""
    wanted = core_set(core)
    found: dict[int, list[int]] = {}
    for pid in pids:
        for tid in threads(pid):
            try:
                cores = os.sched_getaffinity(tid)
            except ProcessLookupError:
                continue
            if cores != wanted:
                found[pid] = sorted(cores)
                break
    return found


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after COMM (STATE is the first), or None once the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


def tree_cpu_seconds(root: int) -> float:
    """CPU time (user + system) of `root`, of every live process below it, and of its children it has reaped.

    A Postgres backend that exits is reaped by the postmaster, so its time
    moves into the postmaster's cutime/cstime instead of disappearing: the
    sum only grows, and its difference over a phase is what the tree used.
    """
    total = 0
    for pid in process_tree(root):
        fields = _stat_fields(pid)
        if fields is None or len(fields) < 15:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat(5))
        if pid == root:
            total += int(fields[13]) + int(fields[14])  # cutime, cstime: its reaped children
    return total / _CLK_TCK


def start_time(pid: int) -> int | None:
    """When process `pid` started (clock ticks after boot), None once it has exited (a zombie included).

    With the pid it names one process for good: a pid taken again by a new process has another start time.
    """
    fields = _stat_fields(pid)
    if fields is None or len(fields) <= 19 or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def filesystem(path: Path) -> str:
    """The filesystem `path` lies on, as "TYPE on DEVICE (MOUNT POINT)" from /proc/mounts."""
    target = str(path.resolve())
    best: tuple[str, str, str] | None = None
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return "unknown"
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        device, point, kind = parts[0], parts[1].replace("\\040", " "), parts[2]
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best[1])):
            best = (device, point, kind)
    return f"{best[2]} on {best[0]} ({best[1]})" if best else "unknown"


class Services:
    """A throwaway Postgres (with the database `DATABASE`) and Redis on loopback, pinned to `core`.

    `pin_to()` moves them, every process they have and the backends Postgres
    forks later, to other cores (the workers scenario shares both cores).
    """

    def __init__(self, folder: Path, core: int) -> None:
        self.folder = folder
        self.core = core
        self.cores = frozenset({core})  # where they may run now
        self.postgres = PostgresServer(folder / "postgres")
        self.redis = RedisServer(folder / "redis")
        self.database_url = ""
        self.postmaster = 0
        self.redis_pid = 0
        self.pinned: dict[str, list[int]] = {}  # at start: the pids pinned, per service

    @property
    def redis_url(self) -> str:
        return self.redis.url

    def start(self) -> Services:
        """Start Postgres, pin it, create the database; start Redis, pin it. Stops what started on failure."""
        try:
            self.postgres.start()
            self.postmaster = _require_pid(self.postgres.pid, "PostgreSQL")
            # Before any connection: the backends forked for connections inherit the postmaster's affinity.
            self.pinned["postgres"] = pin(process_tree(self.postmaster), self.core)
            self.database_url = self.postgres.create_database(DATABASE)
            self.redis.start()
            self.redis_pid = _require_pid(self.redis.pid, "redis-server")
            self.pinned["redis"] = pin(process_tree(self.redis_pid), self.core)
        except BaseException:
            self.stop()
            raise
        return self

    def pids(self) -> list[int]:
        """Every process of both services, now (the postmaster's tree and redis-server's)."""
        found: list[int] = []
        parents = parent_pids()
        for root in (self.postmaster, self.redis_pid):
            if root and root in parents:
                found += descendants(parents, root)
        return found

    def cpu_seconds(self) -> float:
        """CPU time both services used so far (exited Postgres backends included)."""
        return sum(tree_cpu_seconds(root) for root in (self.postmaster, self.redis_pid) if root)

    def off_core(self) -> dict[int, list[int]]:
        """Processes of the services not pinned to their core alone, or to exactly their cores (should be none)."""
        return off_core(self.pids(), self.cores)

    def pin_to(self, cores: Collection[int]) -> list[int]:
        """Every thread of every process of both services onto `cores`, and the backends forked later (they
        inherit the postmaster's affinity); the pids moved."""
        self.cores = frozenset(cores)
        return pin(self.pids(), self.cores)

    def describe(self) -> dict[str, Any]:
        """What the services ran with, read from them: versions, Postgres settings, Redis configuration."""
        import psycopg
        import redis

        with psycopg.connect(self.database_url, autocommit=True) as conn:
            version = conn.execute("SHOW server_version").fetchone()
            rows = conn.execute(
                "SELECT name, setting, unit, source FROM pg_settings WHERE name = ANY(%s) OR source <> 'default' "
                "ORDER BY name",
                [list(POSTGRES_SETTINGS)],
            ).fetchall()
        chosen = {name: _setting(setting, unit) for name, setting, unit, _ in rows if name in POSTGRES_SETTINGS}
        changed = {
            name: _setting(setting, unit)
            for name, setting, unit, source in rows
            if source not in ("default", "override", "client", "session")
        }
        client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=5, socket_timeout=5)
        try:
            info = client.info("server")
            config = client.config_get("maxmemory-policy")
            config.update(client.config_get("save"))
            config.update(client.config_get("appendonly"))
            config.update(client.config_get("io-threads"))
        finally:
            client.close()
        return {
            "postgres": {
                "version": version[0] if version else "?",
                "port": self.postgres.port,
                "postmaster_pid": self.postmaster,
                "data_filesystem": filesystem(self.postgres.data),
                "settings": chosen,
                "not_default": changed,  # from initdb's postgresql.conf and the command line
            },
            "redis": {
                "version": str(info.get("redis_version", "?")),
                "port": self.redis.port,
                "pid": self.redis_pid,
                "config": {str(key): str(value) for key, value in config.items()},
            },
            "core": self.core,
            "cores_now": sorted(self.cores),
            "pinned_at_start": self.pinned,
        }

    def stop(self) -> list[int]:
        """Stop Redis and Postgres by pid; any of their processes still there afterwards is killed by pid.

        Returns the pids that had to be killed (none, normally). Idempotent.
        """
        survivors = [(pid, start_time(pid)) for pid in self.pids()]
        try:
            self.redis.stop()
        finally:
            self.postgres.stop()
        killed = []
        for pid, started in survivors:
            if started is not None and start_time(pid) == started:  # the same process, still there
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        if killed:
            time.sleep(0.2)
            print(f"bench/distributed.py: killed leftover service processes {killed}", file=sys.stderr, flush=True)
        self.postmaster = self.redis_pid = 0
        return killed

    def __enter__(self) -> Services:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def _require_pid(pid: int | None, name: str) -> int:
    if pid is None:
        raise RuntimeError(f"{name} started but its pid is unknown")
    return pid


def _setting(value: str, unit: str | None) -> str:
    """A pg_settings value with its unit, as SHOW would say it for the common ones (8kB pages to MB)."""
    if unit == "8kB" and value.isdigit():
        return f"{int(value) * 8 // 1024} MB" if int(value) * 8 >= 1024 else f"{int(value) * 8} kB"
    if unit == "kB" and value.isdigit():
        return f"{int(value) // 1024} MB" if int(value) >= 1024 else f"{value} kB"
    if unit == "MB" and value.isdigit():
        return f"{value} MB"
    return f"{value} {unit}" if unit else value
