"""h2load as a gRPC load generator: installing it, framing bodies, running it and reading its output.

h2load speaks plain HTTP/2, which is all unary gRPC needs: a POST to
/package.Service/Method with `content-type: application/grpc`, `te: trailers`
and a body of one length-prefixed message. It sends the same body every
time and counts HTTP 200 as success even when the gRPC status (in the
trailers) is an error, so callers confirm success from the server's own
counts.

It drives the REST API too (`RestCall`): with `--h1` it speaks HTTP/1.1,
since aiohttp has no h2c. There the HTTP status is the answer's status,
so h2load's "2xx" count is the check; and `-m` would mean pipelining, so
REST runs use one call in flight per connection (`H2loadSettings.http1`).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.message import Message

PACKAGE = "nghttp2-client"
LOAD_CORE = "1"
# h2load's --rps timer fires at most every 10 ms (its source: max(0.01, 1/rps)),
# so above 100 requests/s per client it sends bursts, not a steady rate.
PACING_TICK_MS = 10
MAX_STEADY_RPS_PER_CLIENT = 1000 // PACING_TICK_MS


class H2loadError(RuntimeError):
    """h2load is missing and cannot be installed, failed, or printed something unexpected."""


def ensure_h2load() -> str:
    """The h2load executable, installed with apt-get when missing (needs root)."""
    found = shutil.which("h2load")
    if found:
        return found
    if os.geteuid() != 0:
        raise H2loadError(
            f"h2load is not installed and installing it needs root: run `sudo apt-get install -y {PACKAGE}` "
            "(or run the benchmark as root), then try again"
        )
    print(f"h2load missing: apt-get install -y {PACKAGE}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", PACKAGE]
    if subprocess.run(install, env=env, capture_output=True, timeout=300, check=False).returncode != 0:
        # A fresh machine may have no package lists yet.
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=300, check=False)
        done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0:
            raise H2loadError(f"apt-get install -y {PACKAGE} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    found = shutil.which("h2load")
    if not found:
        raise H2loadError(f"{PACKAGE} installed but h2load is not on PATH")
    return found


def grpc_frame(message: Message) -> bytes:
    """A unary gRPC request body: flag byte 0 (uncompressed), 4-byte big-endian length, the message."""
    payload = message.SerializeToString()
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


@dataclass(frozen=True)
class H2loadSettings:
    """Connections and streams: the same for every throughput scenario so their ratios compare."""

    clients: int = 4  # -c: HTTP/2 connections
    streams: int = 16  # -m: concurrent streams per connection
    threads: int = 1  # -t: one thread, on the load core
    connect_period_ms: int | None = None  # -r1 --rate-period: open one connection per period

    def args(self) -> list[str]:
        args = [f"-t{self.threads}", f"-c{self.clients}", f"-m{self.streams}"]
        if self.connect_period_ms is not None:
            args += ["-r1", f"--rate-period={self.connect_period_ms}ms"]
        return args

    @property
    def in_flight(self) -> int:
        return self.clients * self.streams

    def http1(self) -> H2loadSettings:
        """The same number of calls in flight over HTTP/1.1: one connection per call, no pipelining."""
        return H2loadSettings(clients=self.in_flight, streams=1, threads=self.threads)

    @classmethod
    def paced(cls, rps_total: float, streams: int = 16) -> H2loadSettings:
        """Settings that make h2load --rps send `rps_total` calls/s evenly spaced, not in bursts.

        Each client's pacing timer ticks every 10 ms, and clients that connect
        together tick together. So: enough clients that each sends at most
        one call per tick, connected one by one, a fraction of a tick apart,
        so that their ticks interleave.
        """
        clients = max(1, math.ceil(rps_total / MAX_STEADY_RPS_PER_CLIENT))
        return cls(clients=clients, streams=streams, connect_period_ms=max(1, PACING_TICK_MS // clients))


@dataclass
class H2loadResult:
    """What one h2load run reported."""

    command: list[str]
    elapsed_s: float
    req_per_s: float
    total: int
    started: int
    done: int
    succeeded: int
    failed: int
    errored: int
    timeout: int
    status_2xx: int
    output: str = field(repr=False)
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def problems(self) -> int:
        """Requests that did not come back as HTTP 2xx (whatever their gRPC status)."""
        return self.total - self.status_2xx + self.failed + self.errored + self.timeout


_FINISHED = re.compile(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s")
_REQUESTS = re.compile(
    r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout"
)
_STATUS = re.compile(r"status codes: (\d+) 2xx")


def parse_output(command: list[str], text: str) -> H2loadResult:
    """The summary numbers of h2load's report."""
    finished, requests, status = _FINISHED.search(text), _REQUESTS.search(text), _STATUS.search(text)
    if not (finished and requests and status):
        raise H2loadError(f"unexpected h2load output from {' '.join(command)}:\n{text[-3000:]}")
    elapsed = float(finished.group(1)) / (1000 if finished.group(2) == "ms" else 1)
    total, started, done, succeeded, failed, errored, timeout = (int(x) for x in requests.groups())
    return H2loadResult(
        command=command,
        elapsed_s=elapsed,
        req_per_s=float(finished.group(3)),
        total=total,
        started=started,
        done=done,
        succeeded=succeeded,
        failed=failed,
        errored=errored,
        timeout=timeout,
        status_2xx=int(status.group(1)),
        output=text,
    )


