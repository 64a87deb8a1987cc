"""--log-format json: every line on stderr is one JSON object, with an access line per call."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest
from rest_helpers import RestClient
from serverproc import ServerProcess

from arbiter.client import Client
from arbiter.server.logs import JsonFormatter

ACCESS_KEYS = {"ts", "level", "msg", "request_id", "method", "tenant", "status", "duration_ms"}


def _lines(server: ServerProcess) -> list[dict[str, Any]]:
    lines = [line for line in server.stderr_lines if line.strip()]
    assert lines
    return [json.loads(line) for line in lines]  # raises on any line that is not one JSON object


def test_every_line_is_json_and_each_call_has_an_access_line(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "json.db", ["--log-format", "json", "--log-level", "info"], http=True)
    with server:
        with Client(server.target, tenant="acme") as client:
            decided = client.decide("c1")
            with pytest.raises(Exception, match="not found"):
                client.get_offer("act_00000000")
        rest = RestClient(server.http_url, tenant="acme")
        created = rest.post("/api/v1/actions", {"name": "logged"})
    # Leaving the block stopped the server: its last lines are in.
    records = _lines(server)

    access = [r for r in records if r.get("logger") == "arbiter.access"]
    by_method = {r["method"]: r for r in access}
    assert set(by_method) == {
        "/arbiter.v1.DecisionService/Decide",
        "/arbiter.v1.OfferService/GetOffer",
        "POST /api/v1/actions",
    }
    for record in access:
        assert set(record) >= ACCESS_KEYS, record
        assert record["tenant"] == "acme"
        assert isinstance(record["duration_ms"], float)
    assert by_method["/arbiter.v1.DecisionService/Decide"]["decision_id"] == decided.decision_id
    assert by_method["/arbiter.v1.DecisionService/Decide"]["status"] == "OK"
    assert by_method["/arbiter.v1.OfferService/GetOffer"]["status"] == "NOT_FOUND"
    assert by_method["POST /api/v1/actions"]["status"] == 201 == created.status
    assert len({r["request_id"] for r in access}) == 3
    assert any(r["msg"].startswith("serving on") for r in records)


def test_the_text_format_has_no_access_lines(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "text.db", ["--log-level", "info"]) as server, Client(server.target) as client:
        client.decide("c1")
    text = "".join(server.stderr_lines)
    assert "serving on" in text and "arbiter.access" not in text


def test_an_exception_is_kept_in_its_record() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("t").makeRecord("t", logging.ERROR, __file__, 1, "failed %s", ("x",), None)
        record.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(record))

    assert entry["msg"] == "failed x" and entry["level"] == "error"
    assert "ValueError: boom" in entry["exc"]
