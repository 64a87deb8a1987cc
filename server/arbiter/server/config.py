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
    """Refuse configurations that must not be served (today: any non-loopback address)."""
    host, _ = split_address(config.address)
    if not is_loopback(host):
        raise ConfigError(
            f"refusing to listen on {config.address}: authentication is not available yet, so the "
            "server only binds loopback addresses (127.0.0.1, ::1, localhost); put a proxy that "
            "authenticates in front of it to serve other hosts"
        )


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
    )
    if config.customer_cache_size < 1:
        raise ConfigError("--customer-cache-size must be at least 1")
    split_address(config.address)
    return config
