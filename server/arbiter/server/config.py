"""Server configuration: one frozen dataclass; flags > ARBITER_* environment > defaults."""

from __future__ import annotations

import argparse
import ipaddress
import os
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .storage.sqlite.database import BUSY_TIMEOUT_MS, Durability

DEFAULT_DB = "arbiter.db"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")


class ConfigError(ValueError):
    """The configuration cannot be served; the message says what to change."""


@dataclass(frozen=True)
class Config:
    """Everything the server is started with."""

    address: str = "127.0.0.1:50051"
    http_address: str = "127.0.0.1:8080"  # "off": no REST API and no Studio
    metrics_address: str = ""  # "": /metrics on the HTTP listener; "off": no metrics; else a listener of its own
    db: Path | str = Path(DEFAULT_DB)  # a SQLite file, or a postgresql:// URL (the distributed backend)
    redis: str = ""  # the distributed backend's shared counters: a redis:// URL, required with Postgres
    log_level: str = "info"
    log_format: str = "text"  # or "json": one object a line, with an access line per call
    durability: Durability = Durability.PROCESS
    demo: bool = False
    drain_seconds: float = 5.0  # after SIGTERM: health NOT_SERVING while still serving, before refusing calls
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
    decision_log_sample: float = 0.0  # share of decisions kept in the decision log, 0 to 1
    decision_log_days: int = 7  # how long kept decisions stay, counted from when they were logged
    workers: int = 1  # processes serving the same ports (the distributed backend only)
    # Not a flag: how long a write waits for a lock another process holds (tests shorten it).
    busy_timeout_ms: int = BUSY_TIMEOUT_MS
    # Not a flag: this process is one worker of several, binding the ports they share (SO_REUSEPORT).
    shared_ports: bool = False
    # Not a flag: where the workers of one server keep their metrics, to be added up at a scrape.
    metrics_dir: str = ""


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


HTTP_OFF = "off"


def http_enabled(config: Config) -> bool:
    return config.http_address != HTTP_OFF


def metrics_enabled(config: Config) -> bool:
    return config.metrics_address != HTTP_OFF


def metrics_listener(config: Config) -> bool:
    """Whether /metrics has a listener of its own (else it is on the HTTP listener, if any)."""
    return metrics_enabled(config) and config.metrics_address != ""


