"""The background side as Prometheus gauges, read when /metrics is scraped (registered in ShoktiConfig.ready).

The same facts as /health?deep=1, for alert rules and dashboards (ops/prometheus/alerts.yml):
- `shokti_workers_alive{queue}`: Celery worker processes consuming each required queue (heartbeats in the cache);
- `shokti_beat_last_tick_age_seconds`: since beat last published a task (-1: never seen);
- `shokti_jobs_oldest_queued_age_seconds`: how long the oldest due queued ledger job has waited (0: none waits).
A gauge whose source cannot be read (Redis away, the database away) is left out of the scrape, and the
alert rules treat an absent series as a failure (`absent(...)`).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from engage.ledger.selectors import jobs_oldest_due_age_seconds
from shokti.liveness import beat_last_tick_age, workers_alive, workers_per_queue


def background_gauges() -> Iterator[Metric]:
    workers = GaugeMetricFamily(
        "shokti_workers_alive", "Celery worker processes alive per queue (heartbeat within 3 beats).", labels=["queue"]
    )
    for queue, alive in sorted(workers_per_queue(workers_alive()).items()):
        workers.add_metric([queue], alive)
    yield workers
    age = beat_last_tick_age()
    yield GaugeMetricFamily(
        "shokti_beat_last_tick_age_seconds", "Seconds since beat last published a task (-1: never seen).",
        value=-1 if age is None else age,
    )
    oldest = jobs_oldest_due_age_seconds()
    yield GaugeMetricFamily(
        "shokti_jobs_oldest_queued_age_seconds", "How long the oldest due queued ledger job has waited (0: none).",
        value=oldest or 0,
    )
