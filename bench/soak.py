"""Soak test: mixed traffic from 64 concurrent clients for a bounded time, watching errors and memory.

    .venv/bin/python bench/soak.py [--duration 120] [--clients 64] [--customers 500000]

One server on loopback (core 0, authentication on, a small customer-cache
capacity so histories are evicted and reloaded all the time) takes Decide
(some recording impressions), RecordOutcome(s) and offer create/get/update/
list/delete cycles for many distinct customers. The run fails when any call
gets an unexpected status, or when the server's resident memory grows by 5%
or more over the second half of the run. Results go to bench/results/soak-latest.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench.*` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import grpc

from arbiter.client import Client, offer_from_dict, outcome
from arbiter.v1 import decisions_pb2, decisions_pb2_grpc, offers_pb2, offers_pb2_grpc
from bench.catalogue import CATEGORIES, build_offers, build_policies, create_hierarchy, create_offers
from bench.report import RESULTS_DIR, machine
from bench.server_process import BenchServer

CACHE_SIZE = 2_000
MEMORY_GROWTH_LIMIT = 0.05


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS line")


class Traffic:
    """One client's loop of mixed calls; counts every status."""

    def __init__(self, target: str, api_key: str, offer_ids: list[str], customers: int, seed: int) -> None:
        self.channel = grpc.aio.insecure_channel(target)
        self.decisions = decisions_pb2_grpc.DecisionServiceStub(self.channel)
        self.offers = offers_pb2_grpc.OfferServiceStub(self.channel)
        self.metadata = (("authorization", f"Bearer {api_key}"),)
        self.offer_ids = offer_ids
        self.customers = customers
        self.rng = random.Random(seed)
        self.seed = seed
        self.serial = 0
        self.codes: collections.Counter[str] = collections.Counter()

    async def call(self, name: str, method: grpc.aio.UnaryUnaryMultiCallable, request: object) -> object | None:
        try:
            response = await method(request, metadata=self.metadata, timeout=10)
        except grpc.aio.AioRpcError as error:
            self.codes[f"{name} {error.code().name}"] += 1
            return None
        self.codes[f"{name} OK"] += 1
        return response

    def customer(self) -> str:
        return f"soak-{self.rng.randrange(self.customers):07d}"

    async def step(self) -> None:
        rng = self.rng
        self.serial += 1
        roll = rng.random()
        if roll < 0.60:
            request = decisions_pb2.DecideRequest(
                customer_id=self.customer(),
                segments=rng.sample(["seg-homeowner", "seg-saver", "seg-student", "seg-credit-eligible"], 2),
                channel=rng.choice(["web", "app", "email"]),
                record_impressions=rng.random() < 0.3,
                limit=5,
            )
            request.attributes.update({"loyalty_score": rng.randrange(30)})
            await self.call("Decide", self.decisions.Decide, request)
        elif roll < 0.80:
            item = outcome(
                self.customer(),
                rng.choice(self.offer_ids),
                rng.choice(["impression", "click", "dismiss"]),
                f"soak-{self.seed}-{self.serial}",
            )
            await self.call(
                "RecordOutcome", self.decisions.RecordOutcome, decisions_pb2.RecordOutcomeRequest(outcome=item)
            )
        elif roll < 0.85:
            items = [
                outcome(
                    self.customer(), rng.choice(self.offer_ids), "impression", f"soak-{self.seed}-{self.serial}-{i}"
                )
                for i in range(20)
            ]
            await self.call(
                "RecordOutcomes", self.decisions.RecordOutcomes, decisions_pb2.RecordOutcomesRequest(outcomes=items)
            )
        else:
            await self.crud_cycle()

    async def crud_cycle(self) -> None:
        category = self.rng.choice(list(CATEGORIES))
        body = {
            "name": f"soak {self.seed}-{self.serial}",
            "categoryId": category,
            "status": "active",
            "customFields": {"rate": 5.0},
            "priority": "low",
        }
        created = await self.call(
            "CreateOffer", self.offers.CreateOffer, offers_pb2.CreateOfferRequest(offer=offer_from_dict(body))
        )
        if not isinstance(created, offers_pb2.CreateOfferResponse):
            return
        offer_id = created.offer.id
        await self.call("GetOffer", self.offers.GetOffer, offers_pb2.GetOfferRequest(id=offer_id))
        patch = offers_pb2.Offer(id=offer_id, short_desc=f"updated {self.serial}")
        await self.call("UpdateOffer", self.offers.UpdateOffer, offers_pb2.UpdateOfferRequest(offer=patch))
        await self.call("ListOffers", self.offers.ListOffers, offers_pb2.ListOffersRequest(page_size=20))
        await self.call("DeleteOffer", self.offers.DeleteOffer, offers_pb2.DeleteOfferRequest(id=offer_id, force=True))

    async def run(self, until: float) -> None:
        while time.monotonic() < until:
            await self.step()
        await self.channel.close()


