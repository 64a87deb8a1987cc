"""Kept decisions <-> compact compressed JSON (storage layer).

Keys are short and defaults are left out, then the JSON is zlib-compressed:
a decision's candidates repeat the same words (offer ids, names, messages),
which compresses well, and the log's size is what retention has to bound.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from ...domain.decision_log import LoggedCandidate, LoggedDecision, LoggedOffer
from ...domain.decisions import DecisionRequest, DropReason

_LEVEL = 6


def _request_json(r: DecisionRequest) -> dict[str, Any]:
    out: dict[str, Any] = {"c": r.customer_id, "t": r.decision_us, "l": r.limit}
    for key, value in (
        ("s", sorted(r.segments)),
        ("a", r.attributes),
        ("op", r.offer_propensities),
        ("mp", r.model_propensities),
        ("ch", r.channel),
        ("ci", sorted(r.category_ids)),
        ("si", sorted(r.sub_category_ids)),
        ("tg", sorted(r.tags)),
        ("x", r.explain),
        ("d", r.dry_run),
        ("ri", r.record_impressions),
    ):
        if value:
            out[key] = value
    return out


def _request_from(j: dict[str, Any]) -> DecisionRequest:
    return DecisionRequest(
        customer_id=j["c"],
        decision_us=j["t"],
        limit=j["l"],
        segments=frozenset(j.get("s", ())),
        attributes=j.get("a", {}),
        offer_propensities=j.get("op", {}),
        model_propensities=j.get("mp", {}),
        channel=j.get("ch", ""),
        category_ids=frozenset(j.get("ci", ())),
        sub_category_ids=frozenset(j.get("si", ())),
        tags=frozenset(j.get("tg", ())),
        explain=j.get("x", False),
        dry_run=j.get("d", False),
        record_impressions=j.get("ri", False),
    )


def _offer_json(o: LoggedOffer) -> list[Any]:
    return [
        o.rank,
        o.offer_id,
        o.name,
        o.short_desc,
        o.score,
        o.propensity,
        o.source,
        o.priority_score,
        o.mandatory,
        o.category_id,
        o.sub_category_id,
        list(o.tags),
        o.personalization,
    ]


def _offer_from(j: list[Any]) -> LoggedOffer:
    rank, offer_id, name, short, score, propensity, source, priority, mandatory, cat, sub, tags, pers = j
    return LoggedOffer(
        rank, offer_id, name, short, score, propensity, source, priority, mandatory, cat, sub, tuple(tags), pers
    )


def _candidate_json(c: LoggedCandidate) -> list[Any]:
    return [c.offer_id, c.name, c.selected, int(c.reason), c.message, c.score, c.propensity, c.mandatory]


def _candidate_from(j: list[Any]) -> LoggedCandidate:
    offer_id, name, selected, reason, message, score, propensity, mandatory = j
    return LoggedCandidate(offer_id, name, selected, DropReason(reason), message, score, propensity, mandatory)


def encode_decision(d: LoggedDecision) -> bytes:
    body = {
        "r": _request_json(d.request),
        "o": [_offer_json(o) for o in d.offers],
        "k": [_candidate_json(c) for c in d.candidates],
    }
    return zlib.compress(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(), _LEVEL)


def decode_decision(decision_id: str, logged_us: int, blob: bytes) -> LoggedDecision:
    body = json.loads(zlib.decompress(blob))
    request = _request_from(body["r"])
    return LoggedDecision(
        decision_id=decision_id,
        decision_us=request.decision_us,
        logged_us=logged_us,
        request=request,
        offers=tuple(_offer_from(o) for o in body["o"]),
        candidates=tuple(_candidate_from(c) for c in body["k"]),
    )
