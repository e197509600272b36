"""webhook_reminder (50): POST a signed JSON event to the company's webhook URL.

A company with a `webhook_url` receives WEBHOOK_EVENT_TYPES as they are recorded: crm's
`event_record`/`events_record` call `webhook_events_enqueue` (registered in EngageConfig.ready)
inside the recording transaction, so each event gets exactly one ledger job, keyed `webhook:<event id>`,
retried with backoff by the ledger. The inbound hot path writes its events in one SQL statement
and queues the same jobs in it (engage.conversations.inbound); the data is `webhook_event_data`'s either way.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any

import requests
from django.conf import settings

from engage.ledger.registry import IO_QUEUE, JobPermanentError, job_handler
from engage.ledger.services import job_enqueue

WEBHOOK_TASK = "webhook_reminder"
# What a company's webhook receives: new leads, stage moves (won and lost included: the payload's
# `status`), every inbound message (integrators mirror conversations; the seed feeds its CRM from
# them), opt-outs (an integrator must stop messaging the person too), and the bookings feed's
# changes made here (a booking completed, a customer created or changed: crm.feed.services), and a new burnout
# alert on a worker (reports.burnout: the numbers behind it, so the company's own tools can act on it).
WEBHOOK_EVENT_TYPES = frozenset(
    {"lead.created", "stage.changed", "message.received", "opt_out", "opt_in", "booking.completed", "customer.updated",
     "worker.burnout_alert"}
)


WEBHOOK_KEY_PREFIX = "webhook:"


def webhook_idempotency_key(*, event_id: int) -> str:
    return f"{WEBHOOK_KEY_PREFIX}{event_id}"


def webhook_event_data(*, event) -> dict[str, Any]:
    """The `data` of an event's delivery: its payload plus the event id, its contact and when it happened."""
    return {
        **event.payload,
        "event_id": event.pk,
        "contact_id": event.contact_id,
        "occurred_at": webhook_time(event.occurred_at),
    }


def webhook_time(value: datetime) -> str:
    """Times in deliveries: ISO 8601 in UTC, whatever zone the caller's datetime was in."""
    return value.astimezone(UTC).isoformat()


def webhook_events_enqueue(*, events) -> None:
    """crm's event-recorded hook: one `webhook_reminder` job per deliverable event of a company with a URL.

    Reads only what the events hold: nothing is queried for a company without a URL.
    """
    for event in events:
        if event.type not in WEBHOOK_EVENT_TYPES or not event.company.webhook_url:
            continue
        job_enqueue(
            company=event.company,
            task_name=WEBHOOK_TASK,
            payload={"event": event.type, "data": webhook_event_data(event=event)},
            idempotency_key=webhook_idempotency_key(event_id=event.pk),
        )


def webhook_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">`, what receivers recompute to trust a delivery."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


@job_handler(WEBHOOK_TASK, priority=50, queue=IO_QUEUE)
def webhook_reminder(job) -> dict[str, Any]:
    company = job.company
    if company is None or not company.webhook_url:
        raise JobPermanentError("The company has no webhook URL configured.")
    if not company.webhook_secret:
        raise JobPermanentError("The company has no webhook secret: deliveries could not be verified.")
    event = {
        "id": job.idempotency_key,
        "type": job.payload.get("event", "reminder"),
        "company_id": company.pk,
        "data": job.payload.get("data", {}),
        "created_at": job.created_at.isoformat(),
    }
    body = json.dumps(event, separators=(",", ":"), sort_keys=True, default=str).encode()
    timestamp = str(int(time.time()))
    response = requests.post(
        company.webhook_url,
        data=body,
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Shokti-Webhook/1",
            "X-Shokti-Event-Id": job.idempotency_key,
            "X-Shokti-Timestamp": timestamp,
            "X-Shokti-Signature": webhook_signature(secret=company.webhook_secret, timestamp=timestamp, body=body),
        },
        timeout=getattr(settings, "WEBHOOK_TIMEOUT_SECONDS", 10),
        allow_redirects=False,
    )
    if not 200 <= response.status_code < 300:
        # Any non-2xx is retried with backoff; the receiver may be down or deploying.
        raise RuntimeError(f"Webhook answered HTTP {response.status_code}: {response.text[:300]}")
    return {"status_code": response.status_code}
