"""The worker's page in a real browser (Debian's Chromium through pytest-playwright, headless): operations staff
read the punctuality table and the trend chart, the coaching with the worker's reply, and accept the reason."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from coaching.models import BookingPunctuality, CoachingRecipient, CoachingRun
from coaching.punctuality import local_today, punctuality_backfill
from coaching.tests.helpers import DHAKA, booking_of, worker_of
from crm.models import Membership
from crm.permissions import OPERATIONS, grant
from crm.tests.factories import StaffUserFactory

PASSWORD = "pass-word-123"  # crm.tests.factories.UserFactory's


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_operations_read_the_trend_and_accept_a_workers_reason(page, live_server, company):
    grant(OPERATIONS, "crm", ["view_worker", "change_worker"])
    grant(OPERATIONS, "coaching", ["view_coachingrun", "view_coachingrecipient", "change_coachingrecipient"])
    staff = StaffUserFactory(email="olga@alpha.test", groups=[OPERATIONS])
    Membership.objects.create(user=staff, company=company, role=Membership.Role.OPERATIONS)
    worker = worker_of(company, name="Karim Mia", phone="+8801911000981")
    today = local_today(company)
    late = []
    for days_ago in range(1, 40, 3):
        day = today - dt.timedelta(days=days_ago)
        booking = booking_of(worker, dt.datetime(day.year, day.month, day.day, 10, tzinfo=DHAKA),
                             late_minutes=30 if days_ago < 10 else 0)
        if days_ago < 10:
            late.append(booking.pk)
    punctuality_backfill(company=company)
    run = CoachingRun.objects.create(company=company, as_of=today, status="completed")
    CoachingRecipient.objects.create(run=run, company=company, worker=worker, status="coached", booking_ids=late,
                                     text="করিম ভাই, আপনার কাজের জন্য ধন্যবাদ।", reply_text="রাস্তায় জ্যাম ছিল",
                                     reply_reason="traffic")
    url = reverse("admin:crm_worker_change", args=[worker.pk])
    page.set_default_timeout(15_000)

    page.goto(f"{live_server.url}{reverse('admin:login')}?next={url}")
    page.fill("#id_username", "olga@alpha.test")
    page.fill("#id_password", PASSWORD)
    page.click("#login-form [type=submit]")
    page.wait_for_url(re.compile(re.escape(url)))

    expect(page.locator("#punctuality-14")).to_contain_text("Last 14 days")
    expect(page.locator("#punctuality-chart circle")).not_to_have_count(0)
    expect(page.locator("#worker-coaching")).to_contain_text("রাস্তায় জ্যাম ছিল")
    expect(page.locator("#worker-coaching")).to_contain_text("Traffic")
    page.get_by_role("button", name=re.compile(r"Accept the reason")).click()
    expect(page.get_by_text(f"{len(late)} booking(s) excused")).to_be_visible()  # the admin message
    expect(page.locator("#worker-coaching")).to_contain_text("Accepted")
    assert BookingPunctuality.objects.filter(worker=worker, is_excused=True).count() == len(late)
    expect(page.locator("#punctuality-14")).to_contain_text("0")
