"""The server's layers import only what ARCHITECTURE.md allows."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVER = Path(__file__).resolve().parent.parent / "server" / "arbiter" / "server"

# What each layer must never import (module prefixes, absolute or resolved from relative imports).
FORBIDDEN = {
    "domain": (
        "grpc",
        "grpc_",
        "google.rpc",
        "arbiter.v1",
        "sqlite3",
        "sqlite_utils",
        "arbiter.server.storage",
        "arbiter.server.transport",
    ),
    "storage": ("grpc", "grpc_", "google.rpc", "arbiter.v1", "arbiter.server.transport"),
    "transport": (),
}


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
        if any(name == bad or name.startswith(bad if bad.endswith("_") else bad + ".") for bad in FORBIDDEN[layer])
    ]
    assert offences == []


def test_only_transport_and_the_composition_root_speak_grpc() -> None:
    allowed = {"app.py", "__main__.py", "demo.py"}
    offenders = [
        str(path.relative_to(SERVER))
        for path in SERVER.rglob("*.py")
        if path.parent == SERVER and path.name not in allowed
        for name in _imports(path)
        if name == "grpc" or name.startswith(("grpc.", "arbiter.v1"))
    ]
    assert offenders == []


def test_the_checker_sees_relative_imports() -> None:
    # Guards the test itself: a relative import from storage must resolve to its absolute name.
    names = _imports(SERVER / "storage" / "offer_repository.py")
    assert "arbiter.server.domain.offer_rules" in names or "arbiter.server.domain" in names