def check_servable(config: Config) -> None:
    """Refuse configurations that must not be served, saying why."""
    addresses = [config.address, *([config.http_address] if http_enabled(config) else [])]
    for address in addresses:
        host, _ = split_address(address)
        if config.insecure_no_auth and not is_loopback(host):
            raise ConfigError(
                f"refusing to listen on {address} with --insecure-no-auth: without authentication anyone "
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
    if config.tls_cert is not None and config.tls_key is not None:
        _check_tls(config.tls_cert, config.tls_key, config.tls_client_ca)
    if config.workers < 1:
        raise ConfigError(f"--workers {config.workers}: give 1 or more")
    if isinstance(config.db, Path):
        _check_database_path(config.db)
        if config.workers > 1:
            raise ConfigError(
                f"--workers {config.workers} needs the distributed backend: one process serves a SQLite --db; "
                "give --db postgresql://… --redis redis://… to serve from several"
            )
        if config.redis:
            raise ConfigError(
                "--redis is for the distributed backend: with a SQLite --db the counters live in this process; "
                "drop --redis, or give --db postgresql://…"
            )
    elif not config.redis:
        raise ConfigError(
            "--db postgresql://… needs --redis redis://… (env ARBITER_REDIS): the counters and reservations "
            "every server on the database shares live there"
        )
    elif not config.redis.startswith(REDIS_SCHEMES):
        raise ConfigError(f"--redis {describe_database(config.redis)}: not a redis://, rediss:// or unix:// URL")


def _check_tls(cert: Path, key: Path, client_ca: Path | None) -> None:
    """Load the files as the TLS stack will, so a bad pair is one line at start, not a failure later."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # An empty password: an encrypted key is refused instead of prompting on the terminal.
        context.load_cert_chain(cert, key, password=lambda: b"")
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"--tls-cert {cert} and --tls-key {key} are not a PEM certificate chain and its unencrypted PEM "
            f"private key ({_ssl_reason(exc)}): give the server certificate and the key it was issued for"
        ) from None
    if client_ca is not None:
        try:
            context.load_verify_locations(cafile=client_ca)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(
                f"--tls-client-ca {client_ca} is not a PEM bundle of CA certificates ({_ssl_reason(exc)})"
            ) from None


def _ssl_reason(exc: Exception) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason.lower().replace("_", " ") if exc.reason else "not PEM data"
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def database(text: str) -> Path | str:
    """What --db names: a postgresql:// URL as given, else a SQLite file."""
    return text if text.startswith(POSTGRES_SCHEMES) else Path(text)


def describe_database(db: Path | str) -> str:
    """The database for logs and messages: a URL without its password."""
    if isinstance(db, Path):
        return str(db)
    parts = urlsplit(db)
    if parts.password is None:
        return db
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _check_database_path(db: Path) -> None:
    """SQLite needs the file and, beside it, room for <db>-wal, <db>-shm and the server's <db>.lock."""
    folder = db.parent
    if not folder.is_dir():
        raise ConfigError(
            f"--db {db}: the directory {folder} does not exist; create it (mkdir -p {folder}) or choose another --db"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(
            f"--db {db}: cannot create files in {folder} (SQLite keeps {db.name}-wal and {db.name}.lock beside "
            "the database); fix the directory's permissions or choose another --db"
        )
    if db.exists() and (not db.is_file() or not os.access(db, os.R_OK | os.W_OK)):
        raise ConfigError(f"--db {db}: not a file this process can read and write; fix it or choose another --db")


_DEFAULTS = {f.name: f.default for f in fields(Config)}


def _env_flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "") in ("1", "true", "yes")


SUBCOMMANDS = """sub-commands (each takes --help):
  arbiter keys --db FILE create|list|revoke ...   manage API keys in the database, server running or not
  arbiter backup --db FILE OUT                    copy the database consistently, even while it is served
  arbiter restore --db FILE BACKUP [--force]      replace the database with a backup (server stopped)
  arbiter migrate --from FILE --to URL            copy a SQLite database into an empty Postgres (server stopped)

Without a sub-command, arbiter serves."""

_KIND_NAMES = {int: "a whole number", float: "a number"}


def _from_env(variable: str, raw: str, kind: Callable[[str], object], flag: str) -> object:
    """An environment value converted like its flag's would be; one line naming the variable when it cannot be."""
    try:
        return kind(raw)
    except ValueError:
        wanted = _KIND_NAMES.get(kind, "valid")  # type: ignore[call-overload]
        raise ConfigError(
            f"environment variable {variable}={raw!r} is not {wanted} (it sets {flag}); fix it or unset it"
        ) from None


def _parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    """The command line; each default comes from the environment, else from Config (written once, there)."""
    parser = argparse.ArgumentParser(
        prog="arbiter",
        description="Arbiter next-best-action decisioning server (gRPC, REST and Studio).",
        epilog=SUBCOMMANDS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )

    def option(flag: str, field: str, kind: Callable[[str], object], help_text: str, **extra: object) -> None:
        variable = "ARBITER_" + field.upper()
        raw = env.get(variable)
        default = _DEFAULTS[field] if raw is None else _from_env(variable, raw, kind, flag)
        parser.add_argument(
            flag,
            dest=field,
            type=kind,
            default=default,
            help=f"{help_text} (env {variable}, default %(default)s)",
            **extra,  # type: ignore[arg-type]
        )

    def switch(flag: str, field: str, help_text: str) -> None:
        variable = "ARBITER_" + field.upper()
        parser.add_argument(
            flag, dest=field, action="store_true", default=_env_flag(env, variable), help=f"{help_text} ({variable}=1)"
        )

    option("--address", "address", str, "host:port to listen on; port 0 picks a free port")
    option(
        "--http-address",
        "http_address",
        str,
        "host:port of the REST API and Studio; port 0 picks a free port; off disables them",
    )
    option(
        "--metrics-address",
        "metrics_address",
        str,
        "host:port of a listener of its own for GET /metrics; empty: /metrics on the HTTP listener; "
        "off: no metrics at all",
    )
    option("--db", "db", database, "SQLite database file, or postgresql://… for the distributed backend")
    option(
        "--redis",
        "redis",
        str,
        "redis://… holding the counters and reservations shared by every server on a postgresql:// --db",
    )
    option("--log-level", "log_level", str.lower, "how much to log (any case)", choices=LOG_LEVELS)
    option(
        "--log-format",
        "log_format",
        str,
        "text lines, or json: one JSON object a line, with an access line per call",
        choices=LOG_FORMATS,
    )
    option(
        "--durability",
        "durability",
        str,
        "process: acknowledged writes survive a server crash; full: also power loss, one fsync per committed batch",
        choices=[d.value for d in Durability],
    )
    option(
        "--drain-seconds",
        "drain_seconds",
        float,
        "after SIGTERM, seconds health says NOT_SERVING while calls are still served, so load balancers move "
        "away before new calls are refused; a second SIGTERM or SIGINT ends the drain",
    )
    option("--customer-cache-size", "customer_cache_size", int, "customer histories kept in memory")
    switch(
        "--insecure-no-auth",
        "insecure_no_auth",
        "no API keys: the tenant comes from x-tenant-id; only on loopback addresses",
    )
    option("--tls-cert", "tls_cert", Path, "PEM certificate chain")
    option("--tls-key", "tls_key", Path, "PEM private key")
    option(
        "--tls-client-ca",
        "tls_client_ca",
        Path,
        "PEM CA bundle; clients must present a certificate it signed (mutual TLS)",
    )
    option("--max-message-bytes", "max_message_bytes", int, "largest request accepted")
    option(
        "--max-concurrent-rpcs",
        "max_concurrent_rpcs",
        int,
        "calls in progress at once; more are refused with RESOURCE_EXHAUSTED",
    )
    option("--rate-limit", "rate_limit", float, "calls per second per tenant, 0 for no limit")
    option(
        "--rate-burst",
        "rate_burst",
        float,
        "calls a tenant may make at once above the rate; 0 means one second's worth",
    )
    option(
        "--decision-log-sample",
        "decision_log_sample",
        float,
        "share of decisions (0 to 1) kept with their request, answer and every candidate's fate",
    )
    option("--decision-log-days", "decision_log_days", int, "days a kept decision stays in the decision log")
    option(
        "--workers",
        "workers",
        int,
        "processes serving the same ports, each with its own event loop (distributed backend only)",
    )
    switch("--demo", "demo", "load the demo catalogue (idempotent) and print a new demo admin key before serving")
    return parser


def load_config(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    parser = _parser(env)
    try:
        args = parser.parse_args(argv)
    except ValueError as exc:  # an environment value of the wrong type
        raise ConfigError(str(exc)) from None
    values = vars(args)
    # argparse applies `type` and `choices` to flags only (and `type` to string defaults), so
    # values from the environment are converted and checked here.
    if isinstance(values["db"], str):
        values["db"] = database(values["db"])
    for name in ("tls_cert", "tls_key", "tls_client_ca"):
        if isinstance(values[name], str):
            values[name] = Path(values[name])
    if values["log_format"] not in LOG_FORMATS:
        raise ConfigError(f"log format {values['log_format']!r} is not one of {', '.join(LOG_FORMATS)}")
    if values["log_level"] not in LOG_LEVELS:
        raise ConfigError(f"log level {values['log_level']!r} is not one of {', '.join(LOG_LEVELS)}")
    if not isinstance(values["durability"], Durability):
        choices = [d.value for d in Durability]
        if values["durability"] not in choices:
            raise ConfigError(f"durability {values['durability']!r} is not one of {', '.join(choices)}")
        values["durability"] = Durability(values["durability"])
    config = Config(**values)
    for flag, value in (
        ("--customer-cache-size", config.customer_cache_size),
        ("--max-message-bytes", config.max_message_bytes),
        ("--max-concurrent-rpcs", config.max_concurrent_rpcs),
    ):
        if value < 1:
            raise ConfigError(f"{flag} must be at least 1, got {value}")
    if not 0.0 <= config.decision_log_sample <= 1.0:
        raise ConfigError(f"--decision-log-sample must be between 0 and 1, got {config.decision_log_sample}")
    if config.decision_log_days < 1:
        raise ConfigError(f"--decision-log-days must be at least 1, got {config.decision_log_days}")
    if not 0.0 <= config.drain_seconds <= 3600.0:
        raise ConfigError(f"--drain-seconds must be between 0 and 3600, got {config.drain_seconds}")
    if config.rate_limit < 0 or config.rate_burst < 0:
        raise ConfigError("--rate-limit and --rate-burst must not be negative")
    split_address(config.address)
    if http_enabled(config):
        split_address(config.http_address)
    if metrics_listener(config):
        split_address(config.metrics_address)
    return config
