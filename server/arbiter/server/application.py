"""Composition root: reads the config, opens the backend, builds the core and its front doors."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .app.auth import RateLimiter
from .app.core import Core
from .app.ports import NO_TELEMETRY, Stores, Telemetry
from .config import (
    Config,
    ConfigError,
    check_servable,
    describe_database,
    http_enabled,
    metrics_enabled,
    metrics_listener,
    split_address,
)
from .domain.timekeeping import Clock, SystemClock
from .storage.postgres.errors import PostgresNotUsable
from .storage.redis.errors import RedisNotUsable
from .storage.sqlite.backend import open_sqlite
from .storage.sqlite.lock import DatabaseInUse
from .transport.access_log import AccessLog
from .transport.grpc.server import GrpcFrontDoor, TlsFiles, build_grpc_server, make_servicers
from .transport.http.server import HttpFrontDoor, HttpTls, metrics_front_door, rest_front_door
from .transport.metrics import Metrics

if TYPE_CHECKING:
    from .demo import DemoKey

log = logging.getLogger("arbiter.server")


@dataclass
class Application:
    """A built server: start() to serve, stop() to drain and close."""

    config: Config
    core: Core
    grpc: GrpcFrontDoor
    rebuilds: ThreadPoolExecutor
    http: HttpFrontDoor | None = None
    metrics_http: HttpFrontDoor | None = None  # /metrics on a listener of its own
    metrics: Metrics | None = None
    demo_key: DemoKey | None = None
    _health_updates: set[asyncio.Future[None]] = field(default_factory=set)

    @property
    def port(self) -> int:
        return self.grpc.port

    @property
    def http_port(self) -> int | None:
        """The REST listener's bound port (None when it is off)."""
        return self.http.port if self.http is not None else None

    @property
    def metrics_port(self) -> int | None:
        """The port of the listener of its own that serves /metrics (None when it has none)."""
        return self.metrics_http.port if self.metrics_http is not None else None

    def _listeners(self) -> list[tuple[str, str, HttpFrontDoor]]:
        doors = [("--http-address", self.config.http_address, self.http)]
        doors.append(("--metrics-address", self.config.metrics_address, self.metrics_http))
        return [(flag, address, door) for flag, address, door in doors if door is not None]

    async def start(self) -> None:
        await self.grpc.start()
        for flag, address, door in self._listeners():
            try:
                await door.start()
            except OSError as exc:
                raise ConfigError(_cannot_listen(flag, address, exc)) from None
        if self.config.demo:
            from .demo import demo_key, load_demo

            created = await load_demo(self.core)
            log.info("demo catalogue: %d offers created", created)
            if not self.config.insecure_no_auth:
                self.demo_key = await demo_key(self.core, demo_key_file(self.config))
        await self.grpc.serving()
        self._follow_stores()

    def _follow_stores(self) -> None:
        """Health follows the stores on other servers: NOT_SERVING while one cannot be reached."""
        reachability = self.core.stores.reachability
        if reachability is None:
            return
        in_order = asyncio.Lock()

        async def tell() -> None:
            async with in_order:  # each update says what holds when it runs, so the last one is right
                await (self.grpc.serving() if reachability.reachable else self.grpc.not_serving())

        def changed(_: bool) -> None:
            update = asyncio.ensure_future(tell())
            self._health_updates.add(update)
            update.add_done_callback(self._health_updates.discard)

        reachability.watch(changed)
        if not reachability.reachable:
            changed(False)

    async def stop(
        self, grace: float | None = None, drain: float | None = None, hurry: asyncio.Event | None = None
    ) -> None:
        """Drain, then stop both doors, then the writer.

        Health says NOT_SERVING for `drain` seconds (Watch streams end at once)
        while every call is still served, so load balancers move away; `hurry`
        set ends the drain early. Then no new calls are taken and those in
        flight get `grace` seconds; past it, writes not yet begun are refused,
        so every caller is answered before the rest is cancelled and nothing
        answered as failed is committed.
        """
        grace = self.config.grace_seconds if grace is None else grace
        drain = self.config.drain_seconds if drain is None else drain
        await self.grpc.shutting_down()
        if drain > 0:
            waiting = asyncio.ensure_future((hurry or asyncio.Event()).wait())
            await asyncio.wait([waiting], timeout=drain)
            waiting.cancel()
        await asyncio.gather(
            self.grpc.stop(grace, self.core.stores.refuse_queued_writes),
            *(door.stop() for _, _, door in self._listeners()),
        )
        await self.core.close()
        self.rebuilds.shutdown(wait=True)


