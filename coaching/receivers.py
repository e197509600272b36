"""What coaching hears from the apps below it: crm's recorded events (a completed booking refreshes its worker's
punctuality through a ledger job) and engage's inbound messages (a worker's reply to coaching)."""

from __future__ import annotations

import hashlib
from collections import defaultdict

from coaching.replies import coaching_reply_claim
from crm.models import Company
from crm.services import event_recorded_hook_register
from engage.api import inbound_claim_hook_register, job_enqueue

BOOKING_COMPLETED = "booking.completed"  # crm.feed.services.BOOKING_COMPLETED


def booking_completed_hook(*, events) -> None:
    """In the recording transaction: one `coaching_punctuality_bookings` job per company for its completed bookings."""
    by_company: dict[int, list[int]] = defaultdict(list)
    for event in events:
        if event.type == BOOKING_COMPLETED and event.payload.get("worker_id"):
            booking_id = event.payload.get("booking_id")
            if booking_id is not None:
                by_company[event.company_id].append(int(booking_id))
    for company_id, booking_ids in by_company.items():
        finished = ",".join(sorted(str(event.payload.get("finished_at")) for event in events))
        digest = hashlib.sha256(f"{sorted(booking_ids)}|{finished}".encode()).hexdigest()[:32]
        job_enqueue(company=Company(pk=company_id), task_name="coaching_punctuality_bookings",
                    payload={"booking_ids": booking_ids}, idempotency_key=f"coaching_punctuality_bookings:{digest}")


def coaching_hooks_connect() -> None:
    event_recorded_hook_register(booking_completed_hook)
    inbound_claim_hook_register(coaching_reply_claim)
