"""Composition root: builds storage, servicers, health and reflection into one server."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from sqlite_utils import Database

from arbiter.v1 import (
    api_keys_pb2,
    api_keys_pb2_grpc,
    catalog_pb2,
    catalog_pb2_grpc,
    contact_policies_pb2,
    contact_policies_pb2_grpc,
    decisions_pb2,
    decisions_pb2_grpc,
    offers_pb2,
    offers_pb2_grpc,
    tenants_pb2,
    tenants_pb2_grpc,
)

from .config import Config, check_servable
from .domain.access import Role
from .domain.timekeeping import utc_now, utc_now_us
from .storage.api_keys import ApiKeyRepository
from .storage.catalog_repository import CatalogRepository
from .storage.counters import Counters
from .storage.customer_histories import CustomerHistories
from .storage.decision_runner import DecisionRunner
from .storage.decision_state import DecisionState
from .storage.offer_cache import OfferCache
from .storage.offer_repository import OfferRepository
from .storage.outcome_store import OutcomeStore
from .storage.policy_repository import PolicyRepository
from .storage.reader import Reader
from .storage.tenant_settings import TenantSettingsRepository
from .storage.writer import Writer
from .transport.access import AccessControl, RateLimiter
from .transport.api_key_servicer import ApiKeyServicer
from .transport.catalog_servicer import CatalogServicer
from .transport.decision_servicer import DecisionServicer
from .transport.offer_servicer import OfferServicer
from .transport.policy_servicer import ContactPolicyServicer
from .transport.tenant_servicer import TenantServicer

log = logging.getLogger("arbiter.server")
DEMO_TENANT = "default"

SERVICE_NAMES = (
    offers_pb2.DESCRIPTOR.services_by_name["OfferService"].full_name,
    decisions_pb2.DESCRIPTOR.services_by_name["DecisionService"].full_name,
    tenants_pb2.DESCRIPTOR.services_by_name["TenantService"].full_name,
    catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name,
    contact_policies_pb2.DESCRIPTOR.services_by_name["ContactPolicyService"].full_name,
    api_keys_pb2.DESCRIPTOR.services_by_name["ApiKeyService"].full_name,
)


@dataclass
class Application:
    """A built server: start() to serve, stop() to drain and close."""

    config: Config
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    writer: Writer
    reader: Reader
    catalog: CatalogRepository
    offers: OfferRepository
    keys: ApiKeyRepository
    demo_key: str | None = None

    async def start(self) -> None:
        await self.server.start()
        if self.config.demo:
            from .demo import load_demo_catalogue

            created = await load_demo_catalogue(self.catalog, self.offers)
            log.info("demo catalogue: %d offers created", created)
            if not self.config.insecure_no_auth:
                _, self.demo_key = await self.keys.create(DEMO_TENANT, "demo (make run)", Role.ADMIN, None)
        await self._set_health(health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float | None = None) -> None:
        """NOT_SERVING first, so load balancers move away, then drain calls, then the writer."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.config.grace_seconds if grace is None else grace)
        await self.writer.close()
        self.reader.close()
        self.keys.close()

    async def _set_health(self, status: health_pb2.HealthCheckResponse.ServingStatus.ValueType) -> None:
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, status)


def _has_outcomes(db: Database, tenant: str, offer_id: str) -> bool:
    row = db.execute("SELECT 1 FROM outcomes WHERE tenant = ? AND offer_id = ? LIMIT 1", [tenant, offer_id])
    return row.fetchone() is not None


def _drop_counters(db: Database, tenant: str, offer_id: str) -> None:
    db.execute("DELETE FROM offer_daily WHERE tenant = ? AND offer_id = ?", [tenant, offer_id])
    db.execute("DELETE FROM model_stats WHERE tenant = ? AND offer_id = ?", [tenant, offer_id])


async def build_application(config: Config) -> Application:
    """Open the database, load the caches and bind the port (not yet serving)."""
    check_servable(config)
    loop = asyncio.get_running_loop()
    writer = Writer(config.db, config.durability)
    writer.start(loop)  # opens and migrates the database
    reader = Reader(config.db)

    offer_cache = OfferCache()
    catalog = CatalogRepository(writer, reader, utc_now)
    offers = OfferRepository(writer, reader, offer_cache, catalog, utc_now)
    policies = PolicyRepository(writer, reader, utc_now)
    settings = TenantSettingsRepository(writer, utc_now)
    keys = ApiKeyRepository(config.db, writer, reader, utc_now)
    limiter = RateLimiter(config.rate_limit, config.rate_burst or config.rate_limit) if config.rate_limit else None
    access = AccessControl(None if config.insecure_no_auth else keys, utc_now, limiter)
    counters = Counters()
    histories = CustomerHistories(writer, utc_now_us, capacity=config.customer_cache_size)
    loaded = offers.load()
    reader.run_now(catalog.load)
    reader.run_now(policies.load)
    reader.run_now(settings.load)
    reader.run_now(counters.load)
    reader.run_now(histories.load_known)
    log.info("loaded %d offers from %s", loaded, config.db)

    offers.history_check = _has_outcomes
    offers.delete_hooks.append(_drop_counters)
    offers.delete_listeners.append(lambda tenant, offer_id: counters.tenant(tenant).forget_offer(offer_id))
    state = DecisionState(offer_cache, catalog, policies, settings, counters, writer)
    outcomes = OutcomeStore(writer, offer_cache, settings, counters, histories, utc_now_us)
    runner = DecisionRunner(state, histories, outcomes, offer_cache, settings)

    server = grpc.aio.server(
        options=[
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.max_send_message_length", max(config.max_message_bytes, 16 * 1024 * 1024)),
        ],
        # Calls beyond this are refused at once with RESOURCE_EXHAUSTED rather than queued.
        maximum_concurrent_rpcs=config.max_concurrent_rpcs,
    )
    offers_pb2_grpc.add_OfferServiceServicer_to_server(OfferServicer(access, offers), server)
    decisions_pb2_grpc.add_DecisionServiceServicer_to_server(DecisionServicer(access, runner, outcomes), server)
    tenants_pb2_grpc.add_TenantServiceServicer_to_server(TenantServicer(access, settings), server)
    catalog_pb2_grpc.add_CatalogServiceServicer_to_server(CatalogServicer(access, catalog, offer_cache), server)
    contact_policies_pb2_grpc.add_ContactPolicyServiceServicer_to_server(
        ContactPolicyServicer(access, policies), server
    )
    api_keys_pb2_grpc.add_ApiKeyServiceServicer_to_server(ApiKeyServicer(access, keys), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    if config.tls_cert is not None and config.tls_key is not None:
        client_ca = config.tls_client_ca.read_bytes() if config.tls_client_ca else None
        credentials = grpc.ssl_server_credentials(
            [(config.tls_key.read_bytes(), config.tls_cert.read_bytes())],
            root_certificates=client_ca,
            require_client_auth=client_ca is not None,
        )
        port = server.add_secure_port(config.address, credentials)
    else:
        port = server.add_insecure_port(config.address)
    app = Application(config, server, port, health_servicer, writer, reader, catalog, offers, keys)
    # The aio health servicer starts out SERVING; nothing is ready until start().
    await app._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
    return app
