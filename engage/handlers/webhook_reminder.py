"""webhook_reminder (50): POST a signed JSON event to the company's webhook URL."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import requests
from django.conf import settings

from engage.handlers import JobPermanentError, job_handler


def webhook_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">`, what receivers recompute to trust a delivery."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


@job_handler("webhook_reminder", priority=50)
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
