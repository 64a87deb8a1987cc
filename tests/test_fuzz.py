"""Hand-made hostile requests to every RPC and every REST route of a real server.

Where test_hostile.py draws random well-typed requests, this suite builds
the inputs that broke servers before: bytes that are no message at all,
nesting past protobuf's decode limit, invalid UTF-8, the edges of Timestamp,
forged page tokens, NaN and infinity, and a thousand violations at once. The
answers may be errors, but never INTERNAL or UNKNOWN (HTTP 5xx), always
readable by the client, with health SERVING throughout and the database
intact afterwards.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import backends
import grpc
import pytest
from google.protobuf import descriptor as _descriptor
from google.protobuf import message_factory
from grpc_health.v1 import health_pb2
from grpc_status import rpc_status
from rest_helpers import RestClient
from rpc_calls import method_caller
from serverproc import ServerProcess
from test_hostile import METHODS, TENANT, _seed

from arbiter.server.transport.http.routes import ROUTES

# An answer that means "the server failed", not "your request is wrong".
FAILED = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
# Timestamp's first and last representable instants, and values past them.
EDGE_SECONDS = (-62_135_596_800, 253_402_300_799, -(2**62), 2**62, 0)
FORGED_TOKENS = (
    "9" * 400,
    base64.urlsafe_b64encode(json.dumps({"offset": 10**400, "after": "x"}).encode()).decode(),
    base64.urlsafe_b64encode(b'{"o": 1e999}').decode(),
    base64.urlsafe_b64encode(b"\xff\xfe\x00garbage").decode(),
    base64.urlsafe_b64encode(json.dumps([[[[1]]]]).encode()).decode(),
    "not base64 at all !!",
    "=",
)
LENGTH_DELIMITED = 2
FIXED64 = 1


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _tag(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (string, bytes or message) as raw wire bytes."""
    return _tag(number, LENGTH_DELIMITED) + _varint(len(payload)) + payload


def _deep_struct(levels: int) -> bytes:
    """A google.protobuf.Struct nested `levels` deep: {"k": {"k": ... {}}}."""
    struct = b""
    for _ in range(levels):
        value = _field(5, struct)  # Value.struct_value
        entry = _field(1, b"k") + _field(2, value)  # Struct.fields map entry
        struct = _field(1, entry)
    return struct


def _timestamp(seconds: int) -> bytes:
    return _tag(1, 0) + _varint(seconds)


def _double(number: int, bits: bytes) -> bytes:
    return _tag(number, FIXED64) + bits


NAN = bytes.fromhex("000000000000f87f")
INFINITY = bytes.fromhex("000000000000f07f")
MINUS_INFINITY = bytes.fromhex("000000000000f0ff")


def _variants_of(descriptor: _descriptor.Descriptor, depth: int = 0) -> Iterator[tuple[str, bytes]]:
    """Hostile encodings of `descriptor`, each named for the report: one bad value in one field at a time."""
    for field in descriptor.fields:
        number = field.number
        kind = field.message_type.full_name if field.message_type is not None else None
        if field.type == field.TYPE_STRING:
            yield f"{field.name}: invalid UTF-8", _field(number, b"ok\xed\xa0\x80")
            yield f"{field.name}: NUL characters", _field(number, b"\x00\x00\x00")
            if field.name == "page_token":
                for token in FORGED_TOKENS:
                    yield f"{field.name}: forged {token[:12]!r}", _field(number, token.encode())
        elif field.type == field.TYPE_DOUBLE:
            for name, bits in (("NaN", NAN), ("inf", INFINITY), ("-inf", MINUS_INFINITY)):
                yield f"{field.name}: {name}", _double(number, bits)
        elif kind == "google.protobuf.Timestamp":
            for seconds in EDGE_SECONDS:
                yield f"{field.name}: seconds {seconds}", _field(number, _timestamp(seconds))
            yield f"{field.name}: nanos -1", _field(number, _tag(2, 0) + _varint(-1))
        elif kind == "google.protobuf.Struct":
            yield f"{field.name}: nested 40 deep", _field(number, _deep_struct(40))
            yield f"{field.name}: nested 20 deep", _field(number, _deep_struct(20))
        elif field.message_type is not None and field.message_type.GetOptions().map_entry:
            value = field.message_type.fields_by_name["value"]
            if value.type == value.TYPE_DOUBLE:
                for name, bits in (("NaN", NAN), ("inf", INFINITY)):
                    yield f"{field.name}[k]: {name}", _field(number, _field(1, b"k") + _double(2, bits))
            yield f"{field.name}: key invalid UTF-8", _field(number, _field(1, b"\xff"))
        elif field.message_type is not None and kind is not None and not kind.startswith("google.protobuf."):
            if field.is_repeated and depth == 0:
                yield f"{field.name}: 1,000 empty entries", _field(number, b"") * 1000
            if depth < 2:
                for name, inner in _variants_of(field.message_type, depth + 1):
                    yield f"{field.name}.{name}", _field(number, inner)


