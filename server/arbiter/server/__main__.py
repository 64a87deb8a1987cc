"""Entry point: `python -m arbiter.server` or the `arbiter` console script."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import signal
import sys
from collections.abc import Sequence

from .application import build_application
from .config import Config, ConfigError, describe_database, is_loopback, load_config, split_address
from .logs import configure_logging
from .transport.grpc.interceptor import CALL_COUNTS

log = logging.getLogger("arbiter.server")


async def serve(config: Config) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully."""
    app = await build_application(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, print_call_counts)
    try:
        await app.start()
    except BaseException:
        await app.stop(grace=0, drain=0)
        raise
    # Everything loaded at start-up (catalogue, counters, caches) lives for the
    # whole run: move it out of the collector's way so that collections while
    # serving only scan what requests create.
    gc.collect()
    gc.freeze()
    host, _ = split_address(config.address)
    if app.demo_key is not None:
        how = "new, kept in" if app.demo_key.new else "kept in"
        print(f"demo admin API key for tenant 'default' ({how} {app.demo_key.file}): {app.demo_key.secret}", flush=True)
    elif not config.insecure_no_auth and not app.core.keys.any_usable():
        log.warning(
            "no usable API key in %s: every call but health and reflection will be refused; create one with "
            "`arbiter keys --db %s create --tenant default --role admin` (the server picks it up at once)",
            describe_database(config.db),
            describe_database(config.db),
        )
    if config.insecure_no_auth:
        log.warning("authentication is OFF (--insecure-no-auth): every caller acts for the tenant it names")
    elif config.tls_cert is None and not is_loopback(host):
        log.warning("serving %s without TLS: API keys cross the network in clear text", config.address)
    # One machine-readable line on stdout: tools (and tests) read the bound port here.
    print(f"arbiter listening on {host}:{app.port}", flush=True)
    if app.http_port is not None:
        http_host, _ = split_address(config.http_address)
        print(f"arbiter http listening on {http_host}:{app.http_port}", flush=True)
    if app.metrics_port is not None:
        metrics_host, _ = split_address(config.metrics_address)
        print(f"arbiter metrics listening on {metrics_host}:{app.metrics_port}", flush=True)
    log.info("serving on %s:%d (database %s)", host, app.port, describe_database(config.db))
    await stop.wait()
    stop.clear()  # a second signal ends the drain early
    log.info(
        "shutting down: health NOT_SERVING for %g s while still serving, then draining calls", config.drain_seconds
    )
    await app.stop(hurry=stop)
    log.info("stopped")


def print_call_counts() -> None:
    """On SIGUSR1: one JSON line on stdout with the answers per method and status code so far."""
    counts: dict[str, dict[str, int]] = {}
    for (method, code), count in sorted(CALL_COUNTS.items()):
        counts.setdefault(method, {})[code] = count
    print("arbiter call counts " + json.dumps(counts, sort_keys=True), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["keys"]:
        from .keys_cli import keys_main

        return keys_main(args[1:])
    if args[:1] == ["backup"]:
        from .backup_cli import backup_main

        return backup_main(args[1:])
    if args[:1] == ["restore"]:
        from .backup_cli import restore_main

        return restore_main(args[1:])
    if args[:1] == ["migrate"]:
        from .migrate_cli import migrate_main

        return migrate_main(args[1:])
    try:
        config = load_config(args)
    except ConfigError as exc:
        print(f"arbiter: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log_level, config.log_format)
    if config.workers > 1:
        from .workers import supervise

        try:
            return supervise(config, serve_process)
        except ConfigError as exc:
            print(f"arbiter: {exc}", file=sys.stderr)
            return 2
    return serve_process(config)


def serve_process(config: Config) -> int:
    """Serve in this process until stopped; 2 (after one line on stderr) when the configuration is refused."""
    try:
        asyncio.run(serve(config))
    except ConfigError as exc:
        print(f"arbiter: {exc}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
