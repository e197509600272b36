"""A newcomer's first walk through the demo, in Chromium, on `make run`'s stack (shokti/testing/embedded.py:
SQLite, the filesystem broker, the real worker and beat, the seeded story).

A marketer edits and publishes the reminder in the studio; the admin opens the send window around the
clock (so the result does not depend on the hour), runs "SmartEngage daily" for real and sees reminders
sent and the campaign's funnel; ops replay the dead job and see its message sent. Screenshots of each
step go to test-results/.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from shokti.testing.embedded import ADMIN_PASSWORD, EmbeddedStack

pytestmark = [pytest.mark.slow, pytest.mark.browser]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results"
NEW_REMINDER = (
    "গ্রাহক {{ customer_name }}-কে ছোট একটি বাংলা রিমাইন্ডার লেখো: {{ service_name_bn }} আবার বুক করার সময় হয়েছে।"
    " বুকিং লিংকের জায়গায় হুবহু {{ deep_link }} লেখো।"
)
WORK_SECONDS = 60  # the worker picks a job up from the filesystem broker within a second or two


def logged_in(browser: Browser, stack: EmbeddedStack, email: str) -> Page:
    page = browser.new_context(base_url=stack.base_url, viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(20_000)
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", email)
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("#login-form [type=submit]")
    expect(page.locator("#console-welcome")).to_contain_text("Welcome")
    return page


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"newcomer-{name}.png"), full_page=True)


def test_a_newcomer_publishes_a_reminder_runs_a_campaign_and_replays_a_dead_job(browser, embedded_stack):
    stack = embedded_stack
    # the landing page: where the console, the API docs and health are, and what to look at first
    landing = browser.new_context(base_url=stack.base_url).new_page()
    landing.goto("/")
    expect(landing.get_by_role("heading", name="The demo: what to look at first")).to_be_visible()
    shot(landing, "0-landing")
    landing.get_by_role("link", name=re.compile("Operations console")).click()
    expect(landing.locator("#id_username")).to_be_visible()
    assert landing.evaluate("fetch('/favicon.ico').then(response => response.status)") == 200

    welcome = logged_in(browser, stack, "marketing@shokti.local")
    expect(welcome.locator("#console-welcome")).to_contain_text("Welcome, Tanvir")  # a real name, not "Demo"
    shot(welcome, "1-console")

    # the marketer: Prompt templates → the home company's reminder → the studio; edit, save, publish
    marketer = welcome
    marketer.goto("/admin/engage/prompttemplate/?q=reminder")
    row = marketer.locator("#result_list tbody tr").filter(has_text="Sheba Home Services").filter(
        has=marketer.get_by_role("link", name="reminder", exact=True)
    )
    row.get_by_role("link", name="Open the studio").click()
    expect(marketer.locator("#live-version")).to_have_text("v1")
    marketer.evaluate("text => document.querySelector('.CodeMirror').CodeMirror.setValue(text)", NEW_REMINDER)
    expect(marketer.locator("#studio-lint")).to_have_text("")
    marketer.click("#studio-save")
    # the new version's number: the demo's experiment already wrote one wording beside the live v1
    marketer.wait_for_url(re.compile(r"\?version=\d+&saved=1$"))
    saved = re.search(r"version=(\d+)", marketer.url)[1]
    marketer.on("dialog", lambda dialog: dialog.accept())
    marketer.click(f".studio-publish[data-version='{saved}']")
    marketer.wait_for_url(re.compile(r"published=1$"))
    expect(marketer.locator("#live-version")).to_have_text(f"v{saved}")
    shot(marketer, "2-studio-published")

    # the admin: the default preset's send window around the clock, then "SmartEngage daily" run for real
    admin = logged_in(browser, stack, "admin@shokti.local")
    admin.goto("/admin/engage/engagementpolicy/?q=sheba-demo")
    admin.locator("#result_list tbody tr th a").first.click()
    prefix = admin.locator("input[name^=presets-][name$=-name][value=default]").get_attribute("name")[: -len("-name")]
    admin.fill(f"input[name={prefix}-send_window_start_hour]", "0")
    admin.fill(f"input[name={prefix}-send_window_end_hour]", "24")
    admin.click("[name=_save]")
    expect(admin.get_by_text("was changed successfully")).to_be_visible()

    # the campaign's page: the audience estimate, then "Run now" (it asks first) opens the run's page
    admin.goto("/admin/engage/campaign/?q=SmartEngage+daily")
    admin.get_by_role("link", name="SmartEngage daily", exact=True).first.click()
    expect(admin.locator("#audience-estimate")).to_contain_text("eligible now")
    admin.on("dialog", lambda dialog: dialog.accept())
    admin.click("#run-now")
    admin.wait_for_url(re.compile(r"/campaignrun/\d+/change/"))
    expect(admin.locator("#run-status")).to_have_text("Completed", timeout=WORK_SECONDS * 1000)
    sent = int(admin.locator("#run-sent").inner_text())
    assert sent > 0
    expect(admin.locator(".run-summary")).to_contain_text("sent")
    shot(admin, "3-run-sent")
    run_id = int(re.search(r"/campaignrun/(\d+)/", admin.url).group(1))
    admin.get_by_role("link", name="Back to the campaign").click()
    funnel = admin.locator("table.campaign-funnel td").first
    expect(funnel).to_contain_text("sent")
    assert int(re.search(r"sent\s*(\d+)", funnel.inner_text()).group(1)) >= sent
    shot(admin, "4-campaign-funnel")

    # the reminders were written from the version the marketer published
    with sqlite3.connect(stack.var_dir / "shokti.sqlite3") as database:
        versions = database.execute(
            "SELECT DISTINCT v.number FROM engage_campaignrecipient r"
            " JOIN engage_prompttemplateversion v ON v.id = r.template_version_id"
            " WHERE r.run_id = ? AND r.status = 'sent'", [run_id],
        ).fetchall()
    assert versions == [(int(saved),)]

    # ops: Jobs, the dead one replayed; its message goes out (the console stands in for SMS)
    ops = logged_in(browser, stack, "ops@shokti.local")
    ops.goto("/admin/engage/job/?status__exact=dead")
    expect(ops.locator("#result_list tbody tr")).to_have_count(1)
    expect(ops.locator("#result_list")).to_contain_text("manual_reply")
    ops.locator("#result_list tbody tr a").first.click()
    dead_job = int(re.search(r"/job/(\d+)/change/", ops.url).group(1))
    ops.on("dialog", lambda dialog: dialog.accept())
    ops.click("#job-replay")
    expect(ops.get_by_text("Replayed 1 job(s).")).to_be_visible()
    for _ in range(WORK_SECONDS * 2):
        if "outbound sms (sent)" in ops.content():
            break
        ops.wait_for_timeout(500)
        ops.goto(f"/admin/engage/job/{dead_job}/change/")
    assert "outbound sms (sent)" in ops.content()
    shot(ops, "5-job-replayed")