GARBAGE = (
    ("not a message: ff ff ff ff", b"\xff\xff\xff\xff"),
    ("truncated length", b"\x0a\x7f"),
    ("wrong wire type for field 1", _tag(1, 5) + b"\x00\x00\x00\x00"),
    ("group start tag", b"\x0b"),
    ("a varint of 11 bytes", _tag(1, 0) + b"\xff" * 10 + b"\x01"),
)


def _grpc_variants(method: _descriptor.MethodDescriptor) -> list[tuple[str, bytes]]:
    return [*GARBAGE, *_variants_of(method.input_type)]


def _grpc_problem(name: str, call: Callable[..., Any], payload: bytes) -> str | None:
    """What is wrong with the answer to `payload` (None: nothing)."""
    try:
        call(payload, timeout=10, metadata=(("x-tenant-id", TENANT),))
        return None
    except grpc.RpcError as error:
        code, details = error.code(), error.details() or ""
        status = rpc_status.from_call(error)
    if code in FAILED:
        return f"{name}: {code.name} {details[:200]}"
    if "metadata size" in details:
        return f"{name}: the client could not read the answer: {details[:200]}"
    if "Traceback" in details or "sqlite" in details.lower():
        return f"{name}: internals in the message: {details[:200]}"
    if code == grpc.StatusCode.INVALID_ARGUMENT and (status is None or not details):
        return f"{name}: INVALID_ARGUMENT without a google.rpc.Status and a message"
    return None


