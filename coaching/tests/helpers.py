"""Workers and bookings for coaching's tests, in Dhaka time."""

import datetime as dt
from zoneinfo import ZoneInfo

from crm.models import Booking, Service
from crm.tests.factories import ContactFactory, CustomerFactory, ServiceFactory, WorkerFactory

DHAKA = ZoneInfo("Asia/Dhaka")


def dhaka(year, month, day, hour=10, minute=0):
    return dt.datetime(year, month, day, hour, minute, tzinfo=DHAKA)


def worker_of(company, *, phone=None, name="Karim Mia", **contact):
    fields = {"company": company, "name": name, "is_sms_consented": True, **contact}
    if phone:
        fields["phone"] = phone
    return WorkerFactory(company=company, contact=ContactFactory(**fields))


def booking_of(worker, scheduled_at, *, late_minutes=0, status="completed", cancelled_by="", arrived=True):
    company = worker.company
    service = Service.objects.filter(company=company).first() or ServiceFactory(company=company)
    return Booking.objects.create(
        company=company, customer=CustomerFactory(company=company), worker=worker, service=service, status=status,
        scheduled_at=scheduled_at, cancelled_by=cancelled_by,
        arrived_at=scheduled_at + dt.timedelta(minutes=late_minutes) if arrived and status != "cancelled" else None,
    )
