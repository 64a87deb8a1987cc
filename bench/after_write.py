"""The first Decide after a write: does it pay for the write (a catalogue rebuild), or is it like any other?

One client, one call at a time, on the load core: `rounds` times, change one
offer (its short description, an UpdateOffer with a mask) and time that
call, then time the Decide right after it; then the same number of Decides
with no write before them. The write is acknowledged only once the tenant's
view holds it, so its latency includes publishing the view; the Decide after
it should cost what any Decide costs.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import grpc
from google.protobuf import field_mask_pb2

from arbiter.v1 import decisions_pb2_grpc, offers_pb2, offers_pb2_grpc
from bench import h2load
from bench.catalogue import SyntheticTenant


@dataclass(frozen=True)
class AfterWrite:
    write_ms: list[float]
    decide_after_write_ms: list[float]
    decide_alone_ms: list[float]

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, values in (
            ("write", self.write_ms),
            ("decide_after_write", self.decide_after_write_ms),
            ("decide_alone", self.decide_alone_ms),
        ):
            out[f"{name}_p50_ms"] = h2load.percentile(values, 50)
            out[f"{name}_p99_ms"] = h2load.percentile(values, 99)
        return out


def measure(target: str, tenant: SyntheticTenant, rounds: int) -> AfterWrite:
    metadata = (("authorization", f"Bearer {tenant.api_key}"),)
    request = tenant.decide_request()
    mask = field_mask_pb2.FieldMask(paths=["short_desc"])
    run = uuid.uuid4().hex[:8]  # a text no earlier run wrote: an update that changes nothing is not a write
    writes: list[float] = []
    after: list[float] = []
    alone: list[float] = []
    with grpc.insecure_channel(target) as channel:
        offers = offers_pb2_grpc.OfferServiceStub(channel)
        decisions = decisions_pb2_grpc.DecisionServiceStub(channel)
        for _ in range(20):  # warm the channel and the server's caches
            decisions.Decide(request, metadata=metadata, timeout=10)
        for i in range(rounds):
            offer_id = tenant.offer_ids[i % len(tenant.offer_ids)]
            update = offers_pb2.UpdateOfferRequest(
                offer=offers_pb2.Offer(id=offer_id, short_desc=f"edited {run} {i}"), update_mask=mask
            )
            started = time.perf_counter()
            offers.UpdateOffer(update, metadata=metadata, timeout=30)
            written = time.perf_counter()
            decisions.Decide(request, metadata=metadata, timeout=10)
            done = time.perf_counter()
            writes.append((written - started) * 1000)
            after.append((done - written) * 1000)
        for _ in range(rounds):
            started = time.perf_counter()
            decisions.Decide(request, metadata=metadata, timeout=10)
            alone.append((time.perf_counter() - started) * 1000)
    return AfterWrite(writes, after, alone)
