"""Entry point: `python -m arbiter.server` or the `arbiter` console script."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from .app import build_application
from .config import Config, ConfigError, load_config, split_address

log = logging.getLogger("arbiter.server")


async def serve(config: Config) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully."""
    app = await build_application(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await app.start()
    except BaseException:
        await app.stop(grace=0)
        raise
    host, _ = split_address(config.address)
    # One machine-readable line on stdout: tools (and tests) read the bound port here.
    print(f"arbiter listening on {host}:{app.port}", flush=True)
    log.info("serving on %s:%d (database %s)", host, app.port, config.db)
    await stop.wait()
    log.info("shutting down: health NOT_SERVING, draining calls")
    await app.stop()
    log.info("stopped")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = load_config(argv)
    except ConfigError as exc:
        print(f"arbiter: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        asyncio.run(serve(config))
    except ConfigError as exc:
        print(f"arbiter: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
