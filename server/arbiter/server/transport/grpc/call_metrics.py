"""grpc-ecosystem metrics for every gRPC method: started, handled by code, handling time (transport layer).

`measured` wraps a method handler outermost, so it sees each call's final
status: the one the Arbiter wrapper aborted with, or OK. The one server
interceptor (interceptor.py) applies it to every method, health and
reflection included, and caches the result: grpc.aio runs each interceptor
for every call, so a second interceptor would cost a coroutine per call.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Callable
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
        self.handled_ok = self.handled("OK")

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


_KINDS = (
    ("unary_unary", "unary", grpc.unary_unary_rpc_method_handler),
    ("unary_stream", "server_stream", grpc.unary_stream_rpc_method_handler),
    ("stream_unary", "client_stream", grpc.stream_unary_rpc_method_handler),
    ("stream_stream", "bidi_stream", grpc.stream_stream_rpc_method_handler),
)


def measured(metrics: Metrics, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """`handler` with every call counted and timed under `method` ("/package.Service/Method")."""
    for attribute, rpc_type, make in _KINDS:
        behavior = getattr(handler, attribute)
        if behavior is None:
            continue
        labels = _MethodMetrics(metrics, method, rpc_type)
        streams = inspect.isasyncgenfunction(behavior)
        counted = _streaming(behavior, labels) if streams else _single(behavior, labels)
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
        try:
            response = await behavior(request, context)
        except BaseException as exc:
            measured.handled(_code_of(context, exc)).inc()
            measured.seconds.observe(time.perf_counter() - started)
            raise
        measured.handled_ok.inc()
        measured.seconds.observe(time.perf_counter() - started)
        return response

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
