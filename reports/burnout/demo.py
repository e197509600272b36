"""Burnout's demo (run by `manage.py seed_demo` after CoachNova's): two of the home-services company's workers get
a hard fortnight of extra jobs (long days, late nights, back-to-back jobs), then the evaluation runs, so the console
shows an alert and a watch (not emailed: the demo's managers have demo addresses). Idempotent: the extra bookings
carry external ids, and an open alert is not reopened."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from coaching.punctuality import company_zone
from crm.models import Booking, Company, Customer, Service, Worker
from reports.burnout.models import BurnoutAlert
from reports.burnout.services import burnout_evaluate

DEMO_COMPANY_SLUG = "sheba-demo"  # crm.demo.HOME_SERVICES_SLUG
# (days in a row, [(local start hour, minute, minutes)]) per overworked worker
PLANS = [
    (9, [(8, 0, 180), (11, 20, 200), (15, 0, 150), (20, 30, 150)]),  # ~11 h a day, a late night: an alert
    (8, [(9, 0, 240), (14, 0, 240)]),  # 8 h a day for 8 days: 48 h in the last 7 and no day off: a watch
]


def burnout_demo_seed(*, seed: int) -> list[str]:
    company = Company.objects.filter(slug=DEMO_COMPANY_SLUG).first()
    if company is None:
        return []
    workers = list(Worker.objects.filter(company=company, is_active=True).select_related("contact").order_by("pk")[:2])
    # the customers who booked most lately: nobody a campaign would remind today is touched
    customers = list(Customer.objects.filter(company=company, last_booking_at__isnull=False)
                     .order_by("-last_booking_at", "pk")[:40])
    service = Service.objects.filter(company=company, is_active=True).order_by("pk").first()
    if len(workers) < len(PLANS) or not customers or service is None:
        return []
    zone = company_zone(company)
    today = timezone.now().astimezone(zone).date()
    rows = []
    for worker, (days, slots) in zip(workers, PLANS, strict=True):
        area = (worker.zones or [""])[0]
        for days_ago in range(1, days + 1):
            day = today - dt.timedelta(days=days_ago)
            for index, (hour, minute, minutes) in enumerate(slots):
                start = dt.datetime.combine(day, dt.time(hour, minute), zone)
                rows.append(Booking(
                    company=company, worker=worker, service=service, status=Booking.Status.COMPLETED,
                    customer=customers[(days_ago * len(slots) + index + seed) % len(customers)],
                    scheduled_at=start, arrived_at=start, started_at=start,
                    finished_at=start + dt.timedelta(minutes=minutes), zone=area, price=service.base_price,
                    external_id=f"burnout-demo-{worker.pk}-{day.isoformat()}-{index}", created_at=start,
                ))
    with transaction.atomic():
        existing = set(Booking.objects.filter(company=company, external_id__startswith="burnout-demo-")
                       .values_list("external_id", flat=True))
        created = Booking.objects.bulk_create([row for row in rows if row.external_id not in existing])
        for booking in created:  # keep crm's invariant: the finish of the customer's last completed booking
            Customer.objects.filter(pk=booking.customer_id).update(
                last_booking_at=Greatest(Coalesce("last_booking_at", booking.finished_at), booking.finished_at))
    burnout_evaluate(company=company, notify=False)  # demo managers have demo addresses: no email
    alerts = BurnoutAlert.objects.filter(company=company).exclude(status=BurnoutAlert.Status.RESOLVED)
    lines = [f"Burnout alerts: {alerts.count()} unresolved on {company.name}"]
    lines += [f"  {alert.get_level_display()}: {alert.worker.contact.name}: {alert.summary}"
              for alert in alerts.select_related("worker__contact").order_by("pk")]
    return lines
