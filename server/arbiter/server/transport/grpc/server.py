"""The gRPC server over the core: servicers, interceptor, health and reflection, its port (transport layer)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

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

from ...app.core import Core
from ..access_log import AccessLog
from ..metrics import Metrics
from .api_key_servicer import ApiKeyServicer
from .catalog_servicer import CatalogServicer
from .decision_servicer import DecisionServicer
from .interceptor import ArbiterInterceptor
from .offer_servicer import OfferServicer
from .policy_servicer import ContactPolicyServicer
from .tenant_servicer import TenantServicer

SERVICE_NAMES = (
    offers_pb2.DESCRIPTOR.services_by_name["OfferService"].full_name,
    decisions_pb2.DESCRIPTOR.services_by_name["DecisionService"].full_name,
    tenants_pb2.DESCRIPTOR.services_by_name["TenantService"].full_name,
    catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name,
    contact_policies_pb2.DESCRIPTOR.services_by_name["ContactPolicyService"].full_name,
    api_keys_pb2.DESCRIPTOR.services_by_name["ApiKeyService"].full_name,
)

# What one HTTP/2 connection may hold, and how long; each bounds what a peer that opens streams
# and never finishes them (or vanishes) can keep. Ping-flood protection keeps grpc's defaults
# (a client's pings without data at most every 5 minutes, 2 strikes).
CONNECTION_LIMITS: tuple[tuple[str, int], ...] = (
    # Streams open at once per connection (grpc's default is unlimited): one connection cannot
    # pile up thousands of unfinished requests; a client with more in flight queues them itself.
    ("grpc.max_concurrent_streams", 100),
    # Ping a connection after 60 s without traffic and close it if no answer comes within 20 s,
    # so a peer that vanished without closing frees its streams in under ~2 minutes, not hours.
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    # A connection with no call in progress for 5 minutes is closed (GOAWAY; clients reconnect
    # on their next call), so idle sockets do not accumulate.
    ("grpc.max_connection_idle_ms", 5 * 60_000),
    # Every connection is closed after 30 minutes (calls in progress get 30 s more to finish):
    # the longest an unfinished request stream can be held. Clients reconnect transparently.
    ("grpc.max_connection_age_ms", 30 * 60_000),
    ("grpc.max_connection_age_grace_ms", 30_000),
)


def make_servicers(core: Core) -> dict[str, Any]:
    """Every Arbiter service's implementation over the core, by service name ("OfferService").

    The REST door serves its routes with these same objects, so both doors share every decode and encode.
    """
    return {
        "OfferService": OfferServicer(core.offers),
        "DecisionService": DecisionServicer(core.decisions, core.outcomes),
        "TenantService": TenantServicer(core.tenants),
        "CatalogService": CatalogServicer(core.catalog),
        "ContactPolicyService": ContactPolicyServicer(core.policies),
        "ApiKeyService": ApiKeyServicer(core.keys),
    }


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM contents: the server's key and certificate chain, and the CA client certificates must chain to."""

    key: bytes
    certificate_chain: bytes
    client_ca: bytes | None = None


