"""Burnout's demo: two overworked workers of the home-services demo company, so the console shows an alert and a
watch after seed_demo; seeding again adds nothing."""

import datetime as dt

import pytest
from django.utils import timezone

from crm.models import Booking, Customer
from crm.tests.factories import CompanyFactory, CustomerFactory, ServiceFactory
from engage.models import Job
from reports.burnout.demo import burnout_demo_seed
from reports.burnout.models import BurnoutAlert
from reports.burnout.selectors import open_alert_count
from reports.tests.helpers import worker_of

pytestmark = pytest.mark.django_db


def test_the_demo_shows_an_alert_and_a_watch_and_is_idempotent():
    company = CompanyFactory(name="Sheba Home Services (demo)", slug="sheba-demo")
    ServiceFactory(company=company, category="Cleaning")
    for days_ago in range(5):
        CustomerFactory(company=company, last_booking_at=timezone.now() - dt.timedelta(days=days_ago + 40))
    first = worker_of(company, name="Jamal Uddin", phone="+8801911000501", zone="Mirpur")
    second = worker_of(company, name="Shirin Akter", phone="+8801911000502", zone="Gulshan")

    lines = burnout_demo_seed(seed=7)
    bookings = Booking.objects.count()
    again = burnout_demo_seed(seed=7)

    levels = dict(BurnoutAlert.objects.values_list("worker_id", "level"))
    assert levels == {first.pk: "alert", second.pk: "watch"}
    assert open_alert_count(company) == 2 and Booking.objects.count() == bookings and lines == again
    assert lines[0] == "Burnout alerts: 2 unresolved on Sheba Home Services (demo)"
    alert = BurnoutAlert.objects.get(worker=first)
    assert "days without a day off" in alert.summary and "late-night jobs" in alert.summary
    assert alert.zone == "Mirpur"
    assert not Job.objects.exists()  # no email job: the demo's managers have demo addresses
    # crm's invariant holds: a customer's last booking is the finish of their latest completed booking
    for customer in Customer.objects.all():
        latest = customer.bookings.filter(status="completed").order_by("-finished_at").first()
        assert customer.last_booking_at == (latest.finished_at if latest else customer.last_booking_at)
        assert latest is None or customer.last_booking_at > timezone.now() - dt.timedelta(days=10)


def test_no_demo_company_no_demo():
    assert burnout_demo_seed(seed=7) == []
