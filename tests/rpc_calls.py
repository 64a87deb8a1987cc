"""Calling any RPC by its descriptor, unary or server-streaming alike, for tests that walk every method."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.descriptor import MethodDescriptor


def method_caller(channel: grpc.Channel, method: MethodDescriptor, **serializers: Any) -> Callable[..., Any]:
    """A callable sending one request to `method`: its answer, or for a server stream the list of its messages
    (read to the end, so that the call's status is known and raised as for a unary call)."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    if not method.server_streaming:
        return channel.unary_unary(path, **serializers)
    stream = channel.unary_stream(path, **serializers)

    def call(request: Any, **options: Any) -> list[Any]:
        return list(stream(request, **options))

    return call
