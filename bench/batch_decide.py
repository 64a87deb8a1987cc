"""BatchDecide: decisions per second when many customers are decided in one call (outbound and segment runs).

One client on the load core sends BatchDecide calls of `batch` requests, one
call at a time, for `calls` calls: the synthetic tenant's Decide request
(segments, attributes, channel, limit 5) for customers of the tenant, those
with history among them. The figure is decisions answered per second of wall
time; the server's core does nothing else meanwhile. Every answer is
checked to hold one response per request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import grpc

from arbiter.v1 import decisions_pb2, decisions_pb2_grpc
from bench.catalogue import SyntheticTenant, customer_id


@dataclass(frozen=True)
class BatchRun:
    batch: int
    calls: int
    seconds: float

    @property
    def decisions_per_second(self) -> float:
        return self.batch * self.calls / self.seconds


def measure(target: str, tenant: SyntheticTenant, *, batch: int = 1_000, calls: int = 10) -> BatchRun:
    metadata = (("authorization", f"Bearer {tenant.api_key}"),)
    template = tenant.decide_request()
    requests = []
    for i in range(batch):
        request = decisions_pb2.DecideRequest()
        request.CopyFrom(template)
        request.customer_id = customer_id(i % max(tenant.customers, 1))
        requests.append(request)
    message = decisions_pb2.BatchDecideRequest(requests=requests)
    with grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]) as channel:
        decide = decisions_pb2_grpc.DecisionServiceStub(channel).BatchDecide
        decide(message, metadata=metadata, timeout=120)  # warm the customers' histories and the channel
        started = time.perf_counter()
        for _ in range(calls):
            answer = decide(message, metadata=metadata, timeout=120)
            if len(answer.responses) != batch:
                raise RuntimeError(f"BatchDecide answered {len(answer.responses)} of {batch} requests")
        seconds = time.perf_counter() - started
    return BatchRun(batch, calls, seconds)
