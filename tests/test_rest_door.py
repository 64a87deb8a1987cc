"""The REST door's error answers, over a real port, with servicers that fail on purpose.

The end-to-end tests (test_rest_api.py) cannot make the core fail; here the
routes are served by stand-in servicers so that every wire status of the error
table, and an unexpected exception, can be seen as a REST caller sees them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from arbiter.server.app.auth import Authenticator
from arbiter.server.domain.errors import (
    DomainError,
    FailedPrecondition,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from arbiter.server.domain.timekeeping import ManualClock
from arbiter.server.transport.http.server import RestApi


class FailingOffers:
    """An OfferService whose GetOffer raises what it is told to."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def GetOffer(self, request: Any, context: Any) -> Any:
        raise self.error


def _serve(error: BaseException, path: str = "/api/v1/actions/act_1") -> tuple[int, dict[str, str], Any]:
    async def run() -> tuple[int, dict[str, str], Any]:
        def on_core(coro: Coroutine[Any, Any, Any]) -> Coroutine[Any, Any, Any]:
            return coro  # one loop here: the core's hand-over is a plain await

        api = RestApi(
            {"OfferService": FailingOffers(error)},
            Authenticator(None, ManualClock(datetime(2026, 1, 1, tzinfo=UTC))),
            on_core,
            max_body_bytes=1024,
        )
        async with TestClient(TestServer(api.application(), host="127.0.0.1")) as client:
            response = await client.get(path)
            return (
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                json.loads(await response.text()),
            )

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (Unauthenticated("no key"), 401, "UNAUTHENTICATED"),
        (PermissionDenied("not yours"), 403, "PERMISSION_DENIED"),
        (FailedPrecondition("archived"), 409, "FAILED_PRECONDITION"),
        (ResourceExhausted("too many"), 429, "RESOURCE_EXHAUSTED"),
        (Unavailable("the database is away"), 503, "UNAVAILABLE"),
    ],
)
def test_each_domain_error_answers_its_http_status_and_grpc_name(error: DomainError, status: int, code: str) -> None:
    answered, headers, body = _serve(error)

    assert answered == status
    assert body["error"]["code"] == status and body["error"]["status"] == code
    assert body["error"]["message"] == error.message
    assert body["error"]["details"][0] == {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": error.reason,
        "domain": "arbiter",
    }
    assert headers["x-request-id"]


def test_a_rate_limit_answers_429_with_retry_after_in_whole_seconds() -> None:
    error = ResourceExhausted("slow down", reason="RATE_LIMITED", metadata={"retryAfterMs": "1500"})

    status, headers, body = _serve(error)

    assert status == 429 and headers["retry-after"] == "2"
    types = [d["@type"] for d in body["error"]["details"]]
    assert "type.googleapis.com/google.rpc.RetryInfo" in types


def test_an_unexpected_exception_is_500_with_a_request_id_and_no_internals(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="arbiter.server.http"):
        status, headers, body = _serve(KeyError("secret internal detail"))

    assert status == 500 and body["error"]["status"] == "INTERNAL"
    request_id = headers["x-request-id"]
    assert request_id in body["error"]["message"]
    assert "secret internal detail" not in json.dumps(body)
    assert body["error"]["details"] == [
        {"@type": "type.googleapis.com/google.rpc.RequestInfo", "requestId": request_id}
    ]
    assert any(request_id in record.getMessage() for record in caplog.records)


def test_a_failure_translating_the_request_is_a_500_in_the_error_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("translation bug")

    monkeypatch.setattr("arbiter.server.transport.http.server.build_request", broken)

    status, headers, body = _serve(KeyError("never reached"))

    assert status == 500 and body["error"]["status"] == "INTERNAL"
    assert headers["x-request-id"] in body["error"]["message"]
    assert "translation bug" not in json.dumps(body)
