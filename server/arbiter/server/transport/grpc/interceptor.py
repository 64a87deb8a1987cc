"""What runs around every Arbiter RPC: deadline check, authentication, error mapping, call counts, metrics
(transport layer).

One grpc.aio server interceptor wraps each Arbiter method once (the
wrapped handlers are cached by method name): before the servicer runs, a
call whose deadline already passed is refused and the caller is
authenticated (the principal goes to the servicer through a context
variable); afterwards, domain errors become their status from the one error
table, and anything unexpected is logged with a request id and answered
INTERNAL; a streaming method's errors end its stream the same way. Health and
reflection need no key; with metrics on, every method,
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
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar, Token
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
StreamBehavior = Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]


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
        elif method.startswith(ARBITER_PREFIX) and handler.unary_stream is not None:
            handler = grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(method, handler.unary_stream),
                request_deserializer=_tolerant(handler.request_deserializer, method),
                response_serializer=handler.response_serializer,
            )
        if self._metrics is not None:
            handler = measured(self._metrics, method, handler)
        self._handlers[method] = handler
        return handler

    def _wrap(self, method: str, behavior: Behavior) -> Behavior:
        name = method.rsplit("/", 1)[-1]
        call = _Calls(name, method, self._authenticator, self._access, self.concurrency)

        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            request_id = call.new_request_id()
            caller: Principal | None = None
            token = None
            try:
                caller, token = call.admit(request, context)
                response = await behavior(request, context)
                call.succeeded(request_id, caller, started, getattr(response, "decision_id", None))
                return response
            except _PastDeadline:
                status = None
            except grpc.aio.AbortError:
                raise
            except Exception as error:
                status = call.failed(error, request_id, caller, started)
            finally:
                call.leave(caller, token)
            await _abort(context, status)

        return wrapped

    def _wrap_stream(self, method: str, behavior: StreamBehavior) -> StreamBehavior:
        """As `_wrap`, for a method answering with a stream: its errors end the stream with their status."""
        name = method.rsplit("/", 1)[-1]
        call = _Calls(name, method, self._authenticator, self._access, self.concurrency)

        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            started = time.perf_counter()
            request_id = call.new_request_id()
            caller: Principal | None = None
            token = None
            try:
                caller, token = call.admit(request, context)
                async for response in behavior(request, context):
                    yield response
                call.succeeded(request_id, caller, started, None)
                return
            except _PastDeadline:
                status = None
            except grpc.aio.AbortError:
                raise
            except Exception as error:
                status = call.failed(error, request_id, caller, started)
            finally:
                call.leave(caller, token)
            await _abort(context, status)

        return wrapped


class _PastDeadline(Exception):
    """The call's deadline had passed before it started."""


async def _abort(context: grpc.aio.ServicerContext, status: Any) -> None:
    """End the call with `status` (None: the deadline had passed before it started)."""
    if status is None:
        await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the deadline passed before the call started")
    await context.abort(status.code, status.details, status.trailing_metadata)


class _Calls:
    """What the interceptor does around every call of one method: admit, count, log, map errors, release."""

    __slots__ = ("_access", "_authenticate", "_concurrency", "_method", "_name")

    def __init__(
        self,
        name: str,
        method: str,
        authenticator: Authenticator,
        access: AccessLog | None,
        concurrency: ConcurrencyLimit | None,
    ) -> None:
        self._name = name
        self._method = method
        self._authenticate = authenticator.authenticate
        self._access = access
        self._concurrency = concurrency

    def new_request_id(self) -> str:
        return new_request_id() if self._access is not None else ""

    def admit(self, request: Any, context: grpc.aio.ServicerContext) -> tuple[Principal, Token[Principal]]:
        """Check the request decoded and the deadline, authenticate, take a concurrency slot; raises if refused."""
        if isinstance(request, Undecodable):
            raise request.error
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            CALL_COUNTS[self._name, "DEADLINE_EXCEEDED"] += 1
            raise _PastDeadline
        caller = self._authenticate(credentials_of(context.invocation_metadata() or ()))
        # Only now does the call take a slot: its request is whole and decoded, its caller known.
        if self._concurrency is not None:
            self._concurrency.enter()
        return caller, CURRENT_PRINCIPAL.set(caller)

    def leave(self, caller: Principal | None, token: Token[Principal] | None) -> None:
        """Give back what `admit` took (nothing when it refused the call)."""
        if token is None:
            return
        if self._concurrency is not None:
            self._concurrency.leave()
        CURRENT_PRINCIPAL.reset(token)

    def succeeded(self, request_id: str, caller: Principal, started: float, decision_id: str | None) -> None:
        CALL_COUNTS[self._name, "OK"] += 1
        if self._access is not None:
            self._access.record(
                request_id=request_id,
                method=self._method,
                tenant=caller.tenant,
                status="OK",
                duration_s=time.perf_counter() - started,
                decision_id=decision_id,
            )

    def failed(self, error: Exception, request_id: str, caller: Principal | None, started: float) -> Any:
        """The status a failed call ends with: a domain error's from the error table, else INTERNAL (logged)."""
        request_id = request_id or new_request_id()
        if isinstance(error, DomainError):
            status = grpc_status(error, request_id)
        else:
            log.exception("unexpected error in %s (request id %s)", self._name, request_id)
            status = internal_grpc_status(request_id)
        CALL_COUNTS[self._name, status.code.name] += 1
        if self._access is not None:
            self._access.record(
                request_id=request_id,
                method=self._method,
                tenant=caller.tenant if caller is not None else None,
                status=status.code.name,
                duration_s=time.perf_counter() - started,
            )
        return status
