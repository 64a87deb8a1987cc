"""`arbiter migrate --from FILE --to URL`: a SQLite database copied into an empty Postgres database.

A real server fills a SQLite file through the API, the CLI copies it, and a
server on the Postgres database must answer exactly what the SQLite server
answered. These tests need a Postgres whatever the suite's backend, so they
run in the postgres run only (`postgres_only`; tests/backends.py starts it).
Every SQLite server here serves its file itself (`ServerProcess(..., sqlite=True)`), in
that run too.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import backends
import psycopg
import pytest
from auth_helpers import SECRET_PATTERN, key_id_of, mint, revoked_key
from decide_helpers import make_offer, new_key
from google.protobuf.message import Message
from offer_builders import create_in_status, ensure_hierarchy, full_offer
from policy_helpers import policy
from serverproc import ServerProcess
from sqlite_utils import Database

from arbiter.client import Client, UnauthenticatedError, outcome
from arbiter.server.storage.copy import TargetRefused, copy_database
from arbiter.server.storage.sqlite.migrations import migrations
from arbiter.v1 import decisions_pb2

pytestmark = pytest.mark.postgres_only

CLI_TIMEOUT = 120.0
DUPLICATE = decisions_pb2.OUTCOME_STATUS_DUPLICATE
RECORDED = decisions_pb2.OUTCOME_STATUS_RECORDED
# The data tables, in schema order (what the CLI prints a line for); api_key_changes is not copied.
DATA_TABLES = (
    "offers",
    "offer_tags",
    "outcomes",
    "offer_daily",
    "model_stats",
    "tenant_settings",
    "categories",
    "sub_categories",
    "contact_policies",
    "api_keys",
    "decision_log",
    "outcome_matching",
)


# --------------------------------------------------------------------------
# Running the CLI, reading both databases
# --------------------------------------------------------------------------


def _fresh_target() -> str:
    """The URL of a new, empty database on the run's Postgres (schema made on first use)."""
    return backends.postgres().create_database("migrate_" + uuid.uuid4().hex[:20])


def _migrate(source: Path | str, target: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "arbiter.server", "migrate", "--from", str(source), "--to", target]
    return subprocess.run(command, capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False)


