"""The executor's Prometheus metrics, each executor in a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ExecutorMetrics"]

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class ExecutorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.queue_depth = Gauge(
            "captioning_queue_depth", "Pictures decoded and waiting for a batch", registry=r
        )
        self.in_flight = Gauge("captioning_in_flight", "Pictures accepted and not yet answered", registry=r)
        self.bytes_in_flight = Gauge(
            "captioning_download_bytes_in_flight", "Picture bytes downloaded and not yet decoded", registry=r
        )
        self.batch_ceiling = Gauge("captioning_batch_ceiling", "Largest batch now allowed", registry=r)
        self.ready = Gauge("captioning_ready", "1 once the models are loaded and warmed up", registry=r)
        self.batch_size = Histogram(
            "captioning_batch_size", "Pictures per forward pass", buckets=BATCH_BUCKETS, registry=r
        )
        self.batch_seconds = Histogram(
            "captioning_batch_seconds",
            "Time to caption and translate one batch",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.latency = Histogram(
            "captioning_request_seconds",
            "From a picture's arrival to its description",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "captioning_errors", "Pictures not described, by reason", ["reason"], registry=r
        )

    def observe_batch(self, size: int, seconds: float) -> None:
        """One forward pass of ``size`` pictures took ``seconds``."""
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)
