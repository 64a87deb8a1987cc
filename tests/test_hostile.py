"""Hostile input: random well-typed requests to every RPC, garbage on the port, kills mid-write, limits."""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import backends
import grpc
import pytest
from google.protobuf import descriptor as _descriptor
from google.protobuf import descriptor_pool, message_factory, struct_pb2, timestamp_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_status import rpc_status
from hypothesis import given, settings
from hypothesis import strategies as st
from rpc_calls import method_caller
from serverproc import ServerProcess

from arbiter.client import Client, ResourceExhaustedError
from arbiter.v1 import (
    api_keys_pb2,
    catalog_pb2,
    contact_policies_pb2,
    decisions_pb2,
    offers_pb2,
    tenants_pb2,
)

SERVICES = [
    module.DESCRIPTOR.services_by_name[name]
    for module, name in (
        (offers_pb2, "OfferService"),
        (catalog_pb2, "CatalogService"),
        (contact_policies_pb2, "ContactPolicyService"),
        (decisions_pb2, "DecisionService"),
        (tenants_pb2, "TenantService"),
        (api_keys_pb2, "ApiKeyService"),
    )
]
METHODS = [method for service in SERVICES for method in service.methods]
# Every answer a hostile request may get. UNKNOWN or INTERNAL would mean an unhandled failure.
DOCUMENTED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}
TENANT = "fuzz"
KNOWN_IDS: list[str] = []  # ids of real resources, filled by the fixture, drawn by id-like fields


def _message_class(descriptor: _descriptor.Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(descriptor)


def _scalar(field: _descriptor.FieldDescriptor) -> st.SearchStrategy[Any]:
    t = field.type
    if t == field.TYPE_STRING:
        words = [
            "",
            " ",
            "x",
            "act_0000000000000000",
            "cat_fuzz",
            "sub_fuzz",
            "cp_0",
            "key_0",
            "é" * 300,
            "a" * 5000,
            "status",
            "name",
            "*",
            "custom_fields.x",
            "budget.max_impressions",
            "Europe/Paris",
            "HH:MM",
            "25:99",
        ]
        return st.one_of(st.text(max_size=24), st.sampled_from(words), st.sampled_from(KNOWN_IDS or ["x"]))
    if t == field.TYPE_BOOL:
        return st.booleans()
    if t == field.TYPE_DOUBLE:
        return st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 0.5, 1.0, -1.0, 1e300]))
    if t == field.TYPE_ENUM:
        return st.integers(-1, 8)
    if t in (field.TYPE_INT32, field.TYPE_SINT32):
        return st.one_of(st.integers(-5, 60), st.integers(-(2**31), 2**31 - 1))
    if t in (field.TYPE_INT64, field.TYPE_SINT64):
        return st.one_of(st.integers(-5, 60), st.integers(-(2**63), 2**63 - 1))
    raise AssertionError(f"no strategy for field type {t} ({field.full_name})")


def _json_value(depth: int) -> st.SearchStrategy[Any]:
    leaf = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8))
    if depth <= 0:
        return leaf
    return st.one_of(
        leaf,
        st.lists(_json_value(depth - 1), max_size=3),
        st.dictionaries(st.text(max_size=6), _json_value(depth - 1), max_size=3),
    )


