"""The server under test: one `python -m arbiter.server` pinned to the server core, and its call counts.

The server prints "arbiter listening on HOST:PORT" once serving (then, when
the HTTP listener is on, "arbiter http listening on HOST:PORT") and, on
SIGUSR1, one line "arbiter call counts {json}" with its answers per method
and status code. The difference between two such lines is what a phase did,
which is how the benchmark confirms that every call succeeded (h2load only
sees HTTP 200). Those counts are of gRPC calls only: REST calls do not pass
the gRPC interceptor that counts them.

With `--workers N` (N > 1) the process started is a supervisor that forks N
workers sharing the port: each worker prints its own "listening" lines and
answers SIGUSR1 with its own counts, and the supervisor itself must not get
SIGUSR1 (it has no handler: the signal would end it). So the counts are asked
of each worker in turn and added up, and the CPU time is the supervisor's,
its workers' and that of workers it has reaped.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.distributed import start_time, tree_cpu_seconds

SERVER_CORE = "0"
LISTENING = "arbiter listening on "
HTTP_LISTENING = "arbiter http listening on "
HTTP_OFF = "off"
CALL_COUNTS = "arbiter call counts "
START_TIMEOUT = 60.0

CallCounts = dict[str, dict[str, int]]


class ServerError(RuntimeError):
    """The server did not start, died, or did not answer SIGUSR1."""


def http_address_arg(args: Sequence[str]) -> str | None:
    """The value `args` give `--http-address` (`--http-address X` or `--http-address=X`; the last wins), or None."""
    value = None
    for i, arg in enumerate(args):
        if arg == "--http-address" and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--http-address="):
            value = arg.split("=", 1)[1]
    return value


def workers_arg(args: Sequence[str]) -> int:
    """The number of worker processes `args` ask for with `--workers N` or `--workers=N` (the last wins), else 1."""
    value = "1"
    for i, arg in enumerate(args):
        if arg == "--workers" and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--workers="):
            value = arg.split("=", 1)[1]
    return int(value)


def children(pid: int) -> list[int]:
    """The child processes of `pid` (those its main thread started), from /proc; empty once it is gone."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return sorted(int(child) for child in text.split())


