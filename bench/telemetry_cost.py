"""What the metrics add per call, measured in process (a measurement, not a test).

Two figures, each the best of five runs:

- the gRPC call wrapper that counts and times every method
  (transport/grpc/call_metrics.py), around a behaviour that does nothing;
- the decisioning metrics of one Decide on the core alone (in-memory stores,
  200 offers), with the Prometheus telemetry against none.

Over gRPC a Decide costs the server hundreds of microseconds, so these say
how much of the metrics-cost scenario's difference the instruments can explain.

    .venv/bin/python bench/telemetry_cost.py
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from arbiter.server.app.core import Core
from arbiter.server.app.ports import NO_TELEMETRY, Telemetry
from arbiter.server.domain.access import Principal, Role
from arbiter.server.domain.decisions import SERVER_TIME, DecisionRequest
from arbiter.server.domain.errors import Decoded
from arbiter.server.domain.offers import Offer, OfferStatus, Qualification
from arbiter.server.domain.timekeeping import ManualClock
from arbiter.server.storage.memory.backend import memory_stores
from arbiter.server.transport.grpc.call_metrics import _MethodMetrics, _single
from arbiter.server.transport.metrics import Metrics

RUNS = 5


class _Context:
    def code(self) -> None:
        return None


async def _nothing(request: Any, context: Any) -> Any:
    return request


async def wrapper_us(calls: int = 200_000) -> tuple[float, float]:
    """Microseconds per call of a bare behaviour and of the same behaviour measured."""
    measured = _single(_nothing, _MethodMetrics(Metrics(), "/bench.Service/Nothing", "unary"))
    context = _Context()
    best = {"bare": 1e9, "measured": 1e9}
    for _ in range(RUNS):
        for label, behaviour in (("bare", _nothing), ("measured", measured)):
            started = time.perf_counter()
            for _ in range(calls):
                await behaviour(1, context)
            best[label] = min(best[label], (time.perf_counter() - started) / calls * 1e6)
    return best["bare"], best["measured"]


async def decide_us(telemetry: Telemetry, decisions: int = 3_000) -> float:
    """Microseconds per Decide on the core alone, with `telemetry`."""
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    stores, _ = memory_stores(clock)
    core = Core.start(stores, clock, telemetry=telemetry)
    admin = Principal("bench", Role.ADMIN)
    for i in range(200):
        qualification = Qualification(
            propensity_threshold=0.4 if i % 3 else None, required_segments=("a",) if i % 5 == 0 else ()
        )
        await core.offers.create(
            admin, Decoded(Offer(name=f"offer {i}", status=OfferStatus.ACTIVE, qualification=qualification))
        )
    request = Decoded(DecisionRequest(customer_id="c-1", decision_us=SERVER_TIME))
    for _ in range(300):  # warm the memos
        await core.decisions.decide(admin, request)
    best = 1e9
    for _ in range(RUNS):
        started = time.perf_counter()
        for _ in range(decisions):
            await core.decisions.decide(admin, request)
        best = min(best, (time.perf_counter() - started) / decisions * 1e6)
    return best


async def main() -> None:
    bare, measured = await wrapper_us()
    print(f"gRPC call wrapper: {measured - bare:.2f} us a call ({bare:.2f} bare, {measured:.2f} measured)")
    without = await decide_us(NO_TELEMETRY)
    with_metrics = await decide_us(Metrics())
    print(
        f"decisioning metrics: {with_metrics - without:.2f} us a Decide "
        f"({without:.1f} without, {with_metrics:.1f} with; core only, 200 offers)"
    )


if __name__ == "__main__":
    asyncio.run(main())