def _refusal(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a refusal prints on stderr (exit code 2, nothing on stdout)."""
    assert result.returncode == 2, result
    assert result.stdout == "", result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("arbiter migrate: "), lines[0]
    return lines[0]


def _printed_counts(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
    """The per-table lines and the total the CLI printed on success."""
    assert result.returncode == 0, result.stderr
    counts: dict[str, int] = {}
    for line in result.stdout.strip().splitlines():
        name, number = line.split()
        counts[name] = int(number.replace(",", ""))
    return counts


def _create_key(db: Path | str, tenant: str, role: str = "admin") -> str:
    """A key made with `arbiter keys create` on the SQLite file or Postgres URL `db`; its secret."""
    command = [sys.executable, "-m", "arbiter.server", "keys", "--db", str(db), "create", "--tenant", tenant]
    result = subprocess.run(
        [*command, "--role", role], capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False
    )
    assert result.returncode == 0, result.stderr
    secret = result.stdout.strip()
    assert SECRET_PATTERN.fullmatch(secret), result.stdout
    return secret


def _source_rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return conn.execute(sql).fetchall()


def _write_source(db: Path, sql: str, params: tuple[object, ...] = ()) -> None:
    """One statement straight into a SQLite file (no server on it), committed."""
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute(sql, params)


def _target_rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


def _columns(db: Path, table: str) -> list[str]:
    return [row[0] for row in _source_rows(db, f"SELECT name FROM pragma_table_info('{table}')")]


def _table(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows in an order independent of the database (values of mixed types sort by their repr)."""
    return sorted(rows, key=repr)


def _target_tables(url: str) -> list[str]:
    """The tables of the target database (none until a server or the CLI has migrated it)."""
    sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
    return [row[0] for row in _target_rows(url, sql)]


def _target_counts(url: str) -> dict[str, int]:
    return {table: _target_rows(url, f"SELECT count(*) FROM {table}")[0][0] for table in DATA_TABLES}


def _small_source(folder: Path) -> Path:
    """A SQLite file with a category, an offer, a tenant setting and outcomes, made by a real server."""
    db = folder / "small.db"
    with ServerProcess(db, sqlite=True) as server, Client(server.target, tenant="small") as client:
        ensure_hierarchy(client, "cat_a")
        offer_id = make_offer(client, categoryId="cat_a", tags=["t"])
        client.update_tenant_settings(timezone="Asia/Tokyo")
        client.record_outcome("c-1", offer_id, "impression", new_key())
        client.record_outcome("c-1", offer_id, "click", new_key())
    return db


# --------------------------------------------------------------------------
# What a server answers, to compare before and after
# --------------------------------------------------------------------------


def _every(page: Callable[[str], Any], field: str) -> list[Message]:
    """Every item of a paged list call (`page(token)` answers one page)."""
    items: list[Message] = []
    token = ""
    while True:
        answer = page(token)
        items.extend(getattr(answer, field))
        token = answer.next_page_token
        if not token:
            return items


def _answers(client: Client, decision_id: str, customer: str, at: datetime) -> dict[str, Any]:
    """Every resource and counter of the client's tenant, a logged decision and a dry-run funnel at `at`."""
    offers = list(client.iter_offers(page_size=100))
    funnel = client.decide(customer, decision_time=at, explain=True, dry_run=True, limit=50)
    return {
        "offers": offers,
        "categories": _every(lambda t: client.list_categories(page_size=100, page_token=t), "categories"),
        "sub_categories": _every(lambda t: client.list_sub_categories(page_size=100, page_token=t), "sub_categories"),
        "policies": _every(lambda t: client.list_contact_policies(page_size=100, page_token=t), "contact_policies"),
        "keys": _every(lambda t: client.list_api_keys(page_size=100, page_token=t), "api_keys"),
        "settings": client.get_tenant_settings(),
        "stats": {offer.id: client.get_offer_stats(offer.id) for offer in offers},
        "decision": client.get_decision(decision_id),
        "funnel": (
            [o.offer_id for o in funnel.offers],
            {c.offer_id: (c.selected, c.reason) for c in funnel.candidates},
        ),
    }


def _assert_same_answers(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert before.keys() == after.keys()
    for name, value in before.items():
        if name != "stats":
            assert after[name] == value, name
    assert after["stats"].keys() == before["stats"].keys()
    for offer_id, stats in before["stats"].items():
        then, now = decisions_pb2.OfferStats(), decisions_pb2.OfferStats()
        then.CopyFrom(stats)
        now.CopyFrom(after["stats"][offer_id])
        if then.today != now.today:  # the tenant's midnight passed in between: "today" restarted
            for copy in (then, now):
                for field in ("today", "today_impressions", "today_spend", "remaining_daily_budget"):
                    copy.ClearField(field)
        assert now == then, offer_id


# --------------------------------------------------------------------------
# The whole journey
# --------------------------------------------------------------------------


def test_a_database_filled_through_the_api_is_served_the_same_from_postgres(tmp_path: Path) -> None:
    db = tmp_path / "arbiter.db"
    target = _fresh_target()
    acme_admin = _create_key(db, "acme")
    beta_admin = _create_key(db, "beta")
    with ServerProcess(db, auth=True, env={"ARBITER_DECISION_LOG_SAMPLE": "1"}, sqlite=True) as server:
        with Client(server.target, api_key=acme_admin) as admin:
            ensure_hierarchy(admin, "cat_credit_cards", "cat_a")
            admin.update_tenant_settings(timezone="Europe/Paris")
            budget = {"maxImpressions": 3, "maxDailyBudget": 10.0, "costPerAction": 2.5}
            model = {"modelReference": "model_a"}
            capped = make_offer(
                admin,
                categoryId="cat_a",
                subCategoryId="sub_a1",
                tags=["gold", "q1"],
                budget=budget,
                qualification=model,
            )
            premium = make_offer(
                admin,
                categoryId="cat_credit_cards",
                subCategoryId="sub_premium",
                tags=["gold"],
                priority="high",
                budget={"costPerAction": 0.75},
                qualification=model,
            )
            admin.create_offer(full_offer(status="draft"))
            create_in_status(admin, "archived")
            policy(admin, "frequencyCap", {"maxPerDay": 4})
            policy(admin, "cooldown", {"minHours": 1}, scope="category", scope_id="cat_a")
            editor, decider = mint(admin, "editor", name="editor"), mint(admin, "decide", name="decide")
            revoked = revoked_key(admin)

            shown = admin.decide("cust-1", record_impressions=True, limit=5)
            assert {o.offer_id for o in shown.offers} == {capped, premium}
            click_key = new_key("click")
            clicked = admin.record_outcome("cust-1", capped, "click", click_key, decision_id=shown.decision_id)
            assert clicked.status == RECORDED
            for customer in ("cust-2", "cust-3"):  # the capped offer's third impression exhausts it
                admin.record_outcome(customer, capped, "impression", new_key())
            bulk = [outcome(f"cust-{i}", premium, "impression", new_key("bulk")) for i in range(4, 24)]
            bulk += [
                outcome("cust-4", premium, "conversion", new_key("conv")),
                outcome("cust-5", premium, "dismiss", new_key()),
            ]
            assert {r.status for r in admin.record_outcomes(bulk)} == {RECORDED}
        with Client(server.target, api_key=beta_admin) as beta:
            beta_offer = make_offer(beta, budget={"maxImpressions": 10, "costPerAction": 1.0})
            beta_shown = beta.decide("b-1", record_impressions=True)
            beta.record_outcome("b-1", beta_offer, "click", new_key(), decision_id=beta_shown.decision_id)
        at = datetime.now(UTC)  # the dry-run funnels on both servers decide at this instant
        with Client(server.target, api_key=acme_admin) as admin:
            acme_before = _answers(admin, shown.decision_id, "cust-1", at)
        with Client(server.target, api_key=beta_admin) as beta:
            beta_before = _answers(beta, beta_shown.decision_id, "b-2", at)
    assert capped not in acme_before["funnel"][0]  # its impressions are spent (and cust-1 saw it moments ago)

    result = _migrate(db, target)
    counts = _printed_counts(result)
    assert list(counts) == [*DATA_TABLES, "total"]
    assert "copied" in result.stderr

    # Every row of every data table, as it is, seq and bytes included.
    for table in DATA_TABLES:
        columns = ", ".join(_columns(db, table))
        rows = _source_rows(db, f"SELECT {columns} FROM {table}")
        assert counts[table] == len(rows), table
        assert _table(_target_rows(target, f"SELECT {columns} FROM {table}")) == _table(rows), table
    assert counts["total"] == sum(counts[t] for t in DATA_TABLES)
    assert counts["outcomes"] > 20 and counts["decision_log"] > 0 and counts["outcome_matching"] > 0
    assert _target_rows(target, "SELECT version FROM api_key_changes")[0][0] > 0  # moved by the keys' trigger

    with ServerProcess(tmp_path / "unused.db", url=target, auth=True) as pg:
        with Client(pg.target, api_key=acme_admin) as admin:
            _assert_same_answers(acme_before, _answers(admin, shown.decision_id, "cust-1", at))
            again = admin.record_outcome("cust-1", capped, "click", click_key, decision_id=shown.decision_id)
            assert (again.status, again.outcome_id, again.recorded_at) == (
                DUPLICATE,
                clicked.outcome_id,
                clicked.recorded_at,
            )
            largest = _target_rows(target, "SELECT max(seq) FROM outcomes")[0][0]
            fresh = admin.record_outcome("cust-9", premium, "impression", new_key())
            assert fresh.status == RECORDED
            assert _target_rows(target, f"SELECT seq FROM outcomes WHERE id = '{fresh.outcome_id}'")[0][0] > largest
        with Client(pg.target, api_key=beta_admin) as beta:
            _assert_same_answers(beta_before, _answers(beta, beta_shown.decision_id, "b-2", at))
        with Client(pg.target, api_key=editor) as client:
            assert {o.id for o in client.iter_offers()} >= {capped, premium}
        with Client(pg.target, api_key=decider) as client:
            assert client.decide("cust-50").decision_id
        with Client(pg.target, api_key=revoked) as client, pytest.raises(UnauthenticatedError) as refused:
            client.list_offers()
        assert refused.value.reason == "KEY_REVOKED"
        assert key_id_of(revoked) in {k.id for k in acme_before["keys"]}


# --------------------------------------------------------------------------
# Refusals: one line, exit code 2, nothing written
# --------------------------------------------------------------------------


def test_a_target_that_holds_data_is_refused_naming_the_table_and_left_as_it_was(tmp_path: Path) -> None:
    db = _small_source(tmp_path)
    target = _fresh_target()
    _create_key(target, "already-here")
    before = _target_counts(target)
    line = _refusal(_migrate(db, target))
    assert "table api_keys has rows" in line and "empty database" in line
    assert _target_counts(target) == before == {**dict.fromkeys(DATA_TABLES, 0), "api_keys": 1}


def test_a_failure_half_way_leaves_the_target_empty(tmp_path: Path) -> None:
    db = _small_source(tmp_path)
    # SQLite stores text with U+0000; Postgres cannot. outcome_matching is the last table copied.
    _write_source(db, "INSERT INTO outcome_matching VALUES ('small', ?, 'o', 1, 1, 1, 0, 0)", ("nul\x00customer",))
    target = _fresh_target()
    line = _refusal(_migrate(db, target))
    assert "writing table outcome_matching failed" in line and "NUL" in line and "nothing was written" in line
    assert _target_counts(target) == dict.fromkeys(DATA_TABLES, 0)
    # The target is as good as new: a copy without the bad row goes through.
    _write_source(db, "DELETE FROM outcome_matching WHERE customer_id LIKE 'nul%'")
    assert _printed_counts(_migrate(db, target))["offers"] == 1


def test_a_server_running_on_the_target_is_refused(tmp_path: Path) -> None:
    db = _small_source(tmp_path)
    target = _fresh_target()
    with ServerProcess(tmp_path / "unused.db", url=target):
        line = _refusal(_migrate(db, target))
    assert "arbiter session(s) are connected" in line and "stop them" in line
    assert _target_counts(target) == dict.fromkeys(DATA_TABLES, 0)


def test_a_missing_source_file_is_refused(tmp_path: Path) -> None:
    target = _fresh_target()
    missing = tmp_path / "nowhere.db"
    line = _refusal(_migrate(missing, target))
    assert line == f"arbiter migrate: --from {missing}: no such database file"
    assert not list(tmp_path.iterdir())  # not even a lock file
    assert _target_tables(target) == []


def test_a_source_a_server_serves_is_refused_naming_its_pid(tmp_path: Path) -> None:
    db = tmp_path / "served.db"
    target = _fresh_target()
    with ServerProcess(db, sqlite=True) as server, Client(server.target, tenant="busy") as client:
        make_offer(client)
        assert server.process is not None
        line = _refusal(_migrate(db, target))
        assert f"served by a running arbiter server (pid {server.process.pid})" in line
        assert line.startswith(f"arbiter migrate: --from {db}: ")
    assert _target_tables(target) == []  # refused before the target was touched


def test_a_file_that_is_not_an_arbiter_database_is_refused(tmp_path: Path) -> None:
    target = _fresh_target()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database, " * 100)
    assert "not a readable SQLite database" in _refusal(_migrate(junk, target))
    other = tmp_path / "other.db"
    _write_source(other, "CREATE TABLE notes (body TEXT)")
    assert "not an Arbiter database (no table _sqlite_migrations)" in _refusal(_migrate(other, target))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.db", "other.db"]  # no lock file beside them
    assert _source_rows(other, "SELECT name FROM sqlite_master") == [("notes",)]  # left as it was


def test_a_to_that_is_not_postgres_is_refused(tmp_path: Path) -> None:
    db = _small_source(tmp_path)
    line = _refusal(_migrate(db, str(tmp_path / "copy.db")))
    assert "not a Postgres URL" in line and "postgresql://" in line
    line = _refusal(_migrate(db, "mysql://admin:s3cret@db.internal/arbiter"))
    assert "mysql://admin:***@db.internal/arbiter" in line and "s3cret" not in line
    assert not (tmp_path / "copy.db").exists()
    assert "give the SQLite database file" in _refusal(_migrate(_fresh_target(), _fresh_target()))


def test_an_unreachable_postgres_is_one_line_without_the_password(tmp_path: Path) -> None:
    db = _small_source(tmp_path)
    line = _refusal(_migrate(db, "postgresql://postgres:s3cret@127.0.0.1:1/arbiter"))
    assert "--to postgresql://postgres:***@127.0.0.1:1/arbiter: cannot connect" in line
    assert "Connection refused" in line and "s3cret" not in line


def test_both_options_are_required() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "arbiter.server", "migrate", "--from", "arbiter.db"],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    assert result.returncode == 2 and "--to" in result.stderr


# --------------------------------------------------------------------------
# An older file, and many batches
# --------------------------------------------------------------------------


@pytest.fixture
def old_source(tmp_path: Path) -> Path:
    """A database made before outcome matching was kept (migration m008), with 50 outcomes."""
    path = tmp_path / "old.db"
    old = Database(path)
    migrations.apply(old, stop_before="m008_outcome_matching")
    old["outcomes"].insert_all(  # type: ignore[union-attr]
        {
            "id": f"out_{i:04d}",
            "tenant": "t",
            "idempotency_key": f"k{i}",
            "customer_id": f"c{i % 5}",
            "offer_id": "offer",
            "type": 1 if i % 3 else 2,
            "decision_id": "",
            "channel": "",
            "occurred_us": 1_000 + i,
            "recorded_us": 2_000 + i,
        }
        for i in range(50)
    )
    old.conn.close()
    return path


def test_an_older_database_is_brought_up_to_date_and_copied_in_batches(old_source: Path) -> None:
    target = _fresh_target()
    counts = copy_database(old_source, target, batch_rows=7)
    assert counts["outcomes"] == 50
    assert counts["outcome_matching"] == 5 == len(_source_rows(old_source, "SELECT * FROM outcome_matching"))
    columns = ", ".join(_columns(old_source, "outcome_matching"))
    assert _table(_target_rows(target, f"SELECT {columns} FROM outcome_matching")) == _table(
        _source_rows(old_source, f"SELECT {columns} FROM outcome_matching")
    )
    assert _target_rows(target, "SELECT min(seq), max(seq), count(*) FROM outcomes") == [(1, 50, 50)]
    with pytest.raises(TargetRefused, match="table outcomes has rows"):
        copy_database(old_source, target)
