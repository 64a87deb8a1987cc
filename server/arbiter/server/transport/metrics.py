"""Prometheus metrics: the instruments, the core's telemetry through them, and the scrape (transport layer).

Names (README "Metrics and logs"): the grpc-ecosystem names for gRPC
methods (`grpc_server_started_total`, `grpc_server_handled_total`,
`grpc_server_handling_seconds`), `http_requests_total` and
`http_request_duration_seconds` for the REST door, and `arbiter_*` for
decisioning. No label carries a customer id, an offer id or free text. Each
application has a registry of its own, so servers built in one process
(tests) never share counts. Label children are bound once: the hot path
pays a lookup and an increment, never a label resolution.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client import values as prometheus_values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from ..domain.decisions import DropReason
from ..domain.offers import OfferStatus
from ..domain.outcomes import OutcomeType

# The *_created series (a timestamp per counter) only double the scrape here: nothing reads them.
disable_created_metrics()

SCRAPE_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Call latencies on this server run from tens of microseconds to seconds.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
OFFERS_BUCKETS = (0, 1, 2, 3, 4, 5, 10, 20, 50)
DECIDE_STAGES = ("load", "funnel", "record")
COUNTED_DROPS: list[DropReason] = [r for r in DropReason if r not in (DropReason.NONE, DropReason.RANKED_BELOW_LIMIT)]


def drop_word(reason: DropReason) -> str:
    """The label value of a drop reason: the proto enum's word in lowercase ("recency")."""
    return reason.name.lower()


class OffersByStatus(Collector):
    """`arbiter_catalog_offers{tenant, status}`, counted from the published views at scrape time."""

    def __init__(self, counts: Callable[[], Mapping[tuple[str, OfferStatus], int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily("arbiter_catalog_offers", "Offers in the catalogue", labels=["tenant", "status"])
        for (tenant, status), count in sorted(self._counts().items(), key=lambda item: (item[0][0], item[0][1].value)):
            family.add_metric([tenant, status.value], count)
        yield family


class Metrics:
    """Every instrument of one server, in a registry of its own; also the core's Telemetry.

    With `shared_dir` (the workers of one server: prometheus-client's multiprocess mode, which
    the supervisor turned on before forking) every worker's counts are kept in files there, and a
    scrape, whichever worker answers it, adds up every worker's, including those of workers that
    have since died (counts only grow)."""

    def __init__(self, shared_dir: str = "") -> None:
        self.registry = CollectorRegistry()
        self._scraped = self.registry
        if shared_dir:
            self._scraped = CollectorRegistry()
            MultiProcessCollector(self._scraped, path=shared_dir)
        r = self.registry
        grpc_labels = ["grpc_service", "grpc_method", "grpc_type"]
        self.grpc_started = Counter("grpc_server_started", "RPCs started on the server", grpc_labels, registry=r)
        self.grpc_handled = Counter(
            "grpc_server_handled",
            "RPCs completed on the server, by status code",
            [*grpc_labels, "grpc_code"],
            registry=r,
        )
        self.grpc_seconds = Histogram(
            "grpc_server_handling_seconds",
            "Time from the start of an RPC to its answer",
            grpc_labels,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.http_requests = Counter(
            "http_requests",
            "HTTP requests answered, by route template and status",
            ["method", "route", "code"],
            registry=r,
        )
        self.http_seconds = Histogram(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.decisions = Counter("arbiter_decisions", "Decisions answered", registry=r)
        self.offers_returned = Histogram(
            "arbiter_decision_offers_returned", "Offers returned per decision", buckets=OFFERS_BUCKETS, registry=r
        )
        self.dropped = Counter(
            "arbiter_offers_dropped", "Offers dropped by the funnel, by step", ["reason"], registry=r
        )
        self.outcomes = Counter("arbiter_outcomes", "Outcomes durably recorded, by type", ["type"], registry=r)
        self.stage_seconds = Histogram(
            "arbiter_decide_stage_seconds",
            "Time of each stage of Decide",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.writer_batch_size = Histogram(
            "arbiter_writer_batch_size", "Jobs per committed write batch", buckets=BATCH_BUCKETS, registry=r
        )
        self.writer_commit_seconds = Histogram(
            "arbiter_writer_commit_seconds",
            "Time to run and commit a write batch",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.rebuild_seconds = Histogram(
            "arbiter_catalog_rebuild_seconds",
            "Time to rebuild (or patch) a tenant's view",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.cache_hits = Counter(
            "arbiter_customer_cache_hits", "Customer histories found in memory (or known empty)", registry=r
        )
        self.cache_misses = Counter(
            "arbiter_customer_cache_misses", "Customer histories that had to be loaded", registry=r
        )
        # Children bound once, and every series present from the start (at 0), so rates work from the
        # first scrape and the dashboard's queries always find their series.
        self._drops: dict[DropReason, Counter] = {
            reason: self.dropped.labels(drop_word(reason)) for reason in COUNTED_DROPS
        }
        self._outcomes = {t: self.outcomes.labels(t.name.lower()) for t in OutcomeType}
        self._stages = {stage: self.stage_seconds.labels(stage) for stage in DECIDE_STAGES}

    def count_offers(self, offers_by_status: Callable[[], Mapping[tuple[str, OfferStatus], int]]) -> None:
        """Report `arbiter_catalog_offers` from this source at every scrape (once the core exists)."""
        collector = OffersByStatus(offers_by_status)
        self.registry.register(collector)
        if self._scraped is not self.registry:
            self._scraped.register(collector)  # every worker's views hold the same catalogue

    def scrape(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self._scraped)

    # -- the core's Telemetry ---------------------------------------------------------

    def decision(self, offers_returned: int, dropped: Mapping[DropReason, int]) -> None:
        self.decisions.inc()
        self.offers_returned.observe(offers_returned)
        for reason, count in dropped.items():
            child = self._drops.get(reason)
            if child is not None:
                child.inc(count)

    def decide_stage(self, stage: str, seconds: float) -> None:
        self._stages[stage].observe(seconds)

    def outcomes_recorded(self, types: Sequence[OutcomeType]) -> None:
        for outcome_type in types:
            self._outcomes[outcome_type].inc()

    def writer_batch(self, size: int, commit_seconds: float) -> None:
        self.writer_batch_size.observe(size)
        self.writer_commit_seconds.observe(commit_seconds)

    def catalog_rebuild(self, seconds: float) -> None:
        self.rebuild_seconds.observe(seconds)

    def customer_cache(self, hit: bool) -> None:
        (self.cache_hits if hit else self.cache_misses).inc()


def count_in_files(folder: str) -> None:
    """prometheus-client's multiprocess mode: instruments created from now on count in files in `folder`.

    The mode is chosen when prometheus-client is imported, which has happened by the time a server
    knows it will have workers; asking again with the folder set switches it for what is created
    next (the workers' instruments, after the fork). `Metrics(shared_dir=folder)` adds them up."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    prometheus_values.ValueClass = prometheus_values.get_value_class()


def metric_names(metrics: Metrics) -> set[str]:
    """Every series name a scrape can show (with the _total, _bucket, _sum, _count suffixes; one process)."""
    names: set[str] = set()
    for family in metrics.registry.collect():
        names.update(sample.name for sample in family.samples)
        names.add(family.name)
    return names