class HealthServicer(health.aio.HealthServicer):
    """grpcio-health-checking's aio servicer, plus `List`, and Watch streams that end at shutdown.

    The aio servicer (1.85) does not implement List: the generated base class
    raises NotImplementedError, which grpc logs as a traceback at every call.
    List answers what Check would answer for each registered service. Its
    Watch never ends by itself, so one open stream held every shutdown for the
    whole grace: here a stream says NOT_SERVING and ends once shutdown begins.
    """

    async def Watch(self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext) -> None:
        service = request.service
        condition = self._server_watchers[service]
        self._watcher_count_by_service[service] += 1
        try:
            last = None
            async with condition:
                while True:
                    status = self._server_status.get(service, health_pb2.HealthCheckResponse.SERVICE_UNKNOWN)
                    if status != last:
                        await context.write(health_pb2.HealthCheckResponse(status=status))
                        last = status
                    if self._gracefully_shutting_down:
                        return
                    await condition.wait()
        finally:
            self._watcher_count_by_service[service] -= 1
            if self._watcher_count_by_service[service] == 0:
                del self._server_watchers[service]
                del self._watcher_count_by_service[service]

    async def enter_graceful_shutdown(self) -> None:
        """Every service NOT_SERVING for good; every Watch stream, unknown services' too, wakes and ends."""
        await super().enter_graceful_shutdown()
        for condition in list(self._server_watchers.values()):
            async with condition:
                condition.notify_all()

    async def List(
        self, request: health_pb2.HealthListRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthListResponse:
        return health_pb2.HealthListResponse(
            statuses={
                name: health_pb2.HealthCheckResponse(status=status) for name, status in self._server_status.items()
            }
        )


async def _nothing() -> None:
    return None


# grpc's own grace is only a backstop: GrpcFrontDoor.stop cancels calls itself, after its grace.
_PATIENCE_SECONDS = 3600.0
_SEND_SECONDS = 1.0


@dataclass
class GrpcFrontDoor:
    """A bound (not yet started) gRPC server and its health servicer."""

    server: grpc.aio.Server
    port: int
    health: HealthServicer

    async def start(self) -> None:
        """Accept calls; health stays NOT_SERVING until `serving()`."""
        await self.server.start()

    async def serving(self) -> None:
        await self._set_health(health_pb2.HealthCheckResponse.SERVING)

    async def not_serving(self) -> None:
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)

    async def shutting_down(self) -> None:
        """Health NOT_SERVING for good, so load balancers move away; Watch streams end. Calls are still served."""
        await self.health.enter_graceful_shutdown()

    async def stop(self, grace: float, before_cancel: Callable[[], Awaitable[None]] = _nothing) -> None:
        """Refuse new calls; calls in flight get `grace` seconds, then `before_cancel` answers what it can.

        What is still running after that is cancelled (a moment later, so the
        answers `before_cancel` gave can be sent).
        """
        await self.health.enter_graceful_shutdown()
        stopping = asyncio.ensure_future(self.server.stop(_PATIENCE_SECONDS))
        done, _ = await asyncio.wait([stopping], timeout=grace)
        if not done:
            await before_cancel()
            done, _ = await asyncio.wait([stopping], timeout=_SEND_SECONDS)
            if not done:
                await self.server.stop(0)
        await stopping

    async def _set_health(self, status: health_pb2.HealthCheckResponse.ServingStatus.ValueType) -> None:
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, status)


async def build_grpc_server(
    core: Core,
    *,
    address: str,
    max_message_bytes: int,
    max_concurrent_rpcs: int,
    tls: TlsFiles | None,
    metrics: Metrics | None = None,
    access: AccessLog | None = None,
    shared_port: bool = False,
) -> GrpcFrontDoor:
    """Bind the port with every service registered; health answers NOT_SERVING until told otherwise.

    With `shared_port` the port is bound with SO_REUSEPORT, for the workers of one server to share
    (otherwise a port another process holds is refused, never silently shared)."""
    server = grpc.aio.server(
        # One interceptor: grpc.aio runs each one for every call. It also enforces
        # `max_concurrent_rpcs` (calls beyond it are refused at once with RESOURCE_EXHAUSTED, not
        # queued); grpc.aio's own `maximum_concurrent_rpcs` is not used: it counts a call from its
        # headers on, so streams that never send their whole message could hold every slot.
        interceptors=[ArbiterInterceptor(core.auth, access, metrics, max_concurrent_rpcs=max_concurrent_rpcs)],
        options=[
            ("grpc.so_reuseport", int(shared_port)),
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max(max_message_bytes, 16 * 1024 * 1024)),
            *CONNECTION_LIMITS,
        ],
    )
    servicers = make_servicers(core)
    offers_pb2_grpc.add_OfferServiceServicer_to_server(servicers["OfferService"], server)
    decisions_pb2_grpc.add_DecisionServiceServicer_to_server(servicers["DecisionService"], server)
    tenants_pb2_grpc.add_TenantServiceServicer_to_server(servicers["TenantService"], server)
    catalog_pb2_grpc.add_CatalogServiceServicer_to_server(servicers["CatalogService"], server)
    contact_policies_pb2_grpc.add_ContactPolicyServiceServicer_to_server(servicers["ContactPolicyService"], server)
    api_keys_pb2_grpc.add_ApiKeyServiceServicer_to_server(servicers["ApiKeyService"], server)
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    if tls is not None:
        credentials = grpc.ssl_server_credentials(
            [(tls.key, tls.certificate_chain)],
            root_certificates=tls.client_ca,
            require_client_auth=tls.client_ca is not None,
        )
        port = server.add_secure_port(address, credentials)
    else:
        port = server.add_insecure_port(address)
    door = GrpcFrontDoor(server, port, health_servicer)
    # The aio health servicer starts out SERVING; nothing is ready until the application says so.
    await door.not_serving()
    return door
