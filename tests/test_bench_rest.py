"""The pure helpers of the REST benchmark scenarios (bench/offerload.py, bench/suite.py, bench/server_process.py)."""

from __future__ import annotations

import math
import random
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.catalogue import build_offers, random_offer
from bench.h2load import H2loadSettings
from bench.offerload import http_request, parse_response_head, slice_order
from bench.server_process import BenchServer, http_address_arg
from bench.suite import HTTP_IDLE, METRICS_COST, ab_order, ab_summary, percent_difference


def test_response_head_of_a_created_offer() -> None:
    head = (
        b"HTTP/1.1 201 Created\r\nLocation: /api/v1/actions/act_1\r\n"
        b"Content-Type: application/json; charset=utf-8\r\nContent-Length: 300\r\n\r\n"
    )
    parsed = parse_response_head(head)
    assert (parsed.status, parsed.content_length, parsed.keep_alive) == (201, 300, True)


def test_response_head_connection_close_and_http10() -> None:
    assert not parse_response_head(b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n").keep_alive
    assert not parse_response_head(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n").keep_alive
    assert parse_response_head(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n\r\n").keep_alive


def test_response_head_without_length_has_an_empty_body() -> None:
    assert parse_response_head(b"HTTP/1.1 204 No Content\r\n\r\n").content_length == 0


@pytest.mark.parametrize(
    ("head", "problem"),
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "chunked"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "status line"),
        (b"HTTP/1.1 abc\r\n\r\n", "status line"),
    ],
)
def test_response_head_refuses_what_the_generator_cannot_read(head: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_response_head(head)


def test_http_request_carries_host_headers_and_exact_length() -> None:
    body = '{"name":"é"}'.encode()
    raw = http_request("POST", "/api/v1/actions", "127.0.0.1:8080", {"Content-Type": "application/json"}, body)
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /api/v1/actions HTTP/1.1"
    assert "Host: 127.0.0.1:8080" in lines
    assert "Content-Type: application/json" in lines
    assert f"Content-Length: {len(body)}" in lines
    assert rest == body


def test_http_address_arg_both_spellings_last_wins() -> None:
    assert http_address_arg([]) is None
    assert http_address_arg(["--http-address", "127.0.0.1:0"]) == "127.0.0.1:0"
    assert http_address_arg(["--http-address=off"]) == "off"
    assert http_address_arg(["--http-address", "off", "--http-address=127.0.0.1:9"]) == "127.0.0.1:9"
    assert http_address_arg(["--http-address"]) is None  # no value: argparse would refuse it


def test_http1_settings_keep_the_calls_in_flight_without_pipelining() -> None:
    http1 = H2loadSettings(clients=4, streams=16).http1()
    assert (http1.clients, http1.streams, http1.in_flight) == (64, 1, 64)


def test_ab_order_alternates() -> None:
    assert [ab_order(n, ("on", "off")) for n in range(3)] == [("on", "off"), ("off", "on"), ("on", "off")]


def test_percent_difference() -> None:
    assert percent_difference(0.95, 1.0) == pytest.approx(-5.0)
    assert percent_difference(0.33, 0.30) == pytest.approx(10.0)
    assert math.isnan(percent_difference(1.0, 0.0))


def test_ab_summary_takes_medians_of_the_per_round_ratios() -> None:
    summary = ab_summary([(1000.0, 300.0), (2000.0, 500.0), (800.0, 400.0)])
    assert summary["ceiling"] == pytest.approx(1000.0)
    assert summary["decide"] == pytest.approx(400.0)
    assert summary["ratios"] == pytest.approx([0.3, 0.25, 0.5])
    assert summary["ratio"] == pytest.approx(0.3)  # one odd round does not move it
    assert summary["ratio_mean"] == pytest.approx(0.35)
    assert ab_summary([])["ratio"] == 0.0


def _flag(command: list[str], flag: str) -> list[str]:
    """Every value `command` gives `flag`, in order."""
    return [command[i + 1] for i, arg in enumerate(command[:-1]) if arg == flag]


def _without(command: list[str], flag: str) -> list[str]:
    """`command` without `flag` and its values."""
    return [arg for i, arg in enumerate(command) if arg != flag and (i == 0 or command[i - 1] != flag)]


def test_metrics_cost_servers_differ_only_in_metrics_both_without_http_listener(tmp_path: Path) -> None:
    on, off = (
        BenchServer(tmp_path / "a.db", tmp_path / "a.log", side.args).command
        for side in (METRICS_COST.subject, METRICS_COST.reference)
    )
    assert _flag(on, "--http-address") == _flag(off, "--http-address") == ["off"]
    assert _flag(on, "--metrics-address") == [""]  # the default, named so an environment cannot turn it off
    assert _flag(off, "--metrics-address") == ["off"]
    assert _without(on, "--metrics-address") == _without(off, "--metrics-address")


def test_http_idle_servers_differ_only_in_the_http_listener(tmp_path: Path) -> None:
    on, off = (
        BenchServer(tmp_path / "a.db", tmp_path / "a.log", side.args).command
        for side in (HTTP_IDLE.subject, HTTP_IDLE.reference)
    )
    assert (_flag(on, "--http-address"), _flag(off, "--http-address")) == (["127.0.0.1:0"], ["off"])
    assert "--metrics-address" not in on + off
    assert _without(on, "--http-address") == _without(off, "--http-address")


def test_slice_order_takes_turns_and_reverses_every_other_round() -> None:
    assert slice_order(("grpc", "rest"), 3) == ["grpc", "rest", "rest", "grpc", "grpc", "rest"]
    assert slice_order(("rest",), 2) == ["rest", "rest"]


def test_random_offer_keeps_the_catalogue_as_it_was() -> None:
    """The refactoring that named offers freely must not change the seeded catalogue's offers."""
    now = datetime(2026, 1, 5, tzinfo=UTC)
    offers = build_offers(20, now=now)
    rng = random.Random(7)
    again = [
        random_offer(
            rng, now, name=f"Bench offer {i:05d}", short_desc=f"Synthetic offer number {i} for the benchmark tenant"
        )
        for i in range(20)
    ]
    mandatory = {i for i, offer in enumerate(offers) if offer.get("mandatory")}
    assert [o for i, o in enumerate(offers) if i not in mandatory] == [
        o for i, o in enumerate(again) if i not in mandatory
    ]
