"""The burnout alert flow in a real browser (Debian's Chromium, headless), on a laptop (1280 px) and a phone
(390 px): Operations open the alerts (by zone and service), one alert, acknowledge it, record an action and resolve
it with the outcome. Every step is screenshotted to test-results/."""

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from playwright.sync_api import expect

from crm.models import Event, Membership
from crm.permissions import CRM_GRANTS, OPERATIONS, grant
from crm.tests.factories import StaffUserFactory
from reports.burnout.models import BurnoutAlert
from reports.burnout.services import burnout_evaluate
from reports.tests.helpers import overworked, worker_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pass-word-123"  # crm.tests.factories.UserFactory's
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results"
WIDTHS = {"laptop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


def operations_person(company):
    # a transactional test's flush empties the groups (the migrations' grants are gone): grant again
    grant(OPERATIONS, "crm", CRM_GRANTS[OPERATIONS]["crm"])
    grant(OPERATIONS, "reports", ["view_burnoutalert", "change_burnoutalert", "view_burnoutsettings"])
    user = StaffUserFactory(email="rahima@alpha.test", full_name="Rahima")
    user.groups.add(Group.objects.get(name=OPERATIONS))
    Membership.objects.create(user=user, company=company, role=Membership.Role.OPERATIONS)
    return user


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"burnout-{name}.png"), full_page=True)
    assert (SCREENSHOTS / f"burnout-{name}.png").stat().st_size > 10_000


def fits_the_width(page) -> None:
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"] + 1, f"{width}px wide at {page.viewport_size['width']}px"


@pytest.mark.parametrize("size", ["laptop", "phone"])
def test_operations_acknowledge_act_on_and_resolve_an_alert(browser, live_server, company, size):
    # given: an overworked worker in Mirpur with an open alert
    ops = operations_person(company)
    worker = worker_of(company, name="Karim Mia")
    overworked(worker, zone="Mirpur")
    burnout_evaluate(company=company)
    alert = BurnoutAlert.objects.get()

    # when: ops open the alerts: the teams first
    alerts_url = reverse("admin:reports_burnoutalert_changelist")
    page = browser.new_context(viewport=WIDTHS[size]).new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}{reverse('admin:login')}?next={alerts_url}")
    page.fill("#id_username", ops.email)
    page.fill("#id_password", PASSWORD)
    page.click("#login-form [type=submit]")
    page.wait_for_url(re.compile(re.escape(alerts_url)))
    segments = page.locator("#burnout-segments")
    expect(segments).to_contain_text("Mirpur")
    expect(segments).to_contain_text("Cleaning")
    shot(page, f"{size}-1-by-segment")

    # ... then the worker's alert, explained in numbers
    page.goto(f"{live_server.url}{reverse('admin:reports_burnoutalert_change', args=[alert.pk])}")
    expect(page.locator("#alert-summary")).to_have_text("60 h in the last 7 days (threshold 55 h)")
    expect(page.locator("#alert-status")).to_have_text("(Open)")
    fits_the_width(page)
    shot(page, f"{size}-2-open")

    # ... acknowledge it
    page.click("#alert-acknowledge")
    expect(page.locator("#alert-status")).to_have_text("(Acknowledged)")
    expect(page.locator("#alert-acknowledge")).to_have_count(0)
    shot(page, f"{size}-3-acknowledged")

    # ... record what was done
    page.select_option("#alert-action-choice", "day_off")
    page.fill("#alert-action-note", "Friday and Saturday off, two jobs a day next week")
    page.click("#alert-act")
    expect(page.locator("#alert-status")).to_have_text("(Acted on)")
    expect(page.locator("#alert-action")).to_contain_text("Day off given: Friday and Saturday off")
    shot(page, f"{size}-4-acted")

    # ... and resolve it with the outcome
    page.select_option("#alert-outcome-choice", "recovered")
    page.fill("#alert-outcome-note", "42 h the week after")
    page.click("#alert-resolve")
    expect(page.locator("#alert-status")).to_have_text("(Resolved)")
    expect(page.locator("#alert-outcome")).to_contain_text("Workload back to normal: 42 h the week after")
    expect(page.locator("#alert-resolve")).to_have_count(0)
    fits_the_width(page)
    shot(page, f"{size}-5-resolved")

    # then: the outcome is kept and the worker's timeline tells who looked and what was done
    alert.refresh_from_db()
    assert (alert.status, alert.action, alert.outcome, alert.resolved_by) == ("resolved", "day_off", "recovered", ops)
    types = list(Event.objects.filter(contact=worker.contact, type__contains="burnout").order_by("pk")
                 .values_list("type", flat=True))
    assert types[0] == "worker.burnout_alert" and "burnout.viewed" in types
    assert [kind for kind in types if kind not in ("burnout.viewed",)][1:] == [
        "burnout.acknowledged", "burnout.acted", "burnout.resolved"]