def _special(descriptor: _descriptor.Descriptor) -> st.SearchStrategy[Any] | None:
    name = descriptor.full_name
    if name == "google.protobuf.Timestamp":
        return st.builds(
            lambda s, n: timestamp_pb2.Timestamp(seconds=s, nanos=n),
            st.one_of(st.integers(1_700_000_000, 1_900_000_000), st.integers(-(2**40), 2**40)),
            st.one_of(st.just(0), st.integers(-10, 2_000_000_000)),
        )
    if name == "google.protobuf.Struct":

        def to_struct(value: dict[str, Any]) -> struct_pb2.Struct:
            out = struct_pb2.Struct()
            out.update(value)
            return out

        return st.dictionaries(
            st.sampled_from(["base_rate", "loyalty_score", "x", "fee", "tier"]), _json_value(2), max_size=4
        ).map(to_struct)
    if name == "google.protobuf.Value":
        return _json_value(2).map(
            lambda v: (
                struct_pb2.Value(string_value=v)
                if isinstance(v, str)
                else struct_pb2.Value(number_value=v)
                if isinstance(v, float)
                else struct_pb2.Value()
            )
        )
    if name == "google.protobuf.FieldMask":
        paths = st.sampled_from(
            [
                "name",
                "status",
                "*",
                "priority",
                "budget",
                "custom_fields.x",
                "nope",
                "id",
                "timezone",
                "rule",
                "scope",
                "qualification.recency",
                "customFields.base_rate",
            ]
        )
        from google.protobuf import field_mask_pb2

        return st.lists(paths, max_size=3).map(lambda p: field_mask_pb2.FieldMask(paths=p))
    return None


