"""A console import in a real browser (Debian's Chromium through pytest-playwright, headless), with a real
Celery worker: the operator uploads a CSV of bookings, reads the preview with its failing rows, confirms,
and watches the progress bar while the job ledger imports the file in the background."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from playwright.sync_api import expect

from crm.models import Booking, ImportRecord
from crm.permissions import CRM_GRANTS, OPERATIONS, grant
from crm.tests.factories import CustomerFactory, ServiceFactory
from engage.models import Job
from shokti.testing.celery_worker import wait_for

PASSWORD = "pass-word-123"  # crm.tests.factories.UserFactory's
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results"
ROWS = 3000
BAD_LINES = {2 + 100, 2 + 1500, 2 + 2999}


def bookings_file() -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["external_id", "customer_external_id", "service_external_id", "status", "scheduled_at",
                     "finished_at", "rating", "zone"])
    for index in range(ROWS):
        day = dt.datetime(2026, 3, 1, 9, 0) + dt.timedelta(minutes=30 * index)
        rating = "11" if index + 2 in BAD_LINES else "5"
        writer.writerow([f"web-{index}", f"cus-{index % 4}", "svc-1", "completed", day.isoformat(),
                         (day + dt.timedelta(hours=1)).isoformat(), rating, "ধানমন্ডি"])
    return buffer.getvalue().encode()


@pytest.mark.browser
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_an_operator_previews_then_imports_a_large_file_in_the_background(
    page, live_server, company, staff_user, celery_worker_factory, tmp_path
):
    # given operations staff (a transactional test's flush empties the groups the migrations grant),
    # a company with customers and a service, and a worker that imports 500 rows a batch, a batch a slice
    grant(OPERATIONS, "crm", [*CRM_GRANTS[OPERATIONS]["crm"], "view_importrecord"])
    staff_user.groups.add(Group.objects.get(name=OPERATIONS))
    worker = celery_worker_factory(IMPORT_BATCH_ROWS="500", IMPORT_SLICE_SECONDS="0")
    ServiceFactory(company=company, external_id="svc-1", name="Cleaning")
    for index in range(4):
        CustomerFactory(company=company, external_id=f"cus-{index}", contact__phone=f"+88017140{index:05d}")
    path = tmp_path / "march.csv"
    path.write_bytes(bookings_file())
    SCREENSHOTS.mkdir(exist_ok=True)

    # when the operator logs in and opens the import from the bookings list
    changelist = reverse("admin:crm_booking_changelist")
    page.goto(f"{live_server.url}{reverse('admin:login')}?next={changelist}")
    page.fill("#id_username", staff_user.email)
    page.fill("#id_password", PASSWORD)
    page.click("#login-form [type=submit]")
    page.wait_for_url(re.compile(re.escape(changelist)))
    page.click("a.feed-import")
    page.set_input_files("#id_file", str(path))
    page.click("#feed-import-form input[type=submit]")

    # then the preview says what would happen, names the failing lines, and nothing is written yet
    expect(page.locator("#feed-preview-counts .count-created")).to_have_text(str(ROWS - len(BAD_LINES)))
    expect(page.locator("#feed-preview-counts .count-error")).to_have_text(str(len(BAD_LINES)))
    lines = page.locator("#feed-preview-errors tbody tr td:first-child").all_inner_texts()
    assert {int(line) for line in lines} == BAD_LINES
    expect(page.locator("#feed-preview-errors")).to_contain_text("Ensure this value is less than or equal to 5.")
    page.screenshot(path=str(SCREENSHOTS / "feed_import_preview.png"), full_page=True)
    assert not Booking.objects.exists()

    # when the operator confirms
    page.click("#feed-confirm")

    # then the progress bar follows the background import to the end
    expect(page.locator("#feed-progress progress")).to_be_visible()
    record = ImportRecord.objects.get()
    wait_for(lambda: ImportRecord.objects.get().status == "completed", timeout=120,
             message="the import to complete", worker=worker)
    expect(page.locator("#feed-status")).to_have_text("Completed", timeout=15000)
    expect(page.locator("#feed-progress progress")).to_have_attribute("value", "100")
    expect(page.locator(".feed-created")).to_have_text(str(ROWS - len(BAD_LINES)))
    expect(page.locator(".feed-errors-count")).to_have_text(str(len(BAD_LINES)))
    expect(page.locator("#feed-record-errors tbody tr")).to_have_count(len(BAD_LINES))
    page.screenshot(path=str(SCREENSHOTS / "feed_import_done.png"), full_page=True)

    record.refresh_from_db()
    assert (record.created_by, record.processed_rows, record.created_count, record.error_count) == (
        staff_user, ROWS, ROWS - len(BAD_LINES), len(BAD_LINES))
    assert Booking.objects.filter(company=company, zone="ধানমন্ডি").count() == ROWS - len(BAD_LINES)
    slices = Job.objects.filter(task_name="crm_import")
    assert slices.count() >= ROWS // 500  # one slice a batch: the import went on across ledger jobs
    assert set(slices.values_list("status", flat=True)) == {"completed"}
