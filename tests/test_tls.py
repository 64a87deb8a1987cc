"""TLS and mutual TLS end to end, with certificates the test makes (a CA, a server and two client certificates).

Issue 6, "TLS": --tls-cert/--tls-key serve TLS; --tls-client-ca makes it mutual. A plaintext client against
a TLS server, and a client without (or with a foreign) certificate against mTLS, fail cleanly: an error
within the call's deadline, and the server keeps SERVING. API keys still apply over TLS.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health_pb2
from serverproc import ServerProcess

from arbiter.client import (
    ArbiterError,
    Client,
    PermissionDeniedError,
    UnauthenticatedError,
    UnavailableError,
)

pytest.register_assert_rewrite("auth_helpers")  # before its import: it is also loaded as a plugin below
from auth_helpers import cli_create_key, new_tenant  # noqa: E402

pytest_plugins = ["auth_helpers"]

DEADLINE = 3.0  # seconds each failing call is given; it must end (with an error) within about that
SERVING = health_pb2.HealthCheckResponse.SERVING


# --------------------------------------------------------------------------
# Certificates
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Pem:
    """A certificate and its private key, PEM-encoded."""

    cert: bytes
    key: bytes


@dataclass(frozen=True)
class _Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def pem(self) -> Pem:
        return Pem(
            self.cert.public_bytes(serialization.Encoding.PEM),
            self.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Arbiter tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(subject: str, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
    )


def make_ca(common_name: str) -> _Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(common_name, _name(common_name), key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _Issued(cert, key)


def issue(ca: _Issued, common_name: str, *, server: bool) -> _Issued:
    """A leaf certificate signed by `ca`: for a server (SAN 127.0.0.1 and localhost) or a client."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _builder(common_name, ca.cert.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
    return _Issued(builder.sign(ca.key, hashes.SHA256()), key)


@dataclass(frozen=True)
class Pki:
    ca: Pem
    server: Pem
    client: Pem
    other_ca: Pem
    other_client: Pem  # signed by other_ca
    ca_path: Path
    server_cert_path: Path
    server_key_path: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    ca = make_ca("Arbiter test CA")
    other_ca = make_ca("Somebody else's CA")
    server = issue(ca, "arbiter server", server=True).pem()
    folder = tmp_path_factory.mktemp("pki")
    paths = {"ca.pem": ca.pem().cert, "server.pem": server.cert, "server.key": server.key}
    for name, data in paths.items():
        (folder / name).write_bytes(data)
    return Pki(
        ca=ca.pem(),
        server=server,
        client=issue(ca, "arbiter client", server=False).pem(),
        other_ca=other_ca.pem(),
        other_client=issue(other_ca, "intruder", server=False).pem(),
        ca_path=folder / "ca.pem",
        server_cert_path=folder / "server.pem",
        server_key_path=folder / "server.key",
    )


def test_the_certificates_are_what_the_tests_assume(pki: Pki) -> None:
    server = x509.load_pem_x509_certificate(pki.server.cert)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    ca = x509.load_pem_x509_certificate(pki.ca.cert)
    for leaf in (server, x509.load_pem_x509_certificate(pki.client.cert)):
        assert leaf.issuer == ca.subject
        leaf.verify_directly_issued_by(ca)
    intruder = x509.load_pem_x509_certificate(pki.other_client.cert)
    with pytest.raises((ValueError, TypeError)):
        intruder.verify_directly_issued_by(ca)


# --------------------------------------------------------------------------
# TLS servers
# --------------------------------------------------------------------------


class TlsServerProcess(ServerProcess):
    """A ServerProcess whose health checks go over TLS (with a client certificate for mutual TLS)."""

    def __init__(self, db: Path, pki: Pki, *, mutual: bool) -> None:
        args = ["--tls-cert", str(pki.server_cert_path), "--tls-key", str(pki.server_key_path)]
        if mutual:
            args += ["--tls-client-ca", str(pki.ca_path)]
        super().__init__(db, args, auth=True)
        self.credentials = grpc.ssl_channel_credentials(
            pki.ca.cert, *((pki.client.key, pki.client.cert) if mutual else (None, None))
        )

    def channel(self) -> grpc.Channel:
        return grpc.secure_channel(self.target, self.credentials)


@dataclass(frozen=True)
class Served:
    process: TlsServerProcess
    tenant: str
    admin: str  # an admin key of `tenant`, made with the CLI
    decide: str  # a decide key of `tenant`


def _serve(tmp_path_factory: pytest.TempPathFactory, pki: Pki, *, mutual: bool) -> Iterator[Served]:
    db = tmp_path_factory.mktemp("mtls" if mutual else "tls") / "arbiter.db"
    tenant = new_tenant("tls")
    admin = cli_create_key(db, tenant, "admin")  # before the server starts: the CLI needs no server
    decide = cli_create_key(db, tenant, "decide")
    process = TlsServerProcess(db, pki, mutual=mutual)
    with process:
        yield Served(process, tenant, admin, decide)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Served]:
    yield from _serve(tmp_path_factory, pki, mutual=False)


@pytest.fixture(scope="module")
def mtls_server(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Served]:
    yield from _serve(tmp_path_factory, pki, mutual=True)


def _fails_cleanly(client: Client) -> ArbiterError:
    """Call `client` once: it must raise UnavailableError (no other exception, no hang) within its deadline."""
    started = time.monotonic()
    with pytest.raises(ArbiterError) as info:
        client.get_tenant_settings(timeout=DEADLINE)
    elapsed = time.monotonic() - started
    assert elapsed < DEADLINE + 1.0, f"the failing call took {elapsed:.1f} s"
    assert isinstance(info.value, UnavailableError), info.value
    return info.value


