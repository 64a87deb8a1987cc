"""The real server application inside the test process, for tests that need to set its clock.

`InProcessServer` builds the application exactly as `python -m arbiter.server`
does (application.build_application), on a free loopback port, and runs it on a
thread with an event loop of its own; the test talks to it through the real
client over the real port, and moves its clock with `clock.advance`.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import backends

from arbiter.server.application import Application, build_application
from arbiter.server.config import Config
from arbiter.server.domain.timekeeping import ManualClock

START_TIMEOUT = 30.0


class InProcessServer:
    """A server on 127.0.0.1 with a ManualClock, started by `with`."""

    def __init__(self, db: Path, *, auth: bool = True, start: datetime | None = None, **config: object) -> None:
        base = Config(
            address="127.0.0.1:0",
            http_address="127.0.0.1:0",
            db=backends.database(db),
            redis=backends.redis_url() if backends.on_postgres() else "",
            insecure_no_auth=not auth,
            grace_seconds=1.0,
            drain_seconds=0.0,
        )
        self.config = replace(base, **config)  # type: ignore[arg-type]
        self.clock = ManualClock(start or datetime.now(UTC))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="in-process-server", daemon=True)
        self.app: Application | None = None

    @property
    def target(self) -> str:
        assert self.app is not None
        return f"127.0.0.1:{self.app.port}"

    def _run(self, coroutine: object, timeout: float = START_TIMEOUT) -> object:
        future: Future[object] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)  # type: ignore[arg-type]
        return future.result(timeout)

    def __enter__(self) -> InProcessServer:
        self._thread.start()

        async def start() -> Application:
            app = await build_application(self.config, self.clock)
            await app.start()
            return app

        try:
            self.app = self._run(start())  # type: ignore[assignment]
        except BaseException:
            self._stop_loop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.app is not None:
                self._run(self.app.stop(grace=1.0))
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
