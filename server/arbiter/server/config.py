"""Server configuration: one frozen dataclass; flags > ARBITER_* environment > defaults."""

from __future__ import annotations

import argparse
import ipaddress
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .storage.database import Durability

DEFAULT_ADDRESS = "127.0.0.1:50051"
DEFAULT_DB = "arbiter.db"
LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(ValueError):
    """The configuration cannot be served; the message says what to change."""


@dataclass(frozen=True)
class Config:
    """Everything the server is started with."""

    address: str = DEFAULT_ADDRESS
    db: Path = Path(DEFAULT_DB)
    log_level: str = "info"
    durability: Durability = Durability.PROCESS
    demo: bool = False
    grace_seconds: float = 5.0
    customer_cache_size: int = 100_000
    insecure_no_auth: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    max_message_bytes: int = 4 * 1024 * 1024
    max_concurrent_rpcs: int = 1_000
    rate_limit: float = 0.0  # calls per second per tenant; 0 = off
    rate_burst: float = 0.0  # bucket size; 0 = one second's worth


def split_address(address: str) -> tuple[str, int]:
    """Host and port of "host:port" or "[v6]:port"."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"address {address!r} is not host:port (for example 127.0.0.1:50051)")
    return host.strip("[]"), int(port_text)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_servable(config: Config) -> None:
    """Refuse configurations that must not be served, saying why."""
    host, _ = split_address(config.address)
    if config.insecure_no_auth and not is_loopback(host):
        raise ConfigError(
            f"refusing to listen on {config.address} with --insecure-no-auth: without authentication anyone "
            "who can reach the port can act for any tenant, so it is allowed only on loopback addresses "
            "(127.0.0.1, ::1, localhost); drop the flag and use API keys (arbiter keys create ...)"
        )
    if (config.tls_cert is None) != (config.tls_key is None):
        raise ConfigError("--tls-cert and --tls-key go together: give both, or neither")
    if config.tls_client_ca is not None and config.tls_cert is None:
        raise ConfigError("--tls-client-ca (mutual TLS) needs --tls-cert and --tls-key too")
    for flag, path in (
        ("--tls-cert", config.tls_cert),
        ("--tls-key", config.tls_key),
        ("--tls-client-ca", config.tls_client_ca),
    ):
        if path is not None and not path.is_file():
            raise ConfigError(f"{flag} {path}: no such file")


def _parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="arbiter", description="Arbiter next-best-action decisioning server (gRPC).")
    parser.add_argument(
        "--address",
        default=env.get("ARBITER_ADDRESS", DEFAULT_ADDRESS),
        help="host:port to listen on; port 0 picks a free port (env ARBITER_ADDRESS, default %(default)s)",
    )
    parser.add_argument("--db", default=env.get("ARBITER_DB", DEFAULT_DB), help="SQLite database file (env ARBITER_DB)")
    parser.add_argument(
        "--log-level",
        default=env.get("ARBITER_LOG_LEVEL", "info"),
        choices=LOG_LEVELS,
        help="(env ARBITER_LOG_LEVEL, default %(default)s)",
    )
    parser.add_argument(
        "--durability",
        default=env.get("ARBITER_DURABILITY", Durability.PROCESS.value),
        choices=[d.value for d in Durability],
        help="process: acknowledged writes survive a server crash (default); full: also power loss, "
        "one fsync per committed batch (env ARBITER_DURABILITY)",
    )
    parser.add_argument(
        "--customer-cache-size",
        type=int,
        default=int(env.get("ARBITER_CUSTOMER_CACHE_SIZE", "100000")),
        help="customer histories kept in memory (env ARBITER_CUSTOMER_CACHE_SIZE, default %(default)s)",
    )
    parser.add_argument(
        "--insecure-no-auth",
        action="store_true",
        default=env.get("ARBITER_INSECURE_NO_AUTH", "") in ("1", "true", "yes"),
        help="no API keys: the tenant comes from x-tenant-id; only on loopback addresses "
        "(env ARBITER_INSECURE_NO_AUTH=1)",
    )
    parser.add_argument(
        "--tls-cert", default=env.get("ARBITER_TLS_CERT"), help="PEM certificate chain (env ARBITER_TLS_CERT)"
    )
    parser.add_argument("--tls-key", default=env.get("ARBITER_TLS_KEY"), help="PEM private key (env ARBITER_TLS_KEY)")
    parser.add_argument(
        "--tls-client-ca",
        default=env.get("ARBITER_TLS_CLIENT_CA"),
        help="PEM CA bundle; clients must present a certificate it signed (mutual TLS; env ARBITER_TLS_CLIENT_CA)",
    )
    parser.add_argument(
        "--max-message-bytes",
        type=int,
        default=int(env.get("ARBITER_MAX_MESSAGE_BYTES", str(4 * 1024 * 1024))),
        help="largest request accepted (env ARBITER_MAX_MESSAGE_BYTES, default %(default)s)",
    )
    parser.add_argument(
        "--max-concurrent-rpcs",
        type=int,
        default=int(env.get("ARBITER_MAX_CONCURRENT_RPCS", "1000")),
        help="calls in progress at once; more are refused with RESOURCE_EXHAUSTED "
        "(env ARBITER_MAX_CONCURRENT_RPCS, default %(default)s)",
    )
    parser.add_argument(
        "--rate-limit",
        type=float,
        default=float(env.get("ARBITER_RATE_LIMIT", "0")),
        help="calls per second per tenant, 0 for no limit (env ARBITER_RATE_LIMIT, default off)",
    )
    parser.add_argument(
        "--rate-burst",
        type=float,
        default=float(env.get("ARBITER_RATE_BURST", "0")),
        help="calls a tenant may make at once above the rate; 0 means one second's worth (env ARBITER_RATE_BURST)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        default=env.get("ARBITER_DEMO", "") in ("1", "true", "yes"),
        help="load the demo catalogue (idempotent) before serving (env ARBITER_DEMO=1)",
    )
    return parser


def load_config(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    args = _parser(env).parse_args(argv)
    # argparse checks choices only for flags, so environment values are checked here.
    if args.log_level not in LOG_LEVELS:
        raise ConfigError(f"log level {args.log_level!r} is not one of {', '.join(LOG_LEVELS)}")
    durabilities = [d.value for d in Durability]
    if args.durability not in durabilities:
        raise ConfigError(f"durability {args.durability!r} is not one of {', '.join(durabilities)}")
    config = Config(
        address=args.address,
        db=Path(args.db),
        log_level=args.log_level,
        durability=Durability(args.durability),
        demo=args.demo,
        customer_cache_size=args.customer_cache_size,
        insecure_no_auth=args.insecure_no_auth,
        tls_cert=Path(args.tls_cert) if args.tls_cert else None,
        tls_key=Path(args.tls_key) if args.tls_key else None,
        tls_client_ca=Path(args.tls_client_ca) if args.tls_client_ca else None,
        max_message_bytes=args.max_message_bytes,
        max_concurrent_rpcs=args.max_concurrent_rpcs,
        rate_limit=args.rate_limit,
        rate_burst=args.rate_burst,
    )
    for flag, value in (
        ("--customer-cache-size", config.customer_cache_size),
        ("--max-message-bytes", config.max_message_bytes),
        ("--max-concurrent-rpcs", config.max_concurrent_rpcs),
    ):
        if value < 1:
            raise ConfigError(f"{flag} must be at least 1, got {value}")
    if config.rate_limit < 0 or config.rate_burst < 0:
        raise ConfigError("--rate-limit and --rate-burst must not be negative")
    split_address(config.address)
    return config
