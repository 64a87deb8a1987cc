"""Composition root: builds storage, servicers, health and reflection into one server."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from arbiter.v1 import offers_pb2, offers_pb2_grpc

from .config import Config, check_servable
from .domain.timekeeping import utc_now
from .storage.offer_cache import OfferCache
from .storage.offer_repository import OfferRepository
from .storage.reader import Reader
from .storage.writer import Writer
from .transport.offer_servicer import OfferServicer

log = logging.getLogger("arbiter.server")

SERVICE_NAMES = (offers_pb2.DESCRIPTOR.services_by_name["OfferService"].full_name,)


@dataclass
class Application:
    """A built server: start() to serve, stop() to drain and close."""

    config: Config
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    writer: Writer
    reader: Reader
    offers: OfferRepository

    async def start(self) -> None:
        await self.server.start()
        if self.config.demo:
            from .demo import load_demo_catalogue

            created = await load_demo_catalogue(self.offers)
            log.info("demo catalogue: %d offers created", created)
        await self._set_health(health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float | None = None) -> None:
        """NOT_SERVING first, so load balancers move away, then drain calls, then the writer."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.config.grace_seconds if grace is None else grace)
        await self.writer.close()
        self.reader.close()

    async def _set_health(self, status: health_pb2.HealthCheckResponse.ServingStatus.ValueType) -> None:
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, status)


async def build_application(config: Config) -> Application:
    """Open the database, load the caches and bind the port (not yet serving)."""
    check_servable(config)
    loop = asyncio.get_running_loop()
    writer = Writer(config.db, config.durability)
    writer.start(loop)  # opens and migrates the database
    reader = Reader(config.db)
    cache = OfferCache()
    offers = OfferRepository(writer, reader, cache, utc_now)
    loaded = offers.load()
    log.info("loaded %d offers from %s", loaded, config.db)

    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    offers_pb2_grpc.add_OfferServiceServicer_to_server(OfferServicer(offers), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    port = server.add_insecure_port(config.address)
    app = Application(config, server, port, health_servicer, writer, reader, offers)
    # The aio health servicer starts out SERVING; nothing is ready until start().
    await app._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
    return app