def message_strategy(descriptor: _descriptor.Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Random, well-typed messages of `descriptor`: any field may be set, to any value of its type."""
    special = _special(descriptor)
    if special is not None:
        return special
    cls = _message_class(descriptor)
    parts: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key, value = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
            parts[field.name] = st.dictionaries(_scalar(key), _scalar(value), max_size=3)
        elif field.message_type is not None:
            if depth >= 3:
                continue
            inner = message_strategy(field.message_type, depth + 1)
            parts[field.name] = st.lists(inner, max_size=3) if field.is_repeated else inner
        else:
            parts[field.name] = st.lists(_scalar(field), max_size=4) if field.is_repeated else _scalar(field)

    def build(values: dict[str, Any]) -> Message:
        message = cls()
        for name, value in values.items():
            target = getattr(message, name)
            field = descriptor.fields_by_name[name]
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                target.update(value)
            elif field.is_repeated and field.message_type is not None:
                for item in value:
                    target.add().CopyFrom(item)
            elif field.is_repeated:
                target.extend(value)
            elif field.message_type is not None:
                target.CopyFrom(value)
            else:
                setattr(message, name, value)
        return message

    return st.fixed_dictionaries({}, optional=parts).map(build)


def _seed(process: ServerProcess) -> None:
    """A category with a computed field, a sub-category, an offer and a policy, whose ids the fuzzer draws."""
    with Client(process.target, tenant=TENANT) as client:
        client.create_category(
            {
                "name": "Fuzz",
                "customFields": [
                    {"key": "base_rate", "type": "number"},
                    {"key": "c", "type": "computed", "outputType": "number", "formula": "base_rate * 2"},
                ],
            },
            category_id="cat_fuzz",
        )
        client.create_sub_category({"categoryId": "cat_fuzz", "name": "Sub"}, sub_category_id="sub_fuzz")
        offer = client.create_offer(
            {"name": "Fuzz offer", "categoryId": "cat_fuzz", "status": "active", "customFields": {"base_rate": 2}}
        )
        policy = client.create_contact_policy({"name": "cap", "scope": "global", "frequencyCap": {"maxPerDay": 3}})
        KNOWN_IDS[:] = [offer.id, "cat_fuzz", "sub_fuzz", policy.id]


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("fuzz") / "arbiter.db") as process:
        _seed(process)
        yield process


def _fuzz(server: ServerProcess, method: _descriptor.MethodDescriptor, examples: int) -> list[grpc.StatusCode]:
    """Send `examples` random well-typed requests to one method; every answer must be a documented one."""
    request_class = _message_class(method.input_type)
    response_class = _message_class(method.output_type)
    path = f"/{method.containing_service.full_name}/{method.name}"
    seen: list[grpc.StatusCode] = []
    with grpc.insecure_channel(server.target) as channel:
        call = method_caller(
            channel,
            method,
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )

        @settings(max_examples=examples)
        @given(message_strategy(method.input_type))
        def check(request: Message) -> None:
            try:
                call(request, timeout=10, metadata=(("x-tenant-id", TENANT),))
                code = grpc.StatusCode.OK
            except grpc.RpcError as error:
                code = error.code()
                details = error.details() or ""
                assert "Traceback" not in details and "sqlite" not in details.lower(), details
            assert code in DOCUMENTED, f"{path} answered {code} to {request}"
            seen.append(code)

        check()
    return seen


@pytest.mark.parametrize("method", METHODS, ids=[m.full_name.removeprefix("arbiter.v1.") for m in METHODS])
def test_random_requests_get_documented_answers(
    fuzz_server: ServerProcess, method: _descriptor.MethodDescriptor
) -> None:
    assert _fuzz(fuzz_server, method, examples=25)
    assert fuzz_server.health() == health_pb2.HealthCheckResponse.SERVING


def test_the_database_is_intact_after_random_requests_to_every_method(tmp_path: Path) -> None:
    # A server of its own, fuzzed here: the check does not lean on another test having run first.
    with ServerProcess(tmp_path / "fuzzed.db") as process:
        _seed(process)
        answers = [code for method in METHODS for code in _fuzz(process, method, examples=5)]
        assert grpc.StatusCode.OK in answers and grpc.StatusCode.INVALID_ARGUMENT in answers
        assert process.health() == health_pb2.HealthCheckResponse.SERVING
        backends.assert_sound(process.db)


# -- garbage on the wire ------------------------------------------------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def _literal(name: str, value: str) -> bytes:
    # HPACK "literal header field without indexing, new name", no Huffman coding.
    encoded_name, encoded_value = name.encode(), value.encode()
    assert len(encoded_name) < 127 and len(encoded_value) < 127
    return b"\x00" + bytes([len(encoded_name)]) + encoded_name + bytes([len(encoded_value)]) + encoded_value


def _send(target: str, payload: bytes) -> None:
    host, port = target.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(payload)
        with contextlib.suppress(TimeoutError, ConnectionError):
            sock.recv(4096)


def test_garbage_and_truncated_frames_do_not_take_the_server_down(fuzz_server: ServerProcess) -> None:
    rng = random.Random(7)
    headers = b"".join(
        _literal(k, v)
        for k, v in (
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/arbiter.v1.DecisionService/Decide"),
            (":authority", "127.0.0.1"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("x-tenant-id", TENANT),
        )
    )
    settings_frame = _frame(0x4, 0, 0, b"")
    truncated_grpc = _frame(0x0, 0, 1, b"\x00" + struct.pack(">I", 1000) + b"\x0a\x03abc")  # says 1000 bytes, sends 5
    payloads = [
        bytes(rng.getrandbits(8) for _ in range(4096)),  # not even HTTP/2
        PREFACE + bytes(rng.getrandbits(8) for _ in range(512)),  # HTTP/2 preface, then noise
        PREFACE + settings_frame + _frame(0x1, 0x4, 1, headers) + truncated_grpc,  # a gRPC message cut short
        PREFACE + settings_frame + _frame(0x1, 0x4, 1, headers) + _frame(0x0, 0x1, 1, b"\x00\x00\x00\x00\x05\xff\xff"),
        PREFACE + settings_frame + _frame(0x1, 0x4, 1, headers[:17]),  # headers cut mid-field
    ]
    for payload in payloads:
        _send(fuzz_server.target, payload)
    with grpc.insecure_channel(fuzz_server.target) as channel:
        raw = channel.unary_unary("/arbiter.v1.OfferService/GetOffer")
        with pytest.raises(grpc.RpcError):  # bytes that are no GetOfferRequest
            raw(b"\xff\xff\xff\xff", timeout=5, metadata=(("x-tenant-id", TENANT),))
    assert fuzz_server.health() == health_pb2.HealthCheckResponse.SERVING
    with Client(fuzz_server.target, tenant=TENANT) as client:
        assert client.get_tenant_settings().tenant_id == TENANT


# -- kill -9 in the middle of writes ------------------------------------------------------------


def test_kill_during_a_burst_of_offer_writes_keeps_every_acknowledged_write(db_path: Path) -> None:
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    server = ServerProcess(db_path).start()

    def write(worker: int) -> None:
        with Client(server.target, tenant="burst", timeout=5) as client:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    offer = client.create_offer({"name": f"w{worker}-{n}", "tags": ["burst"]})
                except Exception:  # the server died under us: what was not acknowledged may be lost
                    return
                with lock:
                    acknowledged.append(offer.id)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 150 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.kill()
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert len(acknowledged) >= 150

    backends.assert_sound(db_path)
    with ServerProcess(db_path) as restarted, Client(restarted.target, tenant="burst") as client:
        stored = {offer.id for offer in client.iter_offers(page_size=1000)}
    assert set(acknowledged) <= stored


# -- limits ------------------------------------------------------------------------------------------


def test_an_oversized_request_is_refused_and_the_server_carries_on(tmp_path: Path) -> None:
    with (
        ServerProcess(tmp_path / "a.db", ["--max-message-bytes", "65536"]) as server,
        Client(server.target, tenant="big") as client,
    ):
        with pytest.raises(ResourceExhaustedError):
            client.create_offer({"name": "x" * 100_000})
        assert client.create_offer({"name": "small"}).name == "small"


def test_the_rate_limit_answers_resource_exhausted_with_a_retry_delay(tmp_path: Path) -> None:
    with (
        ServerProcess(tmp_path / "r.db", ["--rate-limit", "2", "--rate-burst", "3"]) as server,
        grpc.insecure_channel(server.target) as channel,
    ):
        stub = tenants_pb2_grpc_stub(channel)
        codes = []
        retry_delays = []
        for _ in range(6):
            try:
                stub(tenants_pb2.GetTenantSettingsRequest(), timeout=5, metadata=(("x-tenant-id", "busy"),))
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as error:
                codes.append(error.code())
                status = rpc_status.from_call(error)
                assert status is not None
                for detail in status.details:
                    if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                        info = error_details_pb2.RetryInfo()
                        detail.Unpack(info)
                        retry_delays.append(info.retry_delay.ToMilliseconds())
        # Another tenant has its own bucket.
        stub(tenants_pb2.GetTenantSettingsRequest(), timeout=5, metadata=(("x-tenant-id", "calm"),))
    assert codes[:3] == [grpc.StatusCode.OK] * 3
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes[3:]
    assert retry_delays and all(0 < d <= 1000 for d in retry_delays)


def tenants_pb2_grpc_stub(channel: grpc.Channel) -> Any:
    return channel.unary_unary(
        "/arbiter.v1.TenantService/GetTenantSettings",
        request_serializer=tenants_pb2.GetTenantSettingsRequest.SerializeToString,
        response_deserializer=tenants_pb2.GetTenantSettingsResponse.FromString,
    )


def test_descriptor_pool_covers_every_service() -> None:
    # Guards the fuzzing above: a service added to the protos must be fuzzed too.
    pool = descriptor_pool.Default()
    names = {s.full_name for s in SERVICES}
    for file_name in (
        "arbiter/v1/offers.proto",
        "arbiter/v1/catalog.proto",
        "arbiter/v1/contact_policies.proto",
        "arbiter/v1/decisions.proto",
        "arbiter/v1/tenants.proto",
        "arbiter/v1/api_keys.proto",
    ):
        names -= {s.full_name for s in pool.FindFileByName(file_name).services_by_name.values()}
    assert names == set()
    protos = sorted(
        p.name for p in (Path(__file__).resolve().parent.parent / "protos" / "arbiter" / "v1").glob("*.proto")
    )
    assert len(protos) == len(SERVICES)