def _fuzz_grpc(server: ServerProcess, method: _descriptor.MethodDescriptor) -> list[str]:
    """Every hostile variant to one method; the problems found, each named by its variant."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    response_class = message_factory.GetMessageClass(method.output_type)
    with grpc.insecure_channel(server.target) as channel:
        call = method_caller(channel, method, response_deserializer=response_class.FromString)
        problems = [_grpc_problem(name, call, payload) for name, payload in _grpc_variants(method)]
    return [f"{path} {problem}" for problem in problems if problem is not None]


def _rest_paths() -> list[tuple[str, str, bool]]:
    """(method, concrete path, takes a body) for every REST route, path parameters filled in."""
    paths = []
    for route in ROUTES:
        path = route.path
        for parameter in route.path_fields:
            path = path.replace(f"{{{parameter}}}", "x")
        paths.append((route.method, path, route.body is not None))
    return sorted(set(paths))


def _deep_json(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


REST_BODIES = (
    ("not JSON", b"{"),
    ("invalid UTF-8", b'{"name": "\xed\xa0\x80"}'),
    ("a lone surrogate escape", b'{"name": "\\ud800"}'),
    ("nested 100,000 deep", b"[" * 100_000 + b"]" * 100_000),
    ("objects nested 5,000 deep", _deep_json(5_000)),
    ("NaN literal", b'{"priority": NaN, "minHours": NaN, "score": Infinity}'),
    ("a number past double", b'{"priority": 1e999, "budget": {"maxDailyBudget": 1e999}}'),
    ("a huge integer", b'{"priority": ' + b"9" * 5000 + b"}"),
    ("a JSON array", b"[1, 2, 3]"),
    ("a JSON string", b'"x"'),
    ("null", b"null"),
    ("a thousand bad outcomes", json.dumps({"outcomes": [{"offerId": 5}] * 1000}).encode()),
    ("edge timestamps", b'{"decisionTime": "0001-01-01T00:00:00Z", "occurredAt": "9999-12-31T23:59:59Z"}'),
    ("a timestamp past the edge", b'{"decisionTime": "10000-01-01T00:00:00Z"}'),
)


def _rest_problem(rest: RestClient, method: str, path: str, name: str, raw: bytes | None) -> str | None:
    headers = {"Content-Type": "application/json"} if raw is not None else {}
    answer = rest.call(method, path, raw=raw, headers=headers)
    where = f"{method} {path} ({name})"
    if answer.status >= 500:
        return f"{where}: {answer.status} {answer.raw[:200]!r}"
    if answer.status >= 400 and not (
        isinstance(answer.body, dict) and isinstance(answer.body.get("error"), dict) and answer.error.get("message")
    ):
        return f"{where}: an error without a JSON message: {answer.raw[:200]!r}"
    return None


def _fuzz_rest(server: ServerProcess, method: str, path: str, takes_body: bool) -> list[str]:
    """Every hostile query and body to one route; the problems found."""
    rest = RestClient(server.http_url, tenant=TENANT)
    sent: list[tuple[str, str, bytes | None]] = [
        *((f"{path}?cursor={quote(token, safe='')}", f"cursor {token[:12]!r}", None) for token in FORGED_TOKENS),
        (f"{path}?limit={'9' * 400}", "a huge limit", None),
        (f"{path}?status=%ff%fe", "a query of invalid UTF-8", None),
    ]
    if takes_body or method in ("POST", "PUT", "PATCH"):
        sent += [(path, name, raw) for name, raw in REST_BODIES]
    problems = [_rest_problem(rest, method, target, name, raw) for target, name, raw in sent]
    return [problem for problem in problems if problem is not None]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("fuzz") / "arbiter.db", http=True) as process:
        _seed(process)
        yield process


@pytest.mark.parametrize("method", METHODS, ids=[m.full_name.removeprefix("arbiter.v1.") for m in METHODS])
def test_every_rpc_answers_hostile_bytes_with_a_readable_error(
    server: ServerProcess, method: _descriptor.MethodDescriptor
) -> None:
    assert _fuzz_grpc(server, method) == []
    assert server.health() == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize(("method", "path", "takes_body"), _rest_paths(), ids=[f"{m} {p}" for m, p, _ in _rest_paths()])
def test_every_route_answers_hostile_input_with_a_readable_error(
    server: ServerProcess, method: str, path: str, takes_body: bool
) -> None:
    assert _fuzz_rest(server, method, path, takes_body) == []
    assert server.health() == health_pb2.HealthCheckResponse.SERVING


def test_the_variants_cover_what_broke_servers_before() -> None:
    """The suite really sends each kind of input somewhere (a guard against a walker that finds nothing)."""
    names = [name for method in METHODS for name, _ in _grpc_variants(method)]
    for expected in ("invalid UTF-8", "nested 40 deep", "seconds -62135596800", "forged", "NaN", "1,000 empty"):
        assert any(expected in name for name in names), expected


def test_the_database_is_intact_after_every_hostile_input(tmp_path: Path) -> None:
    db = tmp_path / "fuzzed.db"
    with ServerProcess(db, http=True) as process:
        _seed(process)
        for method in METHODS:
            _fuzz_grpc(process, method)  # the answers are the other tests' business; here only what is left
        for method_name, path, takes_body in _rest_paths():
            _fuzz_rest(process, method_name, path, takes_body)
        assert process.health() == health_pb2.HealthCheckResponse.SERVING
    backends.assert_sound(db)