def _cannot_listen(flag: str, address: str, exc: Exception) -> str:
    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return (
        f"cannot listen on {address} ({why}): is another server using it? "
        f"Choose another with {flag} (port 0 picks a free one)"
        + (", or turn the REST API off with --http-address off" if flag == "--http-address" else "")
    )


def _open_stores(config: Config, clock: Clock, telemetry: Telemetry) -> Stores:
    """The backend --db names: a postgresql:// URL, or a SQLite file."""
    if isinstance(config.db, str):
        from .storage.postgres.backend import open_postgres  # psycopg only when asked for

        try:
            return open_postgres(
                config.db,
                config.redis,
                clock,
                config.customer_cache_size,
                telemetry,
                decision_log_days=config.decision_log_days,
            )
        except PostgresNotUsable as exc:
            raise ConfigError(f"--db {describe_database(config.db)}: {exc}") from None
        except RedisNotUsable as exc:
            raise ConfigError(f"--redis {describe_database(config.redis)}: {exc}") from None
    try:
        return open_sqlite(
            config.db,
            config.durability,
            clock,
            config.customer_cache_size,
            telemetry,
            decision_log_days=config.decision_log_days,
            busy_timeout_ms=config.busy_timeout_ms,
        )
    except DatabaseInUse as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:  # what the permission check before cannot see (root on a read-only file system)
        raise ConfigError(
            f"--db {config.db}: cannot create {exc.filename or config.db} ({exc.strerror or exc}); "
            "choose a --db in a directory the server may write to"
        ) from None


def demo_key_file(config: Config) -> Path:
    """Where --demo keeps its admin key: beside a SQLite file, or in the working directory for Postgres."""
    return Path(f"{config.db}.demo-key") if isinstance(config.db, Path) else Path("arbiter-postgres.demo-key")


def _tls(config: Config) -> TlsFiles | None:
    if config.tls_cert is None or config.tls_key is None:
        return None
    client_ca = config.tls_client_ca.read_bytes() if config.tls_client_ca else None
    return TlsFiles(config.tls_key.read_bytes(), config.tls_cert.read_bytes(), client_ca)


async def build_application(config: Config, clock: Clock | None = None) -> Application:
    """Open the database, load every tenant's view and bind the port (not yet serving)."""
    check_servable(config)
    clock = clock or SystemClock()
    metrics = Metrics(config.metrics_dir) if metrics_enabled(config) else None
    access = AccessLog() if config.log_format == "json" else None
    telemetry = metrics or NO_TELEMETRY
    stores = _open_stores(config, clock, telemetry)
    rebuilds = ThreadPoolExecutor(max_workers=1, thread_name_prefix="arbiter-views")
    try:
        limiter = RateLimiter(config.rate_limit, config.rate_burst or config.rate_limit) if config.rate_limit else None
        core = Core.start(
            stores,
            clock,
            authenticate=not config.insecure_no_auth,
            limiter=limiter,
            rebuilds=rebuilds,
            telemetry=telemetry,
            decision_log_sample=config.decision_log_sample,
        )
        if metrics is not None:
            metrics.count_offers(core.views.offers_by_status)
        try:
            door = await build_grpc_server(
                core,
                address=config.address,
                max_message_bytes=config.max_message_bytes,
                max_concurrent_rpcs=config.max_concurrent_rpcs,
                tls=_tls(config),
                metrics=metrics,
                access=access,
                shared_port=config.shared_ports,
            )
        except RuntimeError as exc:  # grpc's "Failed to bind to address"
            raise ConfigError(_cannot_listen("--address", config.address, exc)) from None
    except BaseException:
        await stores.close()
        rebuilds.shutdown()
        raise
    tls = HttpTls(config.tls_cert, config.tls_key, config.tls_client_ca) if config.tls_cert and config.tls_key else None
    http = metrics_http = None
    if http_enabled(config):
        host, port = split_address(config.http_address)
        http = rest_front_door(
            make_servicers(core),
            core.auth,
            host=host,
            port=port,
            tls=tls,
            max_body_bytes=config.max_message_bytes,
            metrics=metrics,
            serve_metrics=not metrics_listener(config),
            access=access,
            shared_port=config.shared_ports,
        )
    if metrics is not None and metrics_listener(config):
        host, port = split_address(config.metrics_address)
        metrics_http = metrics_front_door(metrics, host=host, port=port, tls=tls, shared_port=config.shared_ports)
    offers = sum(len(core.views.current(t).offers) for t in core.views.tenants())
    log.info("loaded %d offers from %s", offers, describe_database(config.db))
    return Application(config, core, door, rebuilds, http, metrics_http, metrics)
