"""The server's layers import only what ARCHITECTURE.md allows: transport -> app -> domain; storage -> app's
interfaces + domain; only storage speaks to databases, only transport speaks gRPC."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVER = Path(__file__).resolve().parent.parent / "server" / "arbiter" / "server"

WIRE = ("grpc", "grpc_", "google.rpc", "arbiter.v1", "arbiter.client", "aiohttp")
DATABASES = ("sqlite3", "sqlite_utils", "psycopg", "psycopg_pool", "redis")
APP = "arbiter.server.app"
STORAGE = "arbiter.server.storage"
TRANSPORT = "arbiter.server.transport"

# What each layer must never import (module prefixes; relative imports are resolved first).
FORBIDDEN = {
    "domain": (*WIRE, *DATABASES, APP, STORAGE, TRANSPORT),
    "app": (*WIRE, *DATABASES, STORAGE, TRANSPORT),
    "storage": (*WIRE, TRANSPORT),
    "transport": (*DATABASES, STORAGE),
}
# Storage may use the application's interfaces and plain data, nothing that runs use cases.
STORAGE_MAY_USE_FROM_APP = ("arbiter.server.app.ports",)


def _imports(path: Path) -> list[str]:
    package = ".".join(path.relative_to(SERVER.parent.parent).with_suffix("").parts[:-1])
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.append(module)
    return names


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix if prefix.endswith("_") else prefix + ".")


def _layer_files(layer: str) -> list[Path]:
    return sorted((SERVER / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_what_it_may(layer: str) -> None:
    files = _layer_files(layer)
    assert files, f"no modules found in {layer}/"
    offences = [
        f"{path.relative_to(SERVER)} imports {name}"
        for path in files
        for name in _imports(path)
        if any(_matches(name, bad) for bad in FORBIDDEN[layer])
    ]
    assert offences == []


def test_storage_uses_only_the_interfaces_of_the_application_layer() -> None:
    offences = [
        f"{path.relative_to(SERVER)} imports {name}"
        for path in _layer_files("storage")
        for name in _imports(path)
        if _matches(name, APP) and not any(_matches(name, allowed) for allowed in STORAGE_MAY_USE_FROM_APP)
    ]
    assert offences == []


def test_the_composition_root_speaks_neither_grpc_nor_sql() -> None:
    # Modules beside the layers (application.py, config.py, __main__.py, demo.py, keys_cli.py) wire the
    # layers together; the wire protocol belongs to transport and SQL to storage.
    offenders = [
        f"{path.name} imports {name}"
        for path in sorted(SERVER.glob("*.py"))
        for name in _imports(path)
        if any(_matches(name, bad) for bad in ("grpc", "grpc_", "google.rpc", "arbiter.v1", *DATABASES))
    ]
    assert offenders == []


def test_the_checker_sees_relative_imports_and_would_catch_an_offence() -> None:
    # Guards the test itself: relative imports resolve to absolute names, and a forbidden one matches.
    names = _imports(SERVER / "storage" / "sqlite" / "database.py")
    assert "arbiter.server.storage.sql.connection" in names
    assert "arbiter.server.domain.errors" in names
    assert any(_matches(name, "sqlite_utils") for name in names)
    assert not _matches("grpcio_tools", "grpc")
    assert _matches("grpc_health.v1", "grpc_")
