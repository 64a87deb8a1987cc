"""Start real Arbiter servers as subprocesses on free loopback ports, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import backends
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

START_TIMEOUT = 30.0


class ServerProcess:
    """One `python -m arbiter.server` process bound to 127.0.0.1 on a free port."""

    def __init__(
        self,
        db: Path,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        *,
        auth: bool = False,
        http: bool = False,
        command: Sequence[str] = (sys.executable, "-m", "arbiter.server"),
        url: str | None = None,
        sqlite: bool = False,
    ) -> None:
        """A server on `db`; without `auth` it runs --insecure-no-auth (tenants from x-tenant-id).
        With `http`, the REST API and Studio listen on a free port too (`http_url`); else they are off.
        `command` starts the server (another virtualenv's `bin/arbiter`, say); `url` names a database
        instead of `db` (a Postgres of the test's own); with `sqlite` the server runs on the file `db` itself,
        whatever the run's backend."""
        self.db = db
        self.args = [
            *command,
            "--address",
            "127.0.0.1:0",
            *(["--db", str(db)] if sqlite else backends.server_args(url or db)),
            "--log-level",
            "warning",
            "--http-address",
            "127.0.0.1:0" if http else "off",
            *(() if auth else ("--insecure-no-auth",)),
            *extra_args,
        ]
        self.http = http
        # No drain after SIGTERM unless a test asks for one: stopping stays fast (test_shutdown.py drains).
        self.env = {**os.environ, "ARBITER_DRAIN_SECONDS": "0", **(env or {})}
        self.process: subprocess.Popen[str] | None = None
        self.port = 0
        self.http_port = 0
        self.stderr_lines: list[str] = []
        self.stdout_lines: list[str] = []  # what came before the "listening" line

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        """The REST listener's base URL ("http://127.0.0.1:PORT"); the server must run with `http`."""
        assert self.http_port, "this server was started without http=True"
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> ServerProcess:
        # On postgres, files the server keeps in its working directory (the demo key) go to the test's folder.
        cwd = self.db.parent if backends.on_postgres() else None
        self.process = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env, cwd=cwd
        )
        self._drain = threading.Thread(target=self._drain_stderr, daemon=True)
        self._drain.start()
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # "arbiter listening on 127.0.0.1:PORT", printed once ready
        while line.startswith("demo admin API key"):  # --demo prints its key first
            self.stdout_lines.append(line)
            line = self.process.stdout.readline()
        if not line.startswith("arbiter listening on "):
            self.process.wait(timeout=10)
            raise RuntimeError(f"server did not start: {line!r}\n{''.join(self.stderr_lines)}")
        self.port = int(line.rsplit(":", 1)[1])
        if self.http:
            line = self.process.stdout.readline()  # "arbiter http listening on 127.0.0.1:PORT"
            if not line.startswith("arbiter http listening on "):
                raise RuntimeError(f"the HTTP listener did not start: {line!r}\n{''.join(self.stderr_lines)}")
            self.http_port = int(line.rsplit(":", 1)[1])
        self.wait_serving()
        return self

    def _drain_stderr(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr_lines.append(line)

    def health(self, service: str = "", timeout: float = 2.0) -> int:
        with self.channel() as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout).status

    def channel(self) -> grpc.Channel:
        """A plain channel to the server (override for TLS)."""
        return grpc.insecure_channel(self.target)

    def wait_serving(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.health() == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"server at {self.target} did not report SERVING")
            time.sleep(0.05)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait for a graceful exit; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self._drain.join(timeout=10)  # everything the process wrote is in stderr_lines
        return code

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to flush or clean up."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop()


def start_refused(*args: str) -> str:
    """Start a server that must refuse to run: its one line on stderr (it must exit 2 with exactly one)."""
    command = [sys.executable, "-m", "arbiter.server", "--address", "127.0.0.1:0", "--http-address", "off", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]
