"""The dashboard in Debian's Chromium at laptop and phone width (390 px): the owner opens the console's home, sees
the cards with drawn charts and no sideways scroll, and opens the engagement breakdown by channel with its table
and CSV link. Screenshots in test-results/."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from playwright.sync_api import expect

from crm.models import Membership
from crm.permissions import CRM_GRANTS, OPERATIONS, grant
from crm.tests.factories import CompanyFactory, StaffUserFactory
from engage.tests.test_console_browser import ENGAGE_OPERATIONS, PASSWORD, SCREENSHOTS, WIDTHS
from reports.rollups.aggregate import local_today
from reports.rollups.services import rollups_refresh
from reports.tests.seed import seed_company

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def owner():
    company = CompanyFactory(name="Alpha Home Services", slug="alpha")
    seed_company(company=company, days=10, per_day=6,
                 end=dt.datetime.now(dt.UTC).replace(hour=10, minute=0) - dt.timedelta(days=1))
    today = local_today(company)
    rollups_refresh(company=company, first=today - dt.timedelta(days=35), last=today)
    grant(OPERATIONS, "crm", CRM_GRANTS[OPERATIONS]["crm"])
    grant(OPERATIONS, "engage", ENGAGE_OPERATIONS)
    user = StaffUserFactory(email="owner@alpha.test", full_name="Owner")
    user.groups.add(Group.objects.get(name=OPERATIONS))
    Membership.objects.create(user=user, company=company, role=Membership.Role.OWNER)
    return user


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"dashboard-{name}.png"), full_page=True)


@pytest.mark.parametrize("size", ["laptop", "phone"])
def test_the_home_dashboard_and_a_breakdown(browser, live_server, owner, size):
    page = browser.new_context(viewport=WIDTHS[size]).new_page()
    page.set_default_timeout(15_000)
    home = reverse("admin:index")
    page.goto(f"{live_server.url}{reverse('admin:login')}?next={home}")
    page.fill("#id_username", owner.email)
    page.fill("#id_password", PASSWORD)
    page.click("#login-form [type=submit]")
    page.wait_for_url(re.compile(re.escape(home)))
    # the home: its waiting counts, then the dashboard's five cards with drawn charts
    expect(page.locator("#console-welcome")).to_be_visible()
    page.click("#reports-filters button[value='30d']")
    expect(page.locator("#reports-dashboard")).to_have_attribute("data-charts", "ready")
    for card in ("engagement", "ai", "leads", "workers", "operations"):
        expect(page.locator(f"#card-{card}")).to_be_visible()
        expect(page.locator(f"#card-{card} .data-as-of")).to_contain_text("Data as of")
    drawn = page.evaluate("() => Chart.getChart('chart2-engagement').data.datasets.map(d => d.data.reduce((a, b) => a + b, 0))")
    assert drawn[0] > 0  # the sent series has the seeded messages
    sent = page.locator("#card-engagement tr[data-metric='sent'] td.value").inner_text()
    assert int(sent) == drawn[0]
    assert page.evaluate("() => document.querySelector('#reports-dashboard').scrollWidth") <= WIDTHS[size]["width"]
    shot(page, f"home-{size}")
    # a breakdown: engagement by channel, its chart, the table under it and the CSV link
    page.click("#card-engagement a.breakdown-link:text('channel')")
    expect(page.locator("#reports-breakdown")).to_have_attribute("data-charts", "ready")
    rows = page.locator("#breakdown-table tbody tr")
    assert rows.count() >= 2
    expect(page.locator("#breakdown-table")).to_contain_text("whatsapp")
    assert "breakdown.csv" in page.locator("#breakdown-csv").get_attribute("href")
    assert page.evaluate("() => document.querySelector('#reports-breakdown').scrollWidth") <= WIDTHS[size]["width"]
    shot(page, f"breakdown-{size}")
    page.context.close()
