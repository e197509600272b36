"""The template studio in a real browser (Debian's Chromium through pytest-playwright, headless).

A marketer logs in, edits the reminder in CodeMirror, watches the preview follow, saves a draft,
diffs it against v1, publishes it; the next dry-run campaign renders with the published version.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from crm.models import Event, Membership
from crm.permissions import MARKETING, OPERATIONS, grant
from crm.tests.factories import BookingFactory, CustomerFactory, StaffUserFactory
from engage.campaigns.runner import campaign_run_execute
from engage.campaigns.runs import campaign_run_trigger
from engage.models import Campaign, PromptTemplate
from engage.policy.services import policy_get_or_create
from engage.prompts.services import templates_seed_defaults

PASSWORD = "pass-word-123"  # crm.tests.factories.UserFactory's
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results"
MODEL_TEXT = "প্রিয় ফাতিমা, আবার বুক করার সময় হয়েছে: [BOOKING_LINK]"


def groups_ensure() -> None:
    """The grants of migrations 0003/0008/0011: a transactional test's flush empties the groups."""
    grant(MARKETING, "engage", ["view_prompttemplate", "view_prompttemplateversion", "change_prompttemplate",
                                "add_prompttemplateversion", "publish_prompttemplate"])
    grant(OPERATIONS, "engage", ["view_prompttemplate", "view_prompttemplateversion"])


@pytest.fixture
def studio_world(company):
    groups_ensure()
    templates_seed_defaults(company=company)
    policy = policy_get_or_create(company=company)
    policy.presets.filter(name="default").update(send_window_start_hour=0, send_window_end_hour=24)
    cache.clear()
    customer = CustomerFactory(company=company, contact__name="ফাতিমা")
    booking = BookingFactory(company=company, customer=customer,
                             scheduled_at=timezone.now() - dt.timedelta(days=22, hours=2))
    customer.last_booking_at = booking.finished_at
    customer.save(update_fields=["last_booking_at"])
    marketer = StaffUserFactory(email="mina@alpha.test", groups=[MARKETING])
    Membership.objects.create(user=marketer, company=company, role=Membership.Role.MARKETING)
    yield {
        "template": PromptTemplate.objects.get(company=company, name="reminder"),
        "customer": customer,
        "marketer": marketer,
        "campaign": Campaign.objects.create(company=company, name="Daily reminders", channel="console"),
    }
    cache.clear()


def log_in(page, live_server, *, email: str, next_url: str) -> None:
    page.goto(f"{live_server.url}{reverse('admin:login')}?next={next_url}")
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("#login-form [type=submit]")
    page.wait_for_url(re.compile(re.escape(next_url)))


