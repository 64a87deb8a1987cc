"""REST bodies whose JSON decodes to something that is not text."""

from __future__ import annotations

from pathlib import Path

from rest_helpers import RestClient
from serverproc import ServerProcess


def test_a_lone_surrogate_escape_in_a_body_is_refused_naming_the_field(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "a.db", http=True) as server:
        rest = RestClient(server.http_url, tenant="t")
        answer = rest.call(
            "POST",
            "/api/v1/actions",
            raw=b'{"name": "ok\\ud800", "priority": 50}',
            headers={"Content-Type": "application/json"},
        )
    assert answer.status == 400, answer.body
    assert "lone surrogate" in answer.violations()["name"]