class BenchServer:
    """Starts the server on core 0 with a fresh database; reads its port(s) and call counts from stdout.

    The HTTP listener is off unless `extra_args` give `--http-address`
    (`127.0.0.1:0` for a free port); when it is on, `http_address` is where
    it listens, from the server's "arbiter http listening on" line.

    `db` is a SQLite file, or a postgresql:// URL with `redis` the redis://
    URL of the distributed backend's counters. `services_cpu` gives the CPU
    seconds used so far by the processes that serve with it on its core
    (the distributed backend's Postgres and Redis): `cpu_seconds()` adds
    them, so a phase's CPU use is that of the whole server core's work.

    `cores` is the taskset core list the server (and, with `--workers N` in
    `extra_args`, its workers) may run on: the server core unless told.
    """

    def __init__(
        self,
        db: Path | str,
        log: Path,
        extra_args: Sequence[str] = (),
        *,
        redis: str | None = None,
        services_cpu: Callable[[], float] | None = None,
        cores: str = SERVER_CORE,
    ) -> None:
        self.db = db
        self.cores = cores
        self.workers = workers_arg(extra_args)
        self.redis = redis
        self.services_cpu = services_cpu
        self.log = log
        http = http_address_arg(extra_args)
        self.http_enabled = http is not None and http != HTTP_OFF
        self.command = [
            "taskset",
            "-c",
            cores,
            sys.executable,
            "-m",
            "arbiter.server",
            "--address",
            "127.0.0.1:0",
            "--db",
            str(db),
            *(("--redis", redis) if redis else ()),
            "--log-level",
            "warning",
            "--drain-seconds",  # no load balancer to drain: stop at once
            "0",
            *(() if http is not None else ("--http-address", HTTP_OFF)),
            *extra_args,
        ]
        self.process: subprocess.Popen[str] | None = None
        self.port = 0
        self.http_address = ""  # HOST:PORT of the HTTP listener once started, when it is on
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._log_file: IO[str] | None = None
        self._started_workers: list[tuple[int, int | None]] = []  # (pid, start time) of the workers seen

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        """http://HOST:PORT of the REST API (the listener must be on)."""
        if not self.http_address:
            raise ServerError("the HTTP listener is off: pass --http-address HOST:PORT to BenchServer")
        return f"http://{self.http_address}"

    @property
    def http_port(self) -> int:
        return int(self.http_address.rsplit(":", 1)[1]) if self.http_address else 0

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def worker_pids(self) -> list[int]:
        """The processes that serve: the server itself, or with `--workers N` its supervisor's children."""
        if self.workers == 1:
            return [self.pid]
        return children(self.pid)

    def keys_command(self, tenant: str, *, role: str = "admin", name: str = "benchmark") -> list[str]:
        """The keys CLI creating a key for `tenant` on the server's database (a file or a URL alike)."""
        return [
            sys.executable,
            "-m",
            "arbiter.server",
            "keys",
            "--db",
            str(self.db),
            "create",
            "--tenant",
            tenant,
            "--role",
            role,
            "--name",
            name,
        ]

    def api_key(self, tenant: str) -> str:
        """A new admin key for `tenant`, made by the keys CLI on the server's database (honoured at once)."""
        return self.create_key(tenant)[0]

    def create_key(self, tenant: str, *, role: str = "admin", name: str = "benchmark") -> tuple[str, str]:
        """A new key for `tenant` by the keys CLI: (its secret, its id, from the CLI's "created ID" line)."""
        result = subprocess.run(
            self.keys_command(tenant, role=role, name=name),
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return result.stdout.strip(), created_key_id(result.stderr)

    def start(self) -> BenchServer:
        self._log_file = self.log.open("w")
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stderr=self._log_file, text=True, bufsize=1
        )
        threading.Thread(target=self._read_stdout, daemon=True).start()
        prefixes = (LISTENING, HTTP_LISTENING) if self.http_enabled else (LISTENING,)
        # Every worker prints its own lines (the HTTP one right after its gRPC one), the same ports for all.
        seen = self._lines_with(prefixes, self.workers, START_TIMEOUT)
        ports = {line.rsplit(":", 1)[1] for line in seen[LISTENING]}
        if len(ports) != 1:
            raise ServerError(f"the server's workers listen on different ports: {sorted(ports)}")
        self.port = int(ports.pop())
        if self.http_enabled:
            self.http_address = seen[HTTP_LISTENING][0][len(HTTP_LISTENING) :].strip()
        if self.workers > 1:
            pids = self.worker_pids()
            if len(pids) != self.workers:
                raise ServerError(f"the supervisor {self.pid} has {len(pids)} workers, not {self.workers}")
            self._started_workers = [(pid, start_time(pid)) for pid in pids]
        self._wait_serving()
        return self

    def _lines_with(self, prefixes: Sequence[str], each: int, timeout: float) -> dict[str, list[str]]:
        """The next `each` lines of every prefix of `prefixes` (lines of any other kind are skipped)."""
        deadline = time.monotonic() + timeout
        seen: dict[str, list[str]] = {prefix: [] for prefix in prefixes}
        while any(len(lines) < each for lines in seen.values()):
            missing = [prefix for prefix, lines in seen.items() if len(lines) < each]
            line = self._next_line(max(deadline - time.monotonic(), 0.001), *missing)
            seen[next(prefix for prefix in missing if line.startswith(prefix))].append(line)
        return seen

    def _read_stdout(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)  # end of output: the process is gone

    def _next_line(self, timeout: float, *prefixes: str) -> str:
        prefix = " or ".join(repr(p.strip()) for p in prefixes)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._lines.get(timeout=max(remaining, 0.001))
            except queue.Empty:
                raise ServerError(f"no {prefix} line from the server within {timeout:.0f}s") from None
            if line is None:
                raise ServerError(f"the server exited; its log is {self.log}:\n{self._log_tail()}")
            if line.startswith(prefixes):
                return line

    def _log_tail(self) -> str:
        try:
            return self.log.read_text()[-3000:]
        except OSError:
            return ""

    def _wait_serving(self) -> None:
        """Readiness comes from health, not sleeps: NOT_SERVING until the state is loaded."""
        deadline = time.monotonic() + START_TIMEOUT
        with grpc.insecure_channel(self.target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                try:
                    answer = stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
                    if answer.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                if time.monotonic() > deadline:
                    raise ServerError(f"the server at {self.target} did not report SERVING")
                time.sleep(0.05)

    def call_counts(self, timeout: float = 10.0) -> CallCounts:
        """Answers per method and status code since start-up (SIGUSR1, then its stdout line); every worker's."""
        return add_counts(self.worker_call_counts(timeout).values())

    def worker_call_counts(self, timeout: float = 10.0) -> dict[int, CallCounts]:
        """Each serving process's answers so far, by pid: one SIGUSR1 and one line at a time, so lines are theirs."""
        assert self.process is not None
        pids = self.worker_pids()
        if len(pids) != self.workers:
            raise ServerError(f"the server {self.pid} has {len(pids)} workers, not {self.workers}: one died?")
        found: dict[int, CallCounts] = {}
        for pid in pids:
            os.kill(pid, signal.SIGUSR1)
            line = self._next_line(timeout, CALL_COUNTS)
            found[pid] = json.loads(line[len(CALL_COUNTS) :])
        return found

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server so far (all threads; with workers, theirs and the supervisor's),
        plus its services' (`services_cpu`)."""
        own = process_cpu_seconds(self.pid) if self.workers == 1 else tree_cpu_seconds(self.pid)
        return own + self.services_cpu() if self.services_cpu is not None else own

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait (SIGKILL if it hangs); returns the exit code."""
        if self.process is None:
            return None
        workers = self._started_workers + [(pid, start_time(pid)) for pid in self.worker_pids() if pid != self.pid]
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)  # a supervisor passes it to its workers
            try:
                return self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                return self.process.wait(timeout=10)
        finally:
            _kill_survivors(workers, timeout=10.0)
            if self._log_file is not None:
                self._log_file.close()
                # At --log-level warning a healthy run logs nothing: keep only logs that say something.
                if self.log.exists() and self.log.stat().st_size == 0:
                    self.log.unlink()

    def __enter__(self) -> BenchServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _kill_survivors(processes: Sequence[tuple[int, int | None]], timeout: float) -> list[int]:
    """SIGKILL, by pid, those of `processes` (pid, start time) still running after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    alive = [(pid, started) for pid, started in processes if started is not None]
    while alive and time.monotonic() < deadline:
        alive = [(pid, started) for pid, started in alive if start_time(pid) == started]
        if alive:
            time.sleep(0.05)
    killed = []
    for pid, started in alive:
        if start_time(pid) == started:  # the same process, not a new one with its pid
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            killed.append(pid)
    if killed:
        print(f"bench/server_process.py: killed leftover workers {killed}", file=sys.stderr, flush=True)
    return killed


def created_key_id(stderr: str) -> str:
    """The key id in the keys CLI's "created ID (tenant …)" line."""
    for line in stderr.splitlines():
        if line.startswith("created "):
            return line.split()[1]
    raise ServerError(f"the keys CLI printed no 'created' line:\n{stderr[-2000:]}")


def add_counts(parts: Iterable[CallCounts]) -> CallCounts:
    """Call counts of several processes added up, method by method and code by code."""
    total: CallCounts = {}
    for counts in parts:
        for method, codes in counts.items():
            for code, count in codes.items():
                total.setdefault(method, {})[code] = total.get(method, {}).get(code, 0) + count
    return total


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all threads), from /proc/PID/stat.

    Over a phase this tells whether the server's core was saturated (about
    1.0 s per second) or the load generator was the limit.
    """
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime and stime: fields 14 and 15 of stat(5)
    return ticks / os.sysconf("SC_CLK_TCK")


def counts_delta(before: CallCounts, after: CallCounts) -> CallCounts:
    """What happened between two call-count snapshots (methods and codes with a change only)."""
    delta: CallCounts = {}
    for method, codes in after.items():
        for code, count in codes.items():
            change = count - before.get(method, {}).get(code, 0)
            if change:
                delta.setdefault(method, {})[code] = change
    return delta


def non_ok(delta: CallCounts) -> dict[str, dict[str, int]]:
    """The non-OK answers of a delta, by method and code."""
    bad: dict[str, dict[str, int]] = {}
    for method, codes in delta.items():
        for code, count in codes.items():
            if code != "OK":
                bad.setdefault(method, {})[code] = count
    return bad
