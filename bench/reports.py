"""The dashboard at scale, scaled down: the backfill, a rollup tick and every card's p95, on a year of one company's
data at a fraction of the issue's 1M customers / 10M bookings / 1M messages, extrapolated (said so in the notes).

    .venv/bin/python bench/reports.py                       # fill (once) and measure, write docs/benchmarks.md
    BENCH_REPORTS_SCALE=0.05 .venv/bin/python bench/reports.py

Own database (`shokti_bench_reports` by default, created and migrated if missing), filled once with `bulk_create`
over 365 days: SCALE x 1M outbound messages (3 channels, 12 template versions, 10 campaigns over 5 service
categories), an open for 60% and a click for 20% of them, SCALE x 1M leads' worth of AI sessions, SCALE x 10M
bookings each with its punctuality row (5 zones, 5 categories), SCALE x 1M customers and leads.

Figures:
- backfill (`manage.py reports_backfill`'s function) over the year, extrapolated two ways that bracket the full
  size: linearly by 1/SCALE (pessimistic: the sparse year writes a rollup row for every ~4 raw rows) and from the
  full-density 3-day refresh x 365/3 (optimistic: no slowdown from bigger tables);
- one tick (`rollups_refresh_recent`: the last 3 local days) on a second company filled with 3 days at the full
  size's density (27,397 bookings and 2,740 messages a day with their events): measured, not extrapolated; and the
  same on the scaled-down year;
- card p95: each of the 5 cards x 4 periods, cache cleared before each read (cold), 5 reads each. Cards read the
  rollups, whose size depends on days x segment values, not on raw rows: the filled year has the full-scale
  segment cardinality, so the p95 is the full-scale figure (operations reads the live ledger: an empty one here).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import statistics
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/shokti_bench_reports"
SCALE = float(os.environ.get("BENCH_REPORTS_SCALE", "0.02"))
FULL = {"messages": 1_000_000, "bookings": 10_000_000, "customers": 1_000_000}
SLUG = "bench-reports"
DAYS = 365


def setup() -> None:
    os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shokti.settings")
    sys.path.insert(0, str(BASE_DIR))
    from bench.run_all import database_prepare

    database_prepare()


def fill(*, slug: str = SLUG, days: int = DAYS, messages_n: int | None = None, bookings_n: int | None = None,
         customers_n: int | None = None) -> tuple:
    from coaching.models import BookingPunctuality
    from crm.models import Booking, Company, Contact, Customer, Event, Lead, Pipeline, Service, Stage, Worker
    from engage.api import AISession, Campaign, CampaignRecipient, Message
    from engage.campaigns.models import CampaignRun

    company = Company.objects.filter(slug=slug).first()
    if company is not None:
        return company, None
    rng = random.Random(21)
    started = time.perf_counter()
    company = Company.objects.create(name=f"Bench {slug}", slug=slug)
    end = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    n_customers = customers_n if customers_n is not None else int(FULL["customers"] * SCALE)
    n_messages = messages_n if messages_n is not None else int(FULL["messages"] * SCALE)
    n_bookings = bookings_n if bookings_n is not None else int(FULL["bookings"] * SCALE)
    prefix = "9" if slug != SLUG else "1"
    contacts = Contact.objects.bulk_create(
        [Contact(company=company, name=f"C{n}", phone=f"+880{prefix}{n:09d}") for n in range(n_customers)], batch_size=5000)
    customers = Customer.objects.bulk_create(
        [Customer(company=company, contact=contact, last_booking_at=end - dt.timedelta(days=rng.randrange(400)))
         for contact in contacts], batch_size=5000)
    services = [Service.objects.create(company=company, name=f"S{n}", category=f"cat{n % 5}",
                                       base_price=Decimal(1000)) for n in range(5)]
    worker_contacts = Contact.objects.bulk_create(
        [Contact(company=company, name=f"W{n}", phone=f"+880{int(prefix) + 1}{n:09d}") for n in range(max(50, n_customers // 100))])
    workers = Worker.objects.bulk_create([Worker(company=company, contact=contact) for contact in worker_contacts])
    pipeline = Pipeline.objects.create(company=company, name="Sales")
    stages = [Stage.objects.create(pipeline=pipeline, name=name, order=order, kind=kind)
              for order, (name, kind) in enumerate(Pipeline.DEFAULT_STAGES, start=1)]
    campaigns = [Campaign.objects.create(company=company, name=f"K{n}", service=services[n % 5]) for n in range(10)]
    runs = [CampaignRun.objects.create(company=company, campaign=campaign) for campaign in campaigns]
    from engage.prompts.models import PromptTemplateVersion

    versions = list(PromptTemplateVersion.objects.filter(template__company=company).values_list("pk", flat=True)[:12])

    def at_random() -> dt.datetime:
        return end - dt.timedelta(seconds=rng.randrange(days * 86400))

    messages = []
    for _ in range(n_messages):
        at = at_random()
        messages.append(Message(
            company=company, contact=rng.choice(contacts), direction="outbound", channel=rng.choice(
                ("sms", "whatsapp", "email")), agent_type="smartengage", message_type="reminder", body="x",
            status="delivered", created_at=at, sent_at=at, delivered_at=at + dt.timedelta(minutes=2),
            failed_at=None, correlation_id=uuid.uuid4(), template_version_id=rng.choice(versions) if versions else None))
    Message.objects.bulk_create(messages, batch_size=5000)
    by_contact = {customer.contact_id: customer for customer in customers}
    recipients, events = [], []
    for message in messages:
        if rng.random() < 0.5:
            index = rng.randrange(10)
            recipients.append(CampaignRecipient(company=company, campaign=campaigns[index], run=runs[index],
                                                customer=by_contact[message.contact_id], message=message,
                                                status="sent", cycle_started_at=message.created_at))
        if rng.random() < 0.6:
            events.append(Event(company=company, type="notification_opened", contact_id=message.contact_id,
                                correlation_id=message.correlation_id, occurred_at=message.sent_at +
                                dt.timedelta(minutes=10)))
        if rng.random() < 0.2:
            events.append(Event(company=company, type="message_clicked", contact_id=message.contact_id,
                                correlation_id=message.correlation_id, occurred_at=message.sent_at +
                                dt.timedelta(minutes=30)))
            if rng.random() < 0.3:
                events.append(Event(company=company, type="booking_created", contact_id=message.contact_id,
                                    occurred_at=message.sent_at + dt.timedelta(hours=2), payload={"amount": 1500}))
    CampaignRecipient.objects.bulk_create(recipients, batch_size=5000)
    Event.objects.bulk_create(events, batch_size=5000)
    AISession.objects.bulk_create([AISession(
        company=company, agent_type="sales", purpose="reply", outcome=rng.choice(("ok", "ok", "ok", "fallback",
                                                                                  "rejected")),
        latency_ms=rng.randrange(100, 3000), tokens_in=300, tokens_out=80, created_at=at_random(),
        safety={"reasons": [{"code": "banned_phrase"}]}) for _ in range(n_messages // 2)], batch_size=5000)
    Lead.objects.bulk_create([Lead(company=company, contact=rng.choice(contacts), pipeline=pipeline,
                                   stage=rng.choice(stages), source=rng.choice(("ad", "website", "whatsapp")),
                                   channel="whatsapp", created_at=at_random()) for _ in range(n_customers)],
                             batch_size=5000)
    zones = ("Dhanmondi", "Gulshan", "Mirpur", "Uttara", "Banani")
    for offset in range(0, n_bookings, 20000):
        batch = []
        for _ in range(min(20000, n_bookings - offset)):
            batch.append(Booking(company=company, customer=rng.choice(customers), worker=rng.choice(workers),
                                 service=rng.choice(services), status="completed", scheduled_at=at_random(),
                                 zone=rng.choice(zones)))
        Booking.objects.bulk_create(batch, batch_size=5000)
        BookingPunctuality.objects.bulk_create([BookingPunctuality(
            booking=booking, company=company, worker=booking.worker, scheduled_at=booking.scheduled_at,
            local_date=(booking.scheduled_at + dt.timedelta(hours=6)).date(),
            outcome=rng.choice(("on_time", "on_time", "late")), minutes_late=rng.randrange(30)) for booking in batch],
            batch_size=5000)
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    return company, time.perf_counter() - started


def main() -> list[dict]:
    setup()
    from django.core.cache import cache

    from reports import selectors
    from reports.rollups.services import rollups_backfill, rollups_refresh_recent

    company, filled = fill()
    print(f"  filled in {filled:.0f} s" if filled else "  (already filled)", flush=True)
    factor = 1 / SCALE
    started = time.perf_counter()
    rollups_backfill(company=company)
    backfill = time.perf_counter() - started
    started = time.perf_counter()
    rollups_refresh_recent(company=company)
    tick = time.perf_counter() - started
    # A tick at the full scale's density: 3 days of 10M bookings / 1M messages a year, 1M customers' daily leads.
    dense, filled_dense = fill(slug=f"{SLUG}-dense", days=3, messages_n=FULL["messages"] * 3 // 365,
                               bookings_n=FULL["bookings"] * 3 // 365, customers_n=FULL["customers"] * 3 // 365)
    print(f"  dense filled in {filled_dense:.0f} s" if filled_dense else "  (dense already filled)", flush=True)
    rollups_refresh_recent(company=dense)  # warm
    dense_ticks = []
    for _ in range(3):
        started = time.perf_counter()
        rollups_refresh_recent(company=dense)
        dense_ticks.append(time.perf_counter() - started)
    dense_tick = statistics.median(dense_ticks)
    timings = []
    for card in selectors.CARDS:
        for period in selectors.PERIODS:
            for _ in range(5):
                cache.clear()
                started = time.perf_counter()
                selectors.card(company=company, card=card, period=period)
                timings.append((time.perf_counter() - started) * 1000)
    for dimension in selectors.DIMENSIONS["engagement"]:
        for _ in range(3):
            cache.clear()
            started = time.perf_counter()
            selectors.breakdown(company=company, card="engagement", dimension=dimension, period="90d")
            timings.append((time.perf_counter() - started) * 1000)
    p95 = statistics.quantiles(timings, n=20)[18]
    size = (f"{int(FULL['messages'] * SCALE):,} messages, {int(FULL['bookings'] * SCALE):,} bookings, "
            f"{int(FULL['customers'] * SCALE):,} customers over {DAYS} days")
    return [
        {"figure": f"dashboard card p95, cold cache (5 cards x 4 periods + 5 breakdowns; {size})", "value": p95,
         "unit": "ms", "ceiling": 300, "note": "rollup reads: independent of raw row counts"},
        {"figure": "rollup tick at full density (3 days of 10M bookings and 1M messages a year: "
                   f"{FULL['bookings'] * 3 // 365:,} bookings, {FULL['messages'] * 3 // 365:,} messages), median of 3",
         "value": dense_tick, "unit": "s", "ceiling": 5, "note": "measured, not extrapolated"},
        {"figure": f"rollup tick, last 3 local days ({size})", "value": tick, "unit": "s", "ceiling": 5,
         "note": "the same at the scaled-down density"},
        {"figure": f"full backfill of the year ({size})", "value": backfill, "unit": "s", "ceiling": 300 * SCALE,
         "note": f"ceiling 300 s scaled by {SCALE}; linear extrapolation to full size: {backfill * factor:.0f} s,"
                 " pessimistic: at this sparse size a rollup row holds ~4 raw rows, at full size far more"},
        {"figure": "full backfill of a year at full size, extrapolated from the full-density 3-day refresh x 365/3",
         "value": dense_tick * 365 / 3, "unit": "s", "ceiling": 300,
         "note": "optimistic: assumes no slowdown from 120x bigger tables (the reads are index range scans)"},
    ]


if __name__ == "__main__":
    for row in main():
        print(row)
