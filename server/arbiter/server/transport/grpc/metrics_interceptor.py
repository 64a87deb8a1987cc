"""grpc-ecosystem metrics for every gRPC method: started, handled by code, handling time (transport layer).

The outermost interceptor, so it sees each call's final status: the one the
Arbiter interceptor aborted with, or OK. Health and reflection are counted
too. Wrapped handlers and label children are cached per method.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from ..metrics import Metrics

Behavior = Callable[..., Any]


class _MethodMetrics:
    """One method's bound label children."""

    def __init__(self, metrics: Metrics, full_method: str, rpc_type: str) -> None:
        service, _, method = full_method.lstrip("/").rpartition("/")
        self._labels = (service, method, rpc_type)
        self.started = metrics.grpc_started.labels(*self._labels)
        self.seconds = metrics.grpc_seconds.labels(*self._labels)
        self._metrics = metrics
        self._handled: dict[str, Any] = {}

    def handled(self, code: str) -> Any:
        child = self._handled.get(code)
        if child is None:
            child = self._handled[code] = self._metrics.grpc_handled.labels(*self._labels, code)
        return child


def _code_of(context: grpc.aio.ServicerContext, error: BaseException | None) -> str:
    """The status a call ends with: what the servicer or an interceptor set, else from the error."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if error is None:
        return "OK"
    return "CANCELLED" if isinstance(error, asyncio.CancelledError) else "UNKNOWN"


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    """Counts and times every call of every method."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
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
        wrapped = self._wrap(method, handler)
        self._handlers[method] = wrapped
        return wrapped

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        kinds = (
            ("unary_unary", "unary", grpc.unary_unary_rpc_method_handler),
            ("unary_stream", "server_stream", grpc.unary_stream_rpc_method_handler),
            ("stream_unary", "client_stream", grpc.stream_unary_rpc_method_handler),
            ("stream_stream", "bidi_stream", grpc.stream_stream_rpc_method_handler),
        )
        for attribute, rpc_type, make in kinds:
            behavior = getattr(handler, attribute)
            if behavior is None:
                continue
            measured = _MethodMetrics(self._metrics, method, rpc_type)
            streams = inspect.isasyncgenfunction(behavior)
            counted = _streaming(behavior, measured) if streams else _single(behavior, measured)
            return make(
                counted,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler


def _single(behavior: Behavior, measured: _MethodMetrics) -> Behavior:
    async def counted(request: Any, context: grpc.aio.ServicerContext) -> Any:
        measured.started.inc()
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            return await behavior(request, context)
        except BaseException as exc:
            error = exc
            raise
        finally:
            measured.handled(_code_of(context, error)).inc()
            measured.seconds.observe(time.perf_counter() - started)

    return counted


def _streaming(behavior: Behavior, measured: _MethodMetrics) -> Behavior:
    async def counted(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        measured.started.inc()
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            async for response in behavior(request, context):
                yield response
        except BaseException as exc:
            error = exc
            raise
        finally:
            measured.handled(_code_of(context, error)).inc()
            measured.seconds.observe(time.perf_counter() - started)

    return counted
