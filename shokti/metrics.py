"""Prometheus metrics: the business counters (the one place others import them from) and GET /metrics.

Multiprocess mode: when PROMETHEUS_MULTIPROC_DIR is set in the environment *before* Python
starts (web workers, Celery worker processes), every process writes its values to files in
that folder and /metrics sums them. `make run` wipes the folder at start; /metrics marks processes that
no longer exist as dead (their live gauges stop counting; counters keep their sum), and so does a Celery
child as it exits (shokti/celery.py). Without the variable, the values live in this process.

Usage: `from shokti.metrics import ai_messages_sent_total`, then
`ai_messages_sent_total.labels(agent_type=..., channel=..., message_type=..., status=...).inc()`,
or `count("ai_messages_sent_total", agent_type=..., ...)` where a metric must never break the caller.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import prometheus_client
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import Counter, multiprocess
from prometheus_client.metrics_core import Metric

logger = logging.getLogger(__name__)

# prometheus_client adds the `_total` suffix of a counter itself; the Python names carry it
# so that code reads like the series it writes.
ai_messages_sent_total = Counter(
    "ai_messages_sent",
    "AI-generated messages handed to a channel, by outcome of the hand-over.",
    ["agent_type", "channel", "message_type", "status"],
)
ai_messages_delivered_total = Counter(
    "ai_messages_delivered",
    "AI-generated messages the provider reported delivered.",
    ["agent_type", "channel"],
)
ai_messages_failed_total = Counter(
    "ai_messages_failed",
    "AI-generated messages that failed to send or deliver.",
    ["agent_type", "channel", "reason"],
)
user_events_total = Counter(
    "user_events",
    "Events users caused after a message (notification_opened, message_clicked, deeplink_followed, booking_created ...).",
    ["event_type", "agent_type", "channel", "source"],
)
opt_outs_total = Counter(
    "opt_outs",
    "Contacts who withdrew consent for a channel.",
    ["channel", "reason"],
)
ai_generations_total = Counter(
    "ai_generations",
    "AI generations by outcome: ok (the model's text used), error (call failed), fallback (no call made), "
    "rejected (the safety filter refused the model's text); all but ok sent the approved fallback.",
    ["agent_type", "outcome"],
)
jobs_processed_total = Counter(
    "jobs_processed",
    "Job-ledger jobs run by a worker, by task and outcome (succeeded, retried, dead, skipped).",
    ["task", "outcome"],
)
campaign_recipients_skipped_total = Counter(
    "campaign_recipients_skipped",
    "Campaign recipients left out, by reason (no_consent, capped, outside_window, ...).",
    ["reason"],
)

# Degraded operation: what the project did instead of failing (see docs/api-and-observability.md).
cache_unavailable_total = Counter(
    "cache_unavailable",
    "Cache operations answered as a miss because Redis was unreachable (shokti.cache).",
    ["operation"],
)
throttle_fail_open_total = Counter(
    "throttle_fail_open",
    "Requests let through unthrottled because the throttle could not reach Redis.",
    ["scope"],
)

BUSINESS_COUNTERS = (
    ai_messages_sent_total,
    ai_messages_delivered_total,
    ai_messages_failed_total,
    ai_generations_total,
    user_events_total,
    opt_outs_total,
    jobs_processed_total,
    campaign_recipients_skipped_total,
)

# Gauges read at scrape time (workers alive, beat, the oldest queued job): functions that return
# prometheus_client metric families, registered by the wiring layer (ShoktiConfig.ready). They are
# computed by the process answering /metrics, so they are the same whichever process is scraped.
_scrape_collectors: list[Callable[[], Iterable[Metric]]] = []


def scrape_collector_register(collector: Callable[[], Iterable[Metric]]) -> None:
    if collector not in _scrape_collectors:
        _scrape_collectors.append(collector)


class _ScrapeCollectors:
    def collect(self) -> Iterable[Metric]:
        for collector in _scrape_collectors:
            try:
                yield from collector()
            except Exception:  # a gauge that cannot be read is left out; the counters still export
                logger.exception("scrape collector %s failed", getattr(collector, "__name__", collector))


def count(counter_name: str, amount: float = 1, **labels: str) -> None:
    """Increment one of the business counters above by name; a metric never breaks the caller (logged)."""
    try:
        counter = globals().get(counter_name)
        if isinstance(counter, Counter):
            counter.labels(**labels).inc(amount)
    except Exception:  # pragma: no cover - metrics are best effort
        logger.exception("metric %s not counted", counter_name)
def counter_seed(counter: Counter, label_sets: Iterable[Mapping[str, str]]) -> int:
    """Make each labelled series exist at 0 (no increment), so /metrics shows it from start-up.

    A labelled counter has no series until its first `inc()`, and a dashboard or alert on it says
    "no data" instead of 0. Apps call this from their AppConfig.ready() with the label values they
    know (channels, agent types, task names ...). Returns how many series were seeded.
    """
    seeded = 0
    for labels in label_sets:
        counter.labels(**labels)
        seeded += 1
    return seeded


def kernel_counters_seed() -> None:
    """The kernel's own degraded-operation counters (ShoktiConfig.ready)."""
    operations = ("get", "set", "add", "touch", "delete", "get_many", "has_key", "set_many", "delete_many")
    counter_seed(cache_unavailable_total, ({"operation": operation} for operation in operations))
    counter_seed(throttle_fail_open_total, ({"scope": scope} for scope in ("anon", "user", "api_key")))


def is_multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def registry_for_export() -> prometheus_client.CollectorRegistry:
    """The registry /metrics renders: the sum over every process's files in multiprocess mode."""
    if is_multiprocess():
        _mark_dead_processes(os.environ["PROMETHEUS_MULTIPROC_DIR"])
        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return prometheus_client.REGISTRY


def _mark_dead_processes(folder: str) -> None:
    """Drop the live-gauge files of processes that are gone (a web worker restarted, a Celery child recycled)."""
    pids = set()
    for path in Path(folder).glob("gauge_live*_*.db"):
        pid = path.stem.rsplit("_", 1)[1]
        if pid.isdigit():
            pids.add(int(pid))
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, folder)
        except PermissionError:  # alive, another user's
            pass


@never_cache
@require_GET
def export(request):
    scraped = prometheus_client.CollectorRegistry(auto_describe=False)
    scraped.register(_ScrapeCollectors())
    body = prometheus_client.generate_latest(registry_for_export()) + prometheus_client.generate_latest(scraped)
    return HttpResponse(body, content_type=prometheus_client.CONTENT_TYPE_LATEST)
