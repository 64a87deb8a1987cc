"""The server starts, reports health, serves reflection and refuses what it must."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from serverproc import ServerProcess


def test_health_reports_serving_for_the_server_and_offer_service(server: ServerProcess) -> None:
    assert server.health() == health_pb2.HealthCheckResponse.SERVING
    assert server.health("arbiter.v1.OfferService") == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_offer_service(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        responses = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
    names = {s.name for s in responses[0].list_services_response.service}
    assert "arbiter.v1.OfferService" in names
    assert "grpc.health.v1.Health" in names


def _refused(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    db = tmp_path / "x.db"
    result = subprocess.run(
        [sys.executable, "-m", "arbiter.server", "--db", str(db), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert not db.exists()  # refused before touching anything
    return result


def test_no_auth_is_refused_on_a_non_loopback_address(tmp_path: Path) -> None:
    result = _refused(tmp_path, "--address", "0.0.0.0:0", "--insecure-no-auth")
    assert "refusing to listen on 0.0.0.0:0 with --insecure-no-auth" in result.stderr


def test_half_a_tls_configuration_is_refused(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not really a certificate")
    result = _refused(tmp_path, "--address", "127.0.0.1:0", "--tls-cert", str(cert))
    assert "--tls-cert and --tls-key go together" in result.stderr


def _listening_socket() -> socket.socket:
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    return held


@pytest.mark.parametrize("flag", ["--address", "--http-address"])
def test_a_port_in_use_is_refused_with_a_message_not_a_traceback(tmp_path: Path, flag: str) -> None:
    with _listening_socket() as held:
        taken = f"127.0.0.1:{held.getsockname()[1]}"
        other = "--http-address" if flag == "--address" else "--address"
        result = subprocess.run(
            [sys.executable, "-m", "arbiter.server", "--db", str(tmp_path / "x.db"), flag, taken, other, "127.0.0.1:0"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert result.returncode == 2
    assert f"cannot listen on {taken}" in result.stderr and flag in result.stderr
    assert "Traceback" not in result.stderr