# --------------------------------------------------------------------------
# TLS
# --------------------------------------------------------------------------


def test_a_tls_client_trusting_the_ca_is_served(tls_server: Served, pki: Pki) -> None:
    with Client(tls_server.process.target, api_key=tls_server.admin, root_certificates=pki.ca.cert) as client:
        assert client.get_tenant_settings().tenant_id == tls_server.tenant
        offer = client.create_offer({"name": "over TLS", "status": "active"})
        assert client.get_offer(offer.id).name == "over TLS"
    assert tls_server.process.health() == SERVING


def test_the_server_certificate_names_localhost_too(tls_server: Served, pki: Pki) -> None:
    """Connect to 127.0.0.1 but check the certificate against "localhost" (its DNS SAN), then a name it lacks."""
    target = tls_server.process.target
    options = [("grpc.ssl_target_name_override", "localhost")]
    with Client(target, api_key=tls_server.admin, root_certificates=pki.ca.cert, options=options) as client:
        assert client.get_tenant_settings().tenant_id == tls_server.tenant
    wrong = [("grpc.ssl_target_name_override", "arbiter.example.com")]
    with Client(target, api_key=tls_server.admin, root_certificates=pki.ca.cert, options=wrong) as client:
        _fails_cleanly(client)


def test_keys_still_apply_over_tls(tls_server: Served, pki: Pki) -> None:
    target, ca = tls_server.process.target, pki.ca.cert
    with Client(target, root_certificates=ca) as anonymous, pytest.raises(UnauthenticatedError) as info:
        anonymous.list_offers()
    assert info.value.reason == "KEY_MISSING"
    with Client(target, api_key=tls_server.decide, root_certificates=ca) as decider:
        decider.list_offers()
        with pytest.raises(PermissionDeniedError):
            decider.create_offer({"name": "not allowed"})


def test_a_plaintext_client_against_tls_fails_cleanly(tls_server: Served) -> None:
    with Client(tls_server.process.target, api_key=tls_server.admin) as plaintext:
        _fails_cleanly(plaintext)
    assert tls_server.process.health() == SERVING


def test_a_client_trusting_another_ca_fails_cleanly(tls_server: Served, pki: Pki) -> None:
    with Client(tls_server.process.target, api_key=tls_server.admin, root_certificates=pki.other_ca.cert) as client:
        _fails_cleanly(client)
    assert tls_server.process.health() == SERVING


# --------------------------------------------------------------------------
# Mutual TLS
# --------------------------------------------------------------------------


def test_mtls_accepts_a_client_certificate_signed_by_the_ca(mtls_server: Served, pki: Pki) -> None:
    with Client(
        mtls_server.process.target,
        api_key=mtls_server.admin,
        root_certificates=pki.ca.cert,
        private_key=pki.client.key,
        certificate_chain=pki.client.cert,
    ) as client:
        assert client.get_tenant_settings().tenant_id == mtls_server.tenant
        category = client.create_category({"name": "over mTLS"}, category_id="cat_mtls")
        assert client.get_category(category.id).name == "over mTLS"


def test_mtls_refuses_a_client_without_a_certificate(mtls_server: Served, pki: Pki) -> None:
    with Client(mtls_server.process.target, api_key=mtls_server.admin, root_certificates=pki.ca.cert) as client:
        _fails_cleanly(client)
    assert mtls_server.process.health() == SERVING


def test_mtls_refuses_a_certificate_from_another_ca(mtls_server: Served, pki: Pki) -> None:
    with Client(
        mtls_server.process.target,
        api_key=mtls_server.admin,
        root_certificates=pki.ca.cert,
        private_key=pki.other_client.key,
        certificate_chain=pki.other_client.cert,
    ) as client:
        _fails_cleanly(client)
    assert mtls_server.process.health() == SERVING


def test_mtls_refuses_a_plaintext_client(mtls_server: Served) -> None:
    with Client(mtls_server.process.target, api_key=mtls_server.admin) as plaintext:
        _fails_cleanly(plaintext)
    assert mtls_server.process.health() == SERVING


def test_a_client_certificate_is_no_api_key(mtls_server: Served, pki: Pki) -> None:
    """The certificate opens the connection; each call still needs a key, and the key's role still counts."""
    target, ca, cert = mtls_server.process.target, pki.ca.cert, pki.client
    with (
        Client(target, root_certificates=ca, private_key=cert.key, certificate_chain=cert.cert) as anonymous,
        pytest.raises(UnauthenticatedError) as info,
    ):
        anonymous.list_offers()
    assert info.value.reason == "KEY_MISSING"
    with Client(
        target, api_key=mtls_server.decide, root_certificates=ca, private_key=cert.key, certificate_chain=cert.cert
    ) as decider:
        decider.list_offers()
        with pytest.raises(PermissionDeniedError):
            decider.update_tenant_settings(timezone="Europe/Paris")


def test_the_mtls_server_serves_good_clients_after_refusing_bad_ones(mtls_server: Served, pki: Pki) -> None:
    target = mtls_server.process.target
    for _ in range(3):
        with Client(target, api_key=mtls_server.admin, root_certificates=pki.ca.cert, timeout=DEADLINE) as bad:
            _fails_cleanly(bad)
    assert mtls_server.process.health() == SERVING
    with Client(
        target,
        api_key=mtls_server.admin,
        root_certificates=pki.ca.cert,
        private_key=pki.client.key,
        certificate_chain=pki.client.cert,
    ) as good:
        assert good.get_tenant_settings().tenant_id == mtls_server.tenant
