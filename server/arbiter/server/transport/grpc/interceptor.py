"""What runs around every Arbiter RPC: deadline check, authentication, error mapping, call counts, metrics
(transport layer).

One grpc.aio server interceptor wraps each unary Arbiter method once (the
wrapped handlers are cached by method name): before the servicer runs, a
call whose deadline already passed is refused and the caller is
authenticated (the principal goes to the servicer through a context
variable); afterwards, domain errors become their status from the one error
table, and anything unexpected is logged with a request id and answered
INTERNAL. Health and reflection need no key; with metrics on, every method,
those included, is also counted and timed (call_metrics.py).

The concurrency limit (`--max-concurrent-rpcs`) is enforced here, not by
grpc.aio: it counts authenticated Arbiter calls from the moment their request
has arrived whole and decoded, so unfinished streams and health checks never
take a slot (request_limits.py).
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import grpc

from ...app.auth import TENANT_HEADER, Authenticator, Credentials
from ...domain.access import Principal
from ...domain.errors import DomainError, InvalidArgument
from ..access_log import AccessLog
from ..errors import grpc_status, internal_grpc_status, new_request_id
from ..metrics import Metrics
from .call_metrics import measured
from .request_limits import ConcurrencyLimit, raw_check

log = logging.getLogger("arbiter.server.rpc")

ARBITER_PREFIX = "/arbiter."
CURRENT_PRINCIPAL: ContextVar[Principal] = ContextVar("arbiter_principal")
# Answers per method and status code since start-up; load tests read them to
# confirm every call succeeded (HTTP/2 load tools only see HTTP 200).
CALL_COUNTS: collections.Counter[tuple[str, str]] = collections.Counter()

Behavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


def principal() -> Principal:
    """Who the call being served acts as (set by the interceptor)."""
    return CURRENT_PRINCIPAL.get()


def credentials_of(metadata: tuple[tuple[str, str | bytes], ...]) -> Credentials:
    authorization = tenant = None
    for name, value in metadata:
        if not isinstance(value, str):  # binary metadata carries neither
            continue
        if name == "authorization":
            authorization = value
        elif name == TENANT_HEADER:
            tenant = value
    return Credentials(authorization=authorization, tenant=tenant)


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A request body that did not parse; the wrapped behavior answers it INVALID_ARGUMENT."""

    error: InvalidArgument


def _tolerant(deserializer: Callable[[bytes], Any] | None, method: str = "") -> Callable[[bytes], Any] | None:
    """The deserializer, with parse failures turned into an Undecodable instead of escaping as UNKNOWN.

    A request over `method`'s byte or item limit (request_limits.py) is not parsed at all.
    """
    if deserializer is None:
        return None
    parse = deserializer
    full_name = _message_name(deserializer)
    check = raw_check(method, getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None))

    def tolerant(data: bytes) -> Any:
        refused = check(data) if check is not None else None
        if refused is not None:
            return Undecodable(refused)
        try:
            return parse(data)
        except Exception as error:  # DecodeError, RecursionError-like limits, bad UTF-8
            return Undecodable(undecodable_request(full_name, error))

    return tolerant


def _message_name(deserializer: Callable[[bytes], Any]) -> str:
    owner = getattr(deserializer, "__self__", None)
    descriptor = getattr(owner, "DESCRIPTOR", None)
    return str(getattr(descriptor, "full_name", "request message"))


def undecodable_request(full_name: str, error: Exception) -> InvalidArgument:
    """Why a request body did not parse, as INVALID_ARGUMENT naming the message."""
    text = str(error)
    if "nest" in text.lower() or "depth" in text.lower() or "recursion" in text.lower():
        why = "values are nested deeper than protobuf decoding allows (Struct values: about 30 levels)"
    elif "utf-8" in text.lower() or "utf8" in text.lower():
        why = "a text field holds invalid UTF-8"
    else:
        why = "the bytes are not a protobuf encoding of it"
    return InvalidArgument.single("request", f"the request is not a valid {full_name}: {why}")


class ArbiterInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates, limits and maps errors for every Arbiter method; with `metrics`, counts every method's calls.

    `max_concurrent_rpcs` bounds the Arbiter calls in progress at once (None: no bound).
    """

    def __init__(
        self,
        authenticator: Authenticator,
        access: AccessLog | None = None,
        metrics: Metrics | None = None,
        *,
        max_concurrent_rpcs: int | None = None,
    ) -> None:
        self._authenticator = authenticator
        self._access = access
        self._metrics = metrics
        self.concurrency = ConcurrencyLimit(max_concurrent_rpcs) if max_concurrent_rpcs is not None else None
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method: str = details.method
        cached = self._handlers.get(method)
        if cached is not None:
            return cached
        handler = await continuation(details)
        if handler is None:  # an unknown method (not cached: callers choose the names)
            return None
        if method.startswith(ARBITER_PREFIX) and handler.unary_unary is not None:
            handler = grpc.unary_unary_rpc_method_handler(
                self._wrap(method, handler.unary_unary),
                request_deserializer=_tolerant(handler.request_deserializer, method),
                response_serializer=handler.response_serializer,
            )
        if self._metrics is not None:
            handler = measured(self._metrics, method, handler)
        self._handlers[method] = handler
        return handler

    def _wrap(self, method: str, behavior: Behavior) -> Behavior:
        name = method.rsplit("/", 1)[-1]
        authenticate = self._authenticator.authenticate
        access = self._access
        concurrency = self.concurrency

        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            token = None
            entered = False
            caller: Principal | None = None
            request_id = new_request_id() if access is not None else ""
            started = time.perf_counter()
            try:
                if isinstance(request, Undecodable):
                    raise request.error
                remaining = context.time_remaining()
                if remaining is not None and remaining <= 0:
                    CALL_COUNTS[name, "DEADLINE_EXCEEDED"] += 1
                    await context.abort(
                        grpc.StatusCode.DEADLINE_EXCEEDED, "the deadline passed before the call started"
                    )
                caller = authenticate(credentials_of(context.invocation_metadata() or ()))
                token = CURRENT_PRINCIPAL.set(caller)
                # Only now does the call take a slot: its request is whole and decoded, its caller known.
                if concurrency is not None:
                    concurrency.enter()
                    entered = True
                response = await behavior(request, context)
                CALL_COUNTS[name, "OK"] += 1
                if access is not None:
                    decision_id = getattr(response, "decision_id", None)
                    access.record(
                        request_id=request_id,
                        method=method,
                        tenant=caller.tenant,
                        status="OK",
                        duration_s=time.perf_counter() - started,
                        decision_id=decision_id,
                    )
                return response
            except DomainError as error:
                request_id = request_id or new_request_id()
                status = grpc_status(error, request_id)
            except grpc.aio.AbortError:
                raise
            except Exception:
                request_id = request_id or new_request_id()
                log.exception("unexpected error in %s (request id %s)", name, request_id)
                status = internal_grpc_status(request_id)
            finally:
                if entered and concurrency is not None:
                    concurrency.leave()
                if token is not None:
                    CURRENT_PRINCIPAL.reset(token)
            CALL_COUNTS[name, status.code.name] += 1
            if access is not None:
                access.record(
                    request_id=request_id,
                    method=method,
                    tenant=caller.tenant if caller is not None else None,
                    status=status.code.name,
                    duration_s=time.perf_counter() - started,
                )
            await context.abort(status.code, status.details, status.trailing_metadata)

        return wrapped
