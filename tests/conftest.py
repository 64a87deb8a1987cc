"""Shared fixtures: one real server for the session, a fresh tenant per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import backends
import pytest
from hypothesis import HealthCheck, settings
from serverproc import ServerProcess

from arbiter.client import Client

settings.register_profile(
    "ci", deadline=None, max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.load_profile("ci")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the tests about what only the other backend has (backends.py)."""
    other = "sqlite_only" if backends.on_postgres() else "postgres_only"
    kept = [item for item in items if item.get_closest_marker(other) is None]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item.get_closest_marker(other) is not None])
        items[:] = kept


@pytest.fixture(scope="session", autouse=True)
def distributed_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The run's Postgres and Redis servers when the suite runs on postgres (backends.py); nothing on sqlite."""
    if not backends.on_postgres():
        yield
        return
    try:
        backends.start_postgres(tmp_path_factory.mktemp("postgres"))
        backends.start_redis(tmp_path_factory.mktemp("redis"))
        yield
    finally:
        backends.stop_servers()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real server on a free loopback port with its own database, shared by the session.

    Tests stay independent by each using a tenant of their own.
    """
    db = tmp_path_factory.mktemp("shared-server") / "arbiter.db"
    with ServerProcess(db, http=True) as process:
        yield process


@pytest.fixture
def tenant() -> str:
    return "t-" + uuid.uuid4().hex[:16]


@pytest.fixture
def client(server: ServerProcess, tenant: str) -> Iterator[Client]:
    with Client(server.target, tenant=tenant) as c:
        yield c


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "arbiter.db"
