"""`--workers N`: N processes serving the same ports, each with its own event loop (composition root).

The supervisor (the process started) checks the configuration, fixes every
port (a port 0 becomes a free port, held by an unlistening socket so it
stays this server's), freezes what it has loaded out of the collector's way,
and forks the workers before any gRPC object exists (gRPC's threads do not
survive a fork). Each worker binds the ports with SO_REUSEPORT, so the
kernel spreads connections over them, and shares state with the others only
through Postgres and Redis. SIGTERM or SIGINT is passed to every worker,
each drains as a single server does, and the supervisor exits once all
have. A worker that dies otherwise is logged and started again; one that
refuses its configuration (exit 2) stops the server with that code.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable

from .config import Config, ConfigError, check_servable, http_enabled, metrics_listener, split_address
from .transport.metrics import count_in_files

log = logging.getLogger("arbiter.server")

RESTART_PAUSE_SECONDS = 1.0  # between a worker's death and its replacement, so a crash loop cannot spin
EXIT_REFUSED = 2


def supervise(config: Config, serve_one: Callable[[Config], int]) -> int:
    """Run `config.workers` workers, each `serve_one(worker_config)`, until a signal stops them."""
    check_servable(config)
    held: list[socket.socket] = []
    try:
        worker_config = _shared_ports(config, held)
    except OSError as exc:
        raise ConfigError(f"cannot reserve the server's ports ({exc.strerror or exc})") from None
    metrics_dir = tempfile.mkdtemp(prefix="arbiter-metrics-")
    worker_config = dataclasses.replace(worker_config, metrics_dir=metrics_dir)
    count_in_files(metrics_dir)  # before the fork: every worker's instruments count there
    try:
        return _run_workers(config.workers, worker_config, serve_one, held)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _run_workers(
    count: int, worker_config: Config, serve_one: Callable[[Config], int], held: list[socket.socket]
) -> int:
    gc.collect()
    gc.freeze()  # what the supervisor loaded is shared with the workers copy-on-write
    stopping = False
    workers: dict[int, int] = {}  # pid -> worker number

    def start(number: int) -> None:
        # Only the first worker loads the demo catalogue: the others would race it.
        own = dataclasses.replace(worker_config, demo=worker_config.demo and number == 0)
        pid = os.fork()
        if pid == 0:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            code = 1
            try:
                code = serve_one(own)
            except BaseException:
                log.exception("worker %d failed", number)
            finally:
                sys.stdout.flush()
                os._exit(code)  # never back into the supervisor's loop
        workers[pid] = number

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in workers:
            _signal(pid, signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for number in range(count):
        start(number)
    log.info("serving with %d workers (pids %s)", count, ", ".join(map(str, workers)))
    code = 0
    while workers:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid not in workers:
            continue
        number = workers.pop(pid)
        exit_code = os.waitstatus_to_exitcode(status)
        if stopping:
            continue
        if exit_code == EXIT_REFUSED:
            log.error("worker %d (pid %d) refused to serve: stopping the server", number, pid)
            code = EXIT_REFUSED
            stop(signal.SIGTERM, None)
            continue
        log.error("worker %d (pid %d) exited with %s; starting it again", number, pid, _describe(exit_code))
        time.sleep(RESTART_PAUSE_SECONDS)
        if not stopping:
            start(number)
    for sock in held:
        sock.close()
    return code


def _shared_ports(config: Config, held: list[socket.socket]) -> Config:
    """The workers' configuration: every listener on a fixed port, bound by each worker with SO_REUSEPORT."""
    changes: dict[str, object] = {"address": _fixed(config.address, held), "workers": 1, "shared_ports": True}
    if http_enabled(config):
        changes["http_address"] = _fixed(config.http_address, held)
    if metrics_listener(config):
        changes["metrics_address"] = _fixed(config.metrics_address, held)
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]


def _fixed(address: str, held: list[socket.socket]) -> str:
    """`address` with a port 0 replaced by a free one, which a bound (not listening) socket keeps ours."""
    host, port = split_address(address)
    if port != 0:
        return address
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, 0))
    held.append(sock)
    chosen = sock.getsockname()[1]
    return f"[{host}]:{chosen}" if family == socket.AF_INET6 else f"{host}:{chosen}"


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
        os.kill(pid, signum)


def _describe(exit_code: int) -> str:
    return f"signal {-exit_code}" if exit_code < 0 else f"code {exit_code}"