def type_in_editor(page, text: str) -> None:
    page.click(".CodeMirror")
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.type(text)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_marketer_edits_previews_saves_diffs_and_publishes_and_the_campaign_uses_it(
    page, live_server, studio_world, fake_openai
):
    template, customer = studio_world["template"], studio_world["customer"]
    studio_url = reverse("admin:engage_prompttemplate_studio", args=[template.pk])
    page.set_default_timeout(15_000)
    # given: the marketer in the studio of the reminder (v1 approved)
    log_in(page, live_server, email="mina@alpha.test", next_url=studio_url)
    expect(page.locator("#live-version")).to_have_text("v1")
    expect(page.locator(".CodeMirror")).to_be_visible()
    expect(page.locator(".CodeMirror .cm-variable").first).to_be_visible()  # Jinja2 highlighting

    # the preview is for a real customer, picked by name
    page.fill("#studio-subject-search", "ফাতি")
    expect(page.locator("#studio-subject")).to_have_value(str(customer.pk))
    expect(page.locator("#studio-rendered")).to_contain_text("গ্রাহকের নাম: ফাতিমা")

    # an unknown variable is flagged as you type, and the preview says why it cannot render
    type_in_editor(page, "নতুন বার্তা {{ customer_name }} {{ salary }}")
    expect(page.locator("#studio-lint")).to_have_text(re.compile(r"^Unknown variable\(s\): salary\."))
    expect(page.locator(".studio-unknown-variable")).to_have_text("salary")
    expect(page.locator("#studio-preview-error")).to_contain_text("Unknown variable(s): salary.")

    # when: the body is fixed, and a variable inserted with one click
    type_in_editor(page, "নতুন বার্তা {{ customer_name }}, আপনার সার্ভিসের সময় হয়েছে। ")
    page.click(".studio-insert[data-variable=deep_link]")
    # then: the preview follows
    expect(page.locator("#studio-lint")).to_have_text("")
    expect(page.locator("#studio-rendered")).to_have_text(
        "নতুন বার্তা ফাতিমা, আপনার সার্ভিসের সময় হয়েছে। [BOOKING_LINK]"
    )
    # the prompt itself is never judged: no sample, no verdict
    expect(page.locator("#studio-channels tr[data-channel=email] td").nth(3)).to_have_text("no sample yet")
    expect(page.locator("#studio-sample-note")).to_contain_text("never the prompt")

    # a typed sample with several problems: every violation is listed, each with what to change
    page.fill("#studio-sample-output", "প্রিয় করিম, শেষ সুযোগ! বিকাশ পিন পাঠান: bit.ly/x [BOOKING_LINK]")
    sms_verdict = page.locator("#studio-channels tr[data-channel=sms] td").nth(3)
    expect(sms_verdict).to_contain_text("rejected (4)")
    reasons = sms_verdict.locator(".studio-reasons li")
    expect(reasons).to_have_count(4)
    expect(reasons.nth(0)).to_have_attribute("data-code", "credential_request")
    expect(reasons.nth(0)).to_contain_text("We never ask customers or workers for a PIN")
    expect(reasons.nth(1)).to_contain_text("Addressed to “করিম”")
    expect(reasons.nth(2).locator(".studio-advice")).to_contain_text("URL shortener")

    # a sample from the model (the local fake OpenAI server) passes
    fake_openai.reply(MODEL_TEXT)
    page.click("#studio-generate")
    expect(page.locator("#studio-generate-note")).to_have_text("A sample from the model.")
    expect(page.locator("#studio-sample-output")).to_have_value(MODEL_TEXT)
    expect(page.locator("#studio-channels tr[data-channel=email] td").nth(3)).to_have_text("passes")

    # save: a new draft, v1 still live
    page.click("#studio-save")
    page.wait_for_url(re.compile(r"\?version=2&saved=1$"))
    expect(page.locator("#editing-version")).to_have_text("v2")
    expect(page.locator("#live-version")).to_have_text("v1")
    expect(page.locator("#studio-subject")).to_have_value(str(customer.pk))  # still previewing for her
    expect(page.locator("#studio-rendered")).to_contain_text("নতুন বার্তা ফাতিমা")
    expect(page.locator("#studio-preview-error")).to_be_hidden()
    assert list(template.versions.order_by("number").values_list("number", "status")) == [(1, "approved"),
                                                                                         (2, "draft")]

    # diff v1 against v2, side by side
    page.click("#studio-diff-show")
    diff = page.locator("#studio-diff-table table.diff")
    expect(diff).to_contain_text("v1 (approved)")
    expect(diff.locator(".diff_add").first).to_contain_text("নতুন")

    # publish (after the confirmation)
    page.on("dialog", lambda dialog: dialog.accept())
    page.click(".studio-publish[data-version='2']")
    page.wait_for_url(re.compile(r"published=1$"))
    expect(page.locator("#live-version")).to_have_text("v2")
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "template-studio.png"), full_page=True)
    assert (SCREENSHOTS / "template-studio.png").stat().st_size > 10_000

    published = template.versions.get(number=2)
    assert (published.status, published.author, published.approved_by) == (
        "approved", studio_world["marketer"], studio_world["marketer"])
    assert Event.objects.get(type="template.published").payload["version"] == 2

    # the next dry-run campaign renders with the published version
    fake_openai.reply(MODEL_TEXT)
    run = campaign_run_trigger(campaign=studio_world["campaign"], is_dry_run=True)
    assert campaign_run_execute(run_id=run.pk)["status"] == "completed"
    (recipient,) = run.recipients.all()
    assert (recipient.customer_id, recipient.status, recipient.template_version_id) == (
        customer.pk, "dry_run", published.pk)
    prompt = fake_openai.last_request["messages"][-1]["content"]
    assert prompt.startswith("নতুন বার্তা ফাতিমা, আপনার সার্ভিসের সময় হয়েছে।")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_operations_sees_the_studio_read_only(page, live_server, studio_world, company):
    groups_ensure()
    operator = StaffUserFactory(email="olga@alpha.test", groups=[OPERATIONS])
    Membership.objects.create(user=operator, company=company, role=Membership.Role.OPERATIONS)
    template = studio_world["template"]
    studio_url = reverse("admin:engage_prompttemplate_studio", args=[template.pk])

    log_in(page, live_server, email="olga@alpha.test", next_url=studio_url)

    expect(page.locator("#read-only-note")).to_be_visible()
    expect(page.locator("#studio-save")).to_have_count(0)
    expect(page.locator(".studio-publish, .studio-rollback")).to_have_count(0)
    page.click(".CodeMirror")
    page.keyboard.type("changed")
    assert "changed" not in page.evaluate("window.studioEditor.getValue()")