def read_latencies(log_file: Path) -> list[float]:
    """Per-request latencies in ms from h2load's --log-file (start µs, HTTP status, latency µs)."""
    latencies: list[float] = []
    with log_file.open() as lines:
        for line in lines:
            columns = line.split("\t")
            if len(columns) >= 3:
                latencies.append(int(columns[2]) / 1000)
    return latencies


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (0.0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1]


@dataclass(frozen=True)
class GrpcCall:
    """One unary gRPC method with a fixed request body, as h2load sends it."""

    url: str
    body_file: Path
    api_key: str = ""

    def headers(self) -> list[str]:
        headers = ["-H", "content-type: application/grpc", "-H", "te: trailers"]
        if self.api_key:
            headers += ["-H", f"authorization: Bearer {self.api_key}"]
        return headers

    def protocol_args(self) -> list[str]:
        return []


@dataclass(frozen=True)
class RestCall:
    """One REST route with a fixed JSON body, as h2load sends it over HTTP/1.1 (`--h1`)."""

    url: str
    body_file: Path
    api_key: str = ""

    def headers(self) -> list[str]:
        headers = ["-H", "content-type: application/json"]
        if self.api_key:
            headers += ["-H", f"authorization: Bearer {self.api_key}"]
        return headers

    def protocol_args(self) -> list[str]:
        return ["--h1"]


Call = GrpcCall | RestCall


def run(
    executable: str,
    call: Call,
    settings: H2loadSettings,
    *,
    requests: int,
    rps_total: float | None = None,
    log_file: Path | None = None,
    timeout: float = 120.0,
) -> H2loadResult:
    """Send exactly `requests` calls (so the server's count can be compared), pinned to the load core.

    With `rps_total`, h2load paces the calls (its --rps is per client).
    """
    command = [
        "taskset",
        "-c",
        LOAD_CORE,
        executable,
        *call.protocol_args(),
        *settings.args(),
        "-n",
        str(max(requests, settings.clients)),
    ]
    if rps_total is not None:
        command += [f"--rps={rps_total / settings.clients:.3f}"]
    if log_file is not None:
        command += [f"--log-file={log_file}"]
    command += ["-d", str(call.body_file), *call.headers(), call.url]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise H2loadError(f"h2load did not finish within {timeout:.0f}s: {' '.join(command)}") from exc
    if done.returncode != 0:
        raise H2loadError(f"h2load exited {done.returncode}: {' '.join(command)}\n{done.stdout}{done.stderr}")
    result = parse_output(command, done.stdout)
    if log_file is not None:
        result.latencies_ms = read_latencies(log_file)
    return result
