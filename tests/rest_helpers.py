"""A small HTTP client for the REST API's end-to-end tests (standard library only)."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

TIMEOUT = 10.0


@dataclass
class Answer:
    """One HTTP answer: status, headers (lower-case names) and the parsed JSON body (None when empty)."""

    status: int
    headers: dict[str, str]
    body: Any
    raw: bytes

    @property
    def error(self) -> dict[str, Any]:
        assert isinstance(self.body, dict) and "error" in self.body, self.body
        return self.body["error"]

    def violations(self) -> dict[str, str]:
        """field -> description of the BadRequest detail of an error answer."""
        for detail in self.error["details"]:
            if detail["@type"].endswith("google.rpc.BadRequest"):
                return {v["field"]: v["description"] for v in detail["fieldViolations"]}
        return {}

    def reason(self) -> str:
        for detail in self.error["details"]:
            if detail["@type"].endswith("google.rpc.ErrorInfo"):
                return str(detail["reason"])
        return ""


class RestClient:
    """Calls one server's REST API as one caller: a tenant (no-auth servers) or an API key."""

    def __init__(self, base_url: str, *, tenant: str | None = None, key: str | None = None) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.tenant = tenant
        self.key = key

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Answer:
        """Send one request; `body` is sent as JSON, `raw` as it is (with the headers given)."""
        sent = dict(headers or {})
        if self.tenant is not None:
            sent.setdefault("X-Tenant-Id", self.tenant)
        if self.key is not None:
            sent.setdefault("Authorization", f"Bearer {self.key}")
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        connection = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)
        try:
            connection.request(method, path, body=data, headers=sent)
            response = connection.getresponse()
            content = response.read()
            answer_headers = {k.lower(): v for k, v in response.getheaders()}
        finally:
            connection.close()
        parsed = json.loads(content) if content and "json" in answer_headers.get("content-type", "") else None
        return Answer(response.status, answer_headers, parsed, content)

    def get(self, path: str, **kwargs: Any) -> Answer:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Answer:
        return self.call("POST", path, body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> Answer:
        return self.call("PUT", path, body, **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs: Any) -> Answer:
        return self.call("PATCH", path, body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Answer:
        return self.call("DELETE", path, **kwargs)


# The seed's category with the custom fields its example offer sets.
SEED_CATEGORY: dict[str, Any] = {
    "name": "Credit cards",
    "customFields": [
        {"key": "base_rate", "label": "Base APR (%)", "type": "number", "required": True},
        {"key": "annual_fee", "label": "Annual fee", "type": "number", "defaultValue": 0},
        {"key": "rewards_multiplier", "label": "Rewards multiplier", "type": "number", "defaultValue": 1},
    ],
}


def make_seed_hierarchy(rest: RestClient) -> None:
    """The seed example's category (cat_credit_cards) and sub-category (sub_premium) in the caller's tenant."""
    created = rest.post("/api/v1/categories?categoryId=cat_credit_cards", SEED_CATEGORY)
    assert created.status == 201, created.body
    sub = rest.post("/api/v1/categories/cat_credit_cards/sub-categories?subCategoryId=sub_premium", {"name": "Premium"})
    assert sub.status == 201, sub.body
