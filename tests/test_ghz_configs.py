"""The ghz configs in bench/ghz/ work against the real server: call found by reflection, data parses.

ghz is given no .proto: it asks the server's reflection service for the
method, then renders the config's "data" (a Go template: {{.RequestNumber}},
{{newUUID}} ...) and parses it as proto3 JSON into the request type. This
test does the same with the live test server, so a renamed method or field
breaks here rather than in someone's load test.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import MethodDescriptor
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from serverproc import ServerProcess

GHZ_DIR = Path(__file__).resolve().parent.parent / "bench" / "ghz"
CONFIGS = sorted(GHZ_DIR.glob("*.json"))
# Every call the benchmark measures has a ghz config.
EXPECTED_CALLS = {
    "grpc.health.v1.Health/Check",
    "arbiter.v1.DecisionService/Decide",
    "arbiter.v1.DecisionService/RecordOutcome",
    "arbiter.v1.DecisionService/RecordOutcomes",
}
TEMPLATE = re.compile(r"\{\{(.*?)\}\}")
# What ghz would put in place of the template expressions the configs use.
SAMPLES = {".RequestNumber": "17", "newUUID": "0b6f0c3e-8f1e-4c43-9d55-2a7d1c0e9b41", ".WorkerID": "g1c2"}


def _load(path: Path) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(path.read_text())
    return config


def _split_call(call: str) -> tuple[str, str]:
    """ghz accepts "package.Service.Method" and "package.Service/Method"."""
    service, sep, method = call.rpartition("/")
    if not sep:
        service, _, method = call.rpartition(".")
    return service, method


def _render(data: Any) -> str:
    """The config's data as ghz renders it: template expressions replaced by sample values."""

    def sample(match: re.Match[str]) -> str:
        return SAMPLES.get(match.group(1).strip(), "sample")

    return TEMPLATE.sub(sample, json.dumps(data))


def _reflected_method(
    target: str, service: str, method: str
) -> tuple[descriptor_pool.DescriptorPool, MethodDescriptor]:
    """The method's descriptor, built only from what the server's reflection returns (no local protos)."""
    with grpc.insecure_channel(target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(file_containing_symbol=service)
        (response,) = list(stub.ServerReflectionInfo(iter([request]), timeout=10))
    assert response.HasField("file_descriptor_response"), f"reflection does not know {service}: {response}"
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in response.file_descriptor_response.file_descriptor_proto
    ]
    pool = descriptor_pool.DescriptorPool()
    by_name = {f.name: f for f in files}
    added: set[str] = set()

    def add(name: str) -> None:
        # Dependencies first; the response carries the file and everything it imports.
        if name in added:
            return
        assert name in by_name, f"reflection omitted {name}, a dependency ghz would need"
        for dependency in by_name[name].dependency:
            add(dependency)
        pool.Add(by_name[name])
        added.add(name)

    for name in by_name:
        add(name)
    service_descriptor = pool.FindServiceByName(service)
    found = service_descriptor.FindMethodByName(method)
    assert found is not None, f"{service} has no method {method}"
    return pool, found


def test_there_is_a_config_for_every_measured_call() -> None:
    calls = set()
    for path in CONFIGS:
        service, method = _split_call(_load(path)["call"])
        calls.add(f"{service}/{method}")
    assert calls >= EXPECTED_CALLS, f"missing ghz configs for {sorted(EXPECTED_CALLS - calls)}"


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_uses_reflection_against_the_local_server(path: Path) -> None:
    config = _load(path)
    assert "proto" not in config and "protoset" not in config, "ghz should resolve the call through reflection"
    assert config["host"] == "127.0.0.1:50051"
    assert config["insecure"] is True
    assert config["metadata"]["authorization"].startswith("Bearer arb_")
    assert config["concurrency"] >= 1
    assert "duration" in config or "total" in config


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_call_resolves_and_data_parses_into_the_request_type(server: ServerProcess, path: Path) -> None:
    config = _load(path)
    service, method = _split_call(config["call"])
    pool, descriptor = _reflected_method(server.target, service, method)
    request_class = message_factory.GetMessageClass(descriptor.input_type)
    rendered = _render(config["data"])
    assert "{{" not in rendered
    request = json_format.Parse(rendered, request_class())  # unknown fields raise ParseError
    assert request.ByteSize() > 0 or descriptor.input_type.full_name == "grpc.health.v1.HealthCheckRequest"
    assert pool.FindMessageTypeByName(descriptor.input_type.full_name) is descriptor.input_type


def test_keys_of_outcome_configs_are_unique_per_call_and_item() -> None:
    """Every idempotency key carries a per-request template, so repeated calls are new outcomes, not duplicates."""
    for path in CONFIGS:
        config = _load(path)
        data = config["data"]
        outcomes = data.get("outcomes") or ([data["outcome"]] if "outcome" in data else [])
        keys = [item["idempotencyKey"] for item in outcomes]
        for key in keys:
            assert "{{newUUID}}" in key or "{{.RequestNumber}}" in key, f"{path.name}: fixed key {key!r}"
        assert len(set(keys)) == len(keys), f"{path.name}: two items share a key template"
