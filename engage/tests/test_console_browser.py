"""The operations console in Debian's Chromium, as the people who use it, at laptop and phone width
(390 px): ops answer a waiting customer from the inbox and move two leads on the board; a marketer
launches a campaign from its page and watches the run finish. No list action, no raw JSON. Each step
is screenshotted to test-results/, and the main pages pass axe-core with no serious or critical violation.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from crm.models import Lead, Membership, Stage
from crm.permissions import CRM_GRANTS, MARKETING, OPERATIONS, grant
from crm.tests.factories import LeadFactory, StaffUserFactory
from engage.ledger.services import job_execute
from engage.messaging.models import Message
from engage.models import Campaign, CampaignRun, Job
from shokti.testing.accessibility import axe_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pass-word-123"  # crm.tests.factories.UserFactory's
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results"
WIDTHS = {"laptop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
ENGAGE_OPERATIONS = ["view_job", "change_job", "view_message", "view_sequence", "view_enrollment"]
ENGAGE_MARKETING = ["view_campaign", "change_campaign", "view_campaignrun", "change_campaignrun",
                    "view_campaignrecipient", "view_engagementpolicy"]


def person(company, email: str, group_name: str, engage_codenames: list[str]):
    # a transactional test's flush empties the groups (the migrations' grants are gone): grant again
    grant(group_name, "crm", CRM_GRANTS[group_name]["crm"])
    grant(group_name, "engage", engage_codenames)
    user = StaffUserFactory(email=email, full_name=email.split("@")[0].capitalize())
    user.groups.add(Group.objects.get(name=group_name))
    Membership.objects.create(user=user, company=company, role=group_name.lower())
    return user


def log_in(browser, live_server, user, size: str, next_url: str):
    page = browser.new_context(viewport=WIDTHS[size]).new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}{reverse('admin:login')}?next={next_url}")
    page.fill("#id_username", user.email)
    page.fill("#id_password", PASSWORD)
    page.click("#login-form [type=submit]")
    page.wait_for_url(re.compile(re.escape(next_url)))
    return page


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"console-{name}.png"), full_page=True)


def fits_the_width(page) -> None:
    """Nothing wider than the viewport: the page never scrolls sideways (the board's columns scroll inside it)."""
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"] + 1, f"{width}px wide at {page.viewport_size['width']}px"


@pytest.mark.parametrize("size", ["laptop", "phone"])
def test_ops_answer_a_waiting_customer_and_move_two_leads_on_the_board(browser, live_server, company, size):
    # given: a customer asked for a person; two more leads sit in the first stage
    ops = person(company, "rahima@alpha.test", OPERATIONS, ENGAGE_OPERATIONS)
    waiting = LeadFactory(company=company, contact__name="Karim", handoff_requested_at=timezone.now(),
                          is_ai_paused=True)
    Message.objects.create(company=company, contact=waiting.contact, lead=waiting, direction="inbound",
                           channel=waiting.channel, body="আমি একজন মানুষের সাথে কথা বলতে চাই", status="received")
    movers = [LeadFactory(company=company, pipeline=waiting.pipeline, contact__name=name) for name in ("Mina", "Rafi")]
    first, second = Stage.objects.filter(pipeline=waiting.pipeline).order_by("order")[:2]

    # when: ops open the inbox on "needs a human" and the conversation
    inbox = reverse("admin:crm_lead_inbox")
    page = log_in(browser, live_server, ops, size, inbox)
    page.goto(f"{live_server.url}{inbox}#view=needs_human")
    page.get_by_role("link", name=re.compile("Karim")).click()
    expect(page.locator("#thread-state")).to_have_text("Waiting for a person: the customer asked for a human")
    expect(page.locator("#thread-messages")).to_contain_text("আমি একজন মানুষের সাথে কথা বলতে চাই")
    fits_the_width(page)
    assert axe_violations(page, include="#content") == []
    shot(page, f"{size}-1-inbox-thread")

    # ... take it over and reply: the reply shows at once, queued, then sent without a reload
    page.click("#take-over")
    expect(page.locator("#thread-state")).to_have_text("Rahima has this conversation")
    page.fill("#reply-body", "আমি রহিমা, এখনই ফোন করছি।")
    page.click("#thread-reply [type=submit]")
    pending = page.locator("#thread-messages li.is-pending")
    expect(pending).to_contain_text("আমি রহিমা, এখনই ফোন করছি।")
    expect(pending).to_contain_text("Queued")
    [job] = Job.objects.filter(task_name="manual_reply")
    assert job_execute(job_id=job.pk, worker="test") == "completed"
    sent = page.locator("#thread-messages li.outbound").last
    expect(sent).to_contain_text("Replied by Rahima (ops)", timeout=15_000)
    expect(sent).to_contain_text("Sent")
    shot(page, f"{size}-2-inbox-replied")

    # ... and on the board move two leads to the next stage (drag on a laptop, the card's menu on a phone)
    page.goto(f"{live_server.url}{reverse('admin:crm_lead_board')}?pipeline={waiting.pipeline_id}")
    column = page.locator(f'.board-column[data-stage-id="{second.pk}"]')
    for lead in movers:
        card = page.locator(f"#card-{lead.pk}")
        if size == "laptop":
            card.drag_to(column)
        else:
            card.locator("select.card-move").select_option(str(second.pk))
        expect(column.locator(f"#card-{lead.pk}")).to_be_visible()
    expect(column.locator(".stage-count")).to_have_text("2")
    expect(page.locator(f'.board-column[data-stage-id="{first.pk}"] .stage-count')).to_have_text("1")
    fits_the_width(page)
    assert axe_violations(page, include="#content") == []
    shot(page, f"{size}-3-board")

    # then: the leads moved through the stage service, and the lead page fits the width too
    assert set(Lead.objects.filter(pk__in=[lead.pk for lead in movers]).values_list("stage_id", flat=True)) == {
        second.pk}
    page.goto(f"{live_server.url}{reverse('admin:crm_lead_change', args=[waiting.pk])}")
    expect(page.locator("#ai-state")).to_have_text("Rahima has this conversation")
    fits_the_width(page)
    shot(page, f"{size}-4-lead-page")


@pytest.mark.parametrize("size", ["laptop", "phone"])
def test_a_marketer_launches_a_campaign_and_watches_it_finish(browser, live_server, company, size):
    from engage.prompts.services import templates_seed_defaults
    from engage.tests.campaign_helpers import customer_due
    from engage.tests.test_campaign_admin import preset_update

    marketer = person(company, "tanvir@alpha.test", MARKETING, ENGAGE_MARKETING)
    templates_seed_defaults(company=company)
    preset_update(company, send_window_start_hour=0, send_window_end_hour=24)
    campaign = Campaign.objects.create(company=company, name="Win-back", channel="console", promo_code="SAVE15")
    for number in range(3):
        customer_due(company, name=f"Customer {number}")

    # when: the marketer opens the campaign: the estimate, then "Run now" (it asks first)
    change = reverse("admin:engage_campaign_change", args=[campaign.pk])
    page = log_in(browser, live_server, marketer, size, change)
    expect(page.locator("#estimate-eligible")).to_have_text("3")
    assert axe_violations(page, include="#campaign-panel") == []
    shot(page, f"{size}-5-campaign")
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#run-now")
    page.wait_for_url(re.compile(r"/campaignrun/\d+/change/"))
    expect(page.locator("#run-status")).to_have_text("Queued")

    # the worker runs it (here: this process); the page follows without a reload by hand
    run = CampaignRun.objects.get(campaign=campaign)
    assert job_execute(job_id=run.job_id, worker="test") == "completed"
    for job in Job.objects.filter(task_name="smartengage_send", status="queued"):
        job_execute(job_id=job.pk, worker="test")
    expect(page.locator("#run-status")).to_have_text("Completed", timeout=20_000)
    expect(page.locator("#run-sent")).to_have_text("3")
    assert page.locator("#run-bar").get_attribute("aria-valuenow") == "100"
    expect(page.locator("#funnel-chart")).to_contain_text("sent")
    fits_the_width(page)
    assert axe_violations(page, include="#run-panel") == []
    shot(page, f"{size}-6-run-finished")


def test_the_accessibility_pass_finds_what_it_should(page):
    page.set_content('<html lang="en"><body><main><img src="data:,"><button></button></main></body></html>')

    found = axe_violations(page)

    assert any(line.startswith("critical: image-alt") for line in found)
    assert any("button-name" in line for line in found)


def test_the_template_studio_fits_a_phone(browser, live_server, company):
    from engage.prompts.models import PromptTemplate
    from engage.prompts.services import templates_seed_defaults

    marketer = person(company, "mina@alpha.test", MARKETING, [
        *ENGAGE_MARKETING, "view_prompttemplate", "change_prompttemplate", "add_prompttemplateversion",
        "publish_prompttemplate", "view_prompttemplateversion",
    ])
    templates_seed_defaults(company=company)
    template = PromptTemplate.objects.filter(company=company).order_by("id").first()
    studio = reverse("admin:engage_prompttemplate_studio", args=[template.pk])

    page = log_in(browser, live_server, marketer, "phone", studio)

    expect(page.locator(".CodeMirror")).to_be_visible()
    fits_the_width(page)
    shot(page, "phone-7-studio")


def sidebar_links(user) -> list[tuple[str, str]]:
    """(title, URL) of every sidebar entry `user` is shown (shokti.console's navigation)."""
    from django.test import RequestFactory

    from shokti.console import sidebar_navigation

    request = RequestFactory().get("/admin/")
    request.user = user
    return [(str(item["title"]), item["link"]) for group in sidebar_navigation(request) for item in group["items"]]


@pytest.mark.parametrize("size", ["laptop", "phone"])
def test_an_admin_walks_every_page_of_the_sidebar_opens_the_settings_and_replays_a_dead_job(
    browser, live_server, company, size
):
    from engage.policy.services import policy_get_or_create

    # given: the company's owner, a superuser; a job that ended in the dead-letter queue
    admin_user = StaffUserFactory(email="shirin@alpha.test", full_name="Shirin", is_superuser=True)
    Membership.objects.create(user=admin_user, company=company, role=Membership.Role.OWNER)
    policy = policy_get_or_create(company=company)
    dead = Job.objects.create(company=company, task_name="webhook_reminder", idempotency_key="dead-1",
                              status=Job.Status.DEAD, attempts=5, last_error="provider said no")
    LeadFactory(company=company, contact__name="Karim")
    links = sidebar_links(admin_user)
    assert len(links) >= 40  # the admin sees every entry (CoachNova's too)

    page = log_in(browser, live_server, admin_user, size, reverse("admin:index"))
    problems: list[str] = []
    page.on("console", lambda message: problems.append(f"console {message.type}: {message.text}")
            if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    shot(page, f"{size}-8-admin-home")

    # when: the admin opens every entry of the sidebar (at laptop width; what a page answers and the browser's
    # errors do not change with the width, so the phone pass opens the first few and checks the settings fit)
    for title, link in links if size == "laptop" else links[:6]:
        response = page.goto(f"{live_server.url}{link}")
        assert response.status == 200, (title, link, response.status)
        assert page.locator(f'#nav-sidebar-inner a[href="{link}"]').count() >= 1, title
    assert problems == []

    # ... the settings: policy, AI, channels, API keys, users, each form opens without a browser error
    settings_pages = {
        "policy": reverse("admin:engage_engagementpolicy_change", args=[policy.pk]),
        "ai": reverse("admin:engage_aiconfig_add"),
        "channels": reverse("admin:channels_app_channelaccount_add"),
        "api-keys": reverse("admin:crm_apikey_add"),
        "users": reverse("admin:crm_user_change", args=[admin_user.pk]),
    }
    for name, link in settings_pages.items():
        response = page.goto(f"{live_server.url}{link}")
        assert response.status == 200, (name, response.status)
        expect(page.locator("#content form, form#changelist-form, main form").first).to_be_visible()
        fits_the_width(page)
        shot(page, f"{size}-9-settings-{name}")
    assert problems == []

    # ... and replays the dead job from its page (it asks first)
    page.goto(f"{live_server.url}{reverse('admin:engage_job_change', args=[dead.pk])}")
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#job-replay")
    expect(page.get_by_text("Replayed 1 job(s).")).to_be_visible()
    fits_the_width(page)
    shot(page, f"{size}-10-job-replayed")

    # then: the job is queued again from a fresh attempt count, and nothing went wrong in the browser
    dead.refresh_from_db()
    assert (dead.status, dead.attempts) == (Job.Status.QUEUED, 0)
    assert problems == []
