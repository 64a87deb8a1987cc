"""A create-offer load generator over gRPC and REST: every call creates an offer with a name of its own.

Offer names are unique per tenant, so h2load's one fixed body would create
one offer and then be answered ALREADY_EXISTS (409) for every other call.
This generator sends a different body per call: offers with the synthetic
catalogue's spread (`bench.catalogue.random_offer`), named PREFIX-PROTOCOL-N,
as gRPC CreateOffer (grpc.aio, `--channels` channels shared by the workers)
and as REST `POST /api/v1/actions` (HTTP/1.1 keep-alive on plain asyncio
streams; HTTP/1.1 has one call in flight per connection, so each worker has
its own connection).

Every create grows the catalogue, and a create costs more in a larger
catalogue, so protocols measured one after the other would not compare.
The measured part is cut into slices that alternate between the protocols,
the order reversed every other round (gRPC, REST, REST, gRPC, gRPC, ...):
both see the same catalogue sizes.

Like bench/loadgen.py it first runs a warm-up per protocol with bodies built
on the fly (to estimate the rate), then builds enough bodies for the
measured part before it starts. Every call, warm-up included, is in a
protocol's `calls` and `codes` (gRPC code names, or HTTP status numbers as
strings), and `created_ids` counts the distinct offer ids its answers
carried, so a caller can check that every call created exactly one offer.

Run as `python -m bench.offerload --grpc-target HOST:PORT --http-target
HOST:PORT --api-key KEY ...` (the benchmark pins it to the load core with
taskset); it prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import json
import math
import random
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import grpc

from arbiter.client import offer_from_dict
from arbiter.v1 import offers_pb2
from bench.catalogue import random_offer
from bench.loadgen import percentile
from bench.server_process import process_cpu_seconds

PROTOCOLS = ("grpc", "rest")
GRPC_METHOD = "/arbiter.v1.OfferService/CreateOffer"
REST_PATH = "/api/v1/actions"
OK_CODE = {"grpc": "OK", "rest": "201"}
CALL_TIMEOUT = 60.0
CONNECTION_ERROR = "connection error"


@dataclass(frozen=True)
class OfferLoadConfig:
    """What to send, how hard and for how long."""

    api_key: str
    grpc_target: str = ""  # host:port of the gRPC listener
    http_target: str = ""  # host:port of the HTTP listener
    protocols: tuple[str, ...] = PROTOCOLS
    duration: float = 8.0  # measured seconds per protocol
    slices: int = 4  # measured slices per protocol
    warmup: float = 1.0  # warm-up seconds per protocol
    concurrency: int = 64
    channels: int = 4  # gRPC channels; REST opens one connection per worker
    name_prefix: str = "offerload"
    seed: int = 13
    server_pid: int | None = None

    def target(self, protocol: str) -> str:
        return self.grpc_target if protocol == "grpc" else self.http_target


@dataclass
class PhaseStats:
    calls: int = 0
    ok: int = 0
    elapsed_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)


@dataclass
class OfferLoadResult:
    """What the generator did and saw for one protocol."""

    protocol: str
    method: str
    concurrency: int
    connections: int
    calls: int  # every call, warm-up included
    codes: dict[str, int]
    ok_code: str
    created_ids: int  # distinct offer ids in the answers (every call warm-up included)
    warmup_calls: int
    measured_calls: int
    measured_ok: int
    measured_s: float
    calls_per_s: float
    slice_rates: list[float]  # calls/s of each measured slice, in order
    p50_ms: float
    p99_ms: float
    prebuilt: int
    prebuilt_exhausted: bool
    server_cpu_util: float | None  # server CPU seconds per second while measuring (1.0 = a saturated core)
    client_cpu_util: float  # this generator's CPU seconds per second while measuring

    @property
    def non_ok(self) -> int:
        return sum(n for code, n in self.codes.items() if code != self.ok_code)


# -- HTTP/1.1 on plain streams --------------------------------------------------------


@dataclass(frozen=True)
class ResponseHead:
    """The parts of an HTTP/1.1 response head the generator needs."""

    status: int
    content_length: int
    keep_alive: bool


def http_request(method: str, path: str, host: str, headers: Mapping[str, str], body: bytes) -> bytes:
    """One HTTP/1.1 request, ready to write (keep-alive is HTTP/1.1's default)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def parse_response_head(head: bytes) -> ResponseHead:
    """Status, body length and whether the connection stays open, from a response head (up to the blank line).

    Only bodies with a Content-Length are supported (aiohttp sets it on every
    answer the REST API gives); chunked answers raise ValueError.
    """
    status_line, *header_lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    version, _, rest = status_line.partition(" ")
    status_text = rest.split(" ", 1)[0]
    if not version.startswith("HTTP/1.") or not status_text.isdigit():
        raise ValueError(f"not an HTTP/1.x status line: {status_line!r}")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise ValueError("chunked answers are not supported")
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    return ResponseHead(int(status_text), int(headers.get("content-length", "0")), keep_alive)


class HttpConnection:
    """One keep-alive HTTP/1.1 connection, one call at a time; reconnects when the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def call(self, request: bytes) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        try:
            self._writer.write(request)
            head = await self._reader.readuntil(b"\r\n\r\n")
            parsed = parse_response_head(head)
            body = await self._reader.readexactly(parsed.content_length)
        except BaseException:
            await self.close()
            raise
        if not parsed.keep_alive:
            await self.close()
        return parsed.status, body

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


# -- bodies and calls -------------------------------------------------------------------


def slice_order(protocols: Sequence[str], slices: int) -> list[str]:
    """Each protocol `slices` times, the order reversed every other round: A B B A A B ..."""
    order: list[str] = []
    for k in range(slices):
        order.extend(protocols if k % 2 == 0 else reversed(protocols))
    return order


class OfferBodies:
    """Request bodies for one protocol, each offer named PREFIX-N (N counts up from 0)."""

    def __init__(self, protocol: str, target: str, api_key: str, prefix: str, seed: int, now: datetime) -> None:
        self.protocol = protocol
        self.target = target
        self.prefix = prefix
        self._rng = random.Random(seed)
        self._serial = itertools.count()
        self._now = now
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}

    def offer(self) -> dict[str, object]:
        serial = next(self._serial)
        return random_offer(
            self._rng,
            self._now,
            name=f"{self.prefix}-{serial:07d}",
            short_desc=f"Offer {serial} created by the create-offer benchmark",
        )

    def make(self) -> bytes:
        body = self.offer()
        if self.protocol == "grpc":
            return offers_pb2.CreateOfferRequest(offer=offer_from_dict(body)).SerializeToString()
        payload = json.dumps(body, separators=(",", ":")).encode()
        return http_request("POST", REST_PATH, self.target, self._headers, payload)


Call = Callable[[bytes], Awaitable[tuple[str, str | None]]]  # body -> (code, created offer id)


class ProtocolLoad:
    """One protocol's workers, bodies and tallies."""

    def __init__(self, protocol: str, config: OfferLoadConfig, now: datetime) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}")
        self.protocol = protocol
        self.config = config
        seed = config.seed * 10 + PROTOCOLS.index(protocol)
        prefix = f"{config.name_prefix}-{protocol}"
        self.bodies = OfferBodies(protocol, config.target(protocol), config.api_key, prefix, seed, now)
        self.ok_code = OK_CODE[protocol]
        self.codes: collections.Counter[str] = collections.Counter()
        self.ids: set[str] = set()
        self.calls: list[Call] = []
        self.warmup = PhaseStats()
        self.measured = PhaseStats()
        self.slice_rates: list[float] = []
        self.server_cpu: float | None = 0.0
        self.client_cpu = 0.0
        self.prebuilt: list[bytes] = []
        self._taken = 0
        self._close: Callable[[], Awaitable[None]] | None = None

    def next_body(self) -> bytes | None:
        """The next pre-built body, None once they are used up."""
        if self._taken >= len(self.prebuilt):
            return None
        self._taken += 1
        return self.prebuilt[self._taken - 1]

    def prebuild(self, seconds: float) -> None:
        rate = self.warmup.calls / self.warmup.elapsed_s if self.warmup.elapsed_s > 0 else 0.0
        count = max(self.config.concurrency * 4, math.ceil(rate * seconds * 1.6))
        self.prebuilt = [self.bodies.make() for _ in range(count)]

    async def open(self) -> None:
        config = self.config
        if self.protocol == "grpc":
            channels = [
                grpc.aio.insecure_channel(config.grpc_target, options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(config.channels)
            ]

            async def close_channels() -> None:
                for channel in channels:
                    await channel.close()

            self._close = close_channels
            for channel in channels:
                await asyncio.wait_for(channel.channel_ready(), timeout=10)
            metadata = (("authorization", f"Bearer {config.api_key}"),)
            stubs = [channel.unary_unary(GRPC_METHOD) for channel in channels]
            self.calls = [_grpc_call(stubs[w % len(stubs)], metadata) for w in range(config.concurrency)]
            return
        host, port = config.http_target.rsplit(":", 1)
        connections = [HttpConnection(host, int(port)) for _ in range(config.concurrency)]

        async def close_connections() -> None:
            for connection in connections:
                await connection.close()

        self._close = close_connections
        self.calls = [_rest_call(connection) for connection in connections]

    async def close(self) -> None:
        if self._close is not None:
            await self._close()

    def result(self) -> OfferLoadResult:
        latencies = sorted(self.measured.latencies_ms)
        elapsed = self.measured.elapsed_s
        return OfferLoadResult(
            protocol=self.protocol,
            method=GRPC_METHOD if self.protocol == "grpc" else f"POST {REST_PATH}",
            concurrency=self.config.concurrency,
            connections=self.config.channels if self.protocol == "grpc" else self.config.concurrency,
            calls=self.warmup.calls + self.measured.calls,
            codes=dict(self.codes),
            ok_code=self.ok_code,
            created_ids=len(self.ids),
            warmup_calls=self.warmup.calls,
            measured_calls=self.measured.calls,
            measured_ok=self.measured.ok,
            measured_s=elapsed,
            calls_per_s=self.measured.ok / elapsed if elapsed else 0.0,
            slice_rates=self.slice_rates,
            p50_ms=percentile(latencies, 50),
            p99_ms=percentile(latencies, 99),
            prebuilt=len(self.prebuilt),
            prebuilt_exhausted=self._taken >= len(self.prebuilt),
            server_cpu_util=self.server_cpu / elapsed if self.server_cpu is not None and elapsed else None,
            client_cpu_util=self.client_cpu / elapsed if elapsed else 0.0,
        )


def _grpc_call(stub: grpc.aio.UnaryUnaryMultiCallable, metadata: tuple[tuple[str, str], ...]) -> Call:
    async def call(body: bytes) -> tuple[str, str | None]:
        try:
            raw = await stub(body, metadata=metadata, timeout=CALL_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            return exc.code().name, None
        return "OK", offers_pb2.CreateOfferResponse.FromString(raw).offer.id

    return call


def _rest_call(connection: HttpConnection) -> Call:
    async def call(request: bytes) -> tuple[str, str | None]:
        try:
            status, body = await asyncio.wait_for(connection.call(request), CALL_TIMEOUT)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            return CONNECTION_ERROR, None
        if status != 201:
            return str(status), None
        created: object = json.loads(body).get("id")
        return "201", created if isinstance(created, str) else None

    return call


class OfferLoadGenerator:
    """`concurrency` workers per protocol, each call waiting for the last; protocols take turns, never together."""

    def __init__(self, config: OfferLoadConfig) -> None:
        now = datetime.now(UTC)
        self.config = config
        self.loads = {protocol: ProtocolLoad(protocol, config, now) for protocol in config.protocols}
        self.order = slice_order(config.protocols, config.slices)
        self.slices: list[dict[str, object]] = []

    async def run(self) -> dict[str, object]:
        config = self.config
        try:
            for load in self.loads.values():
                await load.open()
            for load in self.loads.values():
                await self._slice(load, config.warmup, load.warmup, prebuilt=False)
            for load in self.loads.values():
                load.prebuild(config.duration)
            seconds = config.duration / config.slices
            for protocol in self.order:
                load = self.loads[protocol]
                stats = PhaseStats()
                server_cpu = self._server_cpu()
                client_cpu = time.process_time()
                await self._slice(load, seconds, stats, prebuilt=True)
                load.client_cpu += time.process_time() - client_cpu
                after = self._server_cpu()
                if server_cpu is None or after is None or load.server_cpu is None:
                    load.server_cpu = None
                else:
                    load.server_cpu += after - server_cpu
                load.measured.calls += stats.calls
                load.measured.ok += stats.ok
                load.measured.elapsed_s += stats.elapsed_s
                load.measured.latencies_ms += stats.latencies_ms
                rate = stats.ok / stats.elapsed_s if stats.elapsed_s else 0.0
                load.slice_rates.append(rate)
                self.slices.append({"protocol": protocol, "calls": stats.calls, "seconds": stats.elapsed_s})
        finally:
            for load in self.loads.values():
                await load.close()
        results = {protocol: load.result() for protocol, load in self.loads.items()}
        return {
            "order": self.order,
            "slices": self.slices,
            "protocols": {protocol: {**asdict(r), "non_ok": r.non_ok} for protocol, r in results.items()},
            "non_ok": sum(r.non_ok for r in results.values()),
        }

    def _server_cpu(self) -> float | None:
        pid = self.config.server_pid
        return process_cpu_seconds(pid) if pid is not None else None

    async def _slice(self, load: ProtocolLoad, seconds: float, stats: PhaseStats, *, prebuilt: bool) -> None:
        """Call until `seconds` pass (or the pre-built bodies run out); wait for calls in flight."""
        if seconds <= 0:
            return
        start = time.perf_counter()
        deadline = start + seconds

        async def worker(call: Call) -> None:
            while time.perf_counter() < deadline:
                body = load.next_body() if prebuilt else load.bodies.make()
                if body is None:
                    return
                sent = time.perf_counter()
                stats.calls += 1
                code, offer_id = await call(body)
                load.codes[code] += 1
                if code != load.ok_code:
                    continue
                stats.latencies_ms.append((time.perf_counter() - sent) * 1000)
                stats.ok += 1
                if offer_id:
                    load.ids.add(offer_id)

        await asyncio.gather(*(worker(call) for call in load.calls))
        stats.elapsed_s += time.perf_counter() - start


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.offerload", description=__doc__.splitlines()[0])
    parser.add_argument("--grpc-target", default="", help="host:port of the gRPC listener")
    parser.add_argument("--http-target", default="", help="host:port of the HTTP listener")
    parser.add_argument("--protocols", default="grpc,rest", help="comma-separated: grpc, rest (default %(default)s)")
    parser.add_argument("--api-key", required=True, help="an admin or editor key (authorization: Bearer ...)")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per protocol")
    parser.add_argument("--slices", type=int, default=4, help="measured slices per protocol, taking turns")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per protocol (bodies on the fly)")
    parser.add_argument("--concurrency", type=int, default=64, help="calls in flight")
    parser.add_argument("--channels", type=int, default=4, help="gRPC channels (REST: one connection per call)")
    parser.add_argument("--name-prefix", default="offerload", help="offers are named PREFIX-PROTOCOL-N: unique per run")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--server-pid", type=int, help="report this process's CPU use while measuring")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    protocols = tuple(p.strip() for p in args.protocols.split(",") if p.strip())
    unknown = set(protocols) - set(PROTOCOLS)
    if unknown or not protocols or len(set(protocols)) != len(protocols):
        raise SystemExit(f"--protocols: choose from {', '.join(PROTOCOLS)}, each once")
    for protocol in protocols:
        if not (args.grpc_target if protocol == "grpc" else args.http_target):
            raise SystemExit(f"{protocol} needs --{'grpc' if protocol == 'grpc' else 'http'}-target")
    config = OfferLoadConfig(
        api_key=args.api_key,
        grpc_target=args.grpc_target,
        http_target=args.http_target,
        protocols=protocols,
        duration=args.duration,
        slices=max(1, args.slices),
        warmup=args.warmup,
        concurrency=args.concurrency,
        channels=args.channels,
        name_prefix=args.name_prefix,
        seed=args.seed,
        server_pid=args.server_pid,
    )
    result = asyncio.run(OfferLoadGenerator(config).run())
    print(json.dumps(result))
    return 0 if result["non_ok"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
