"""Workers and their jobs for burnout's tests, in Dhaka time, relative to now."""

import datetime as dt
from zoneinfo import ZoneInfo

from django.utils import timezone

from crm.models import Booking, Membership, Service
from crm.tests.factories import ContactFactory, CustomerFactory, ServiceFactory, StaffUserFactory, WorkerFactory

DHAKA = ZoneInfo("Asia/Dhaka")


def worker_of(company, *, name="Karim Mia", phone="+8801911000101", zone="Mirpur"):
    contact = ContactFactory(company=company, name=name, phone=phone, is_sms_consented=True)
    return WorkerFactory(company=company, contact=contact, zones=[zone])


def job_of(worker, start, minutes=60, *, zone="Mirpur", status="completed", category="Cleaning", **fields):
    company = worker.company
    service = (Service.objects.filter(company=company, category=category).first()
               or ServiceFactory(company=company, category=category))
    end = start + dt.timedelta(minutes=minutes)
    done = status == "completed"
    values = {"started_at": start if done else None, "finished_at": end if done else None,
              "arrived_at": start if done else None, **fields}
    return Booking.objects.create(
        company=company, customer=CustomerFactory(company=company), worker=worker, service=service, status=status,
        scheduled_at=start, zone=zone, **values)


def local_day_at(days_ago: int, hour: int = 9, minute: int = 0) -> dt.datetime:
    day = timezone.now().astimezone(DHAKA).date() - dt.timedelta(days=days_ago)
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=DHAKA)


def overworked(worker, *, hours_a_day: float = 10, days: int = 6, zone="Mirpur"):
    """One long job on each of the `days` days before today (10 h a day for 6 days: 60 h, an alert)."""
    for days_ago in range(1, days + 1):
        job_of(worker, local_day_at(days_ago, 8), int(hours_a_day * 60), zone=zone)


def manager_of(company, *, email, role=Membership.Role.OPERATIONS, groups=("Operations",)):
    user = StaffUserFactory(email=email, groups=list(groups))
    Membership.objects.create(user=user, company=company, role=role)
    return user