async def soak(args: argparse.Namespace, server: BenchServer, api_key: str, offer_ids: list[str]) -> dict[str, Any]:
    start = time.monotonic()
    until = start + args.duration
    clients = [Traffic(server.target, api_key, offer_ids, args.customers, seed) for seed in range(args.clients)]
    samples: list[tuple[float, int]] = []

    async def sample_memory() -> None:
        while time.monotonic() < until:
            samples.append((time.monotonic() - start, rss_kib(server.pid)))
            await asyncio.sleep(1.0)

    await asyncio.gather(sample_memory(), *(c.run(until) for c in clients))
    codes: collections.Counter[str] = collections.Counter()
    for client in clients:
        codes.update(client.codes)
    half = args.duration / 2
    # Median of a few samples at each end of the second half, so one spike decides nothing.
    mid = sorted(kib for t, kib in samples if half - 3 <= t <= half + 3)
    end = sorted(kib for t, kib in samples if t >= args.duration - 6)
    mid_kib, end_kib = mid[len(mid) // 2], end[len(end) // 2]
    unexpected = {k: v for k, v in codes.items() if not k.endswith(" OK")}
    return {
        "duration_s": args.duration,
        "clients": args.clients,
        "distinct_customers": args.customers,
        "customer_cache_size": CACHE_SIZE,
        "calls": sum(codes.values()),
        "calls_per_s": sum(codes.values()) / args.duration,
        "codes": dict(sorted(codes.items())),
        "unexpected": unexpected,
        "rss_kib_start": samples[0][1],
        "rss_kib_mid": mid_kib,
        "rss_kib_end": end_kib,
        "rss_growth_second_half": (end_kib - mid_kib) / mid_kib,
        "rss_samples": samples,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of traffic (default %(default)s)")
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients (default %(default)s)")
    parser.add_argument("--customers", type=int, default=500_000, help="distinct customer ids (default %(default)s)")
    parser.add_argument("--offers", type=int, default=300, help="active offers in the tenant (default %(default)s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="arbiter-soak-") as scratch:
        server = BenchServer(
            Path(scratch) / "soak.db",
            Path(scratch) / "server.log",
            extra_args=["--customer-cache-size", str(CACHE_SIZE)],
        )
        with server:
            api_key = server.api_key("soak")
            with Client(server.target, api_key=api_key, timeout=60) as client:
                create_hierarchy(client)
                offer_ids = create_offers(client, build_offers(args.offers, now=datetime.now(UTC)))
                for body in build_policies(20):
                    client.create_contact_policy(body)
            print(f"soak: {args.clients} clients for {args.duration:g} s against {server.target}", flush=True)
            result = asyncio.run(soak(args, server, api_key, offer_ids))
    growth = float(result["rss_growth_second_half"])
    ok = not result["unexpected"] and growth < MEMORY_GROWTH_LIMIT
    info = machine()
    lines = [
        f"# Arbiter soak, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores. Command: `{' '.join(sys.argv)}`",
        "",
        f"- {result['clients']} concurrent clients for {result['duration_s']:g} s, {result['distinct_customers']:,} "
        f"distinct customers, customer cache {result['customer_cache_size']:,}: {result['calls']:,} calls "
        f"({result['calls_per_s']:.0f}/s)",
        f"- unexpected answers: {result['unexpected'] or 'none'}",
        f"- resident memory: {result['rss_kib_start'] / 1024:.1f} MiB at the start, {result['rss_kib_mid'] / 1024:.1f} "
        f"MiB at half time, {result['rss_kib_end'] / 1024:.1f} MiB at the end: {growth * 100:+.2f}% over the second "
        f"half (limit +{MEMORY_GROWTH_LIMIT * 100:.0f}%)",
        f"- answers: {json.dumps(result['codes'])}",
        f"- verdict: {'PASS' if ok else 'FAIL'}",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "soak-latest.md").write_text(report)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
