"""Console import and export of the CRM graph (crm/feed): preview, background import, round trips, tenancy."""

from __future__ import annotations

import csv
import datetime as dt
import io

import openpyxl
import pytest
from django.urls import reverse

from crm.feed.imports import import_preview, import_record_create, import_record_run
from crm.models import Booking, Contact, Customer, Event, ImportRecord, Lead, Membership, Service, Worker
from crm.tests.factories import (
    BookingFactory,
    CustomerFactory,
    LeadFactory,
    ServiceFactory,
    StaffUserFactory,
    WorkerFactory,
)
from engage.ledger.services import job_execute
from engage.models import Job

pytestmark = pytest.mark.django_db

BOOKING_COLUMNS = ["external_id", "customer_external_id", "service_external_id", "status", "scheduled_at",
                   "finished_at", "rating", "price", "zone"]


def csv_bytes(header: list[str], rows: list[list]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def upload(client, model: str, name: str, data: bytes, **extra):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(reverse(f"admin:crm_{model}_import"), {"file": SimpleUploadedFile(name, data), **extra})


def snapshot(company) -> list:
    return [list(model.objects.filter(company=company).order_by("pk").values()) for model in
            (Booking, Customer, Worker, Service, Contact, Lead)]


@pytest.fixture
def world(company):
    service = ServiceFactory(company=company, name="Deep cleaning", external_id="svc-1")
    customers = [CustomerFactory(company=company, external_id=f"cus-{i}", contact__name=f"গ্রাহক {i}",
                                 contact__phone=f"+88017120{i:05d}") for i in range(10)]
    return {"service": service, "customers": customers}


def bookings_csv(count: int, *, bad_every: int = 0) -> tuple[bytes, set[int]]:
    """`count` bookings; every `bad_every`-th has an impossible rating. Returns the file and its bad lines."""
    rows, bad_lines = [], set()
    for index in range(count):
        rating = "5"
        if bad_every and index % bad_every == bad_every - 1:
            rating = "9"
            bad_lines.add(index + 2)
        day = dt.datetime(2026, 1, 1, 9, 0) + dt.timedelta(hours=index)
        rows.append([f"bk-{index}", f"cus-{index % 10}", "svc-1", "completed", day.isoformat(),
                     (day + dt.timedelta(hours=2)).isoformat(), rating, "1200.50", "Mirpur"])
    return csv_bytes(BOOKING_COLUMNS, rows), bad_lines


# --- preview, then import -----------------------------------------------------------------------------


def test_the_preview_writes_nothing_and_shows_each_failing_row(client, staff_user, company, world):
    client.force_login(staff_user)
    data, bad_lines = bookings_csv(30, bad_every=10)

    response = upload(client, "booking", "bookings.csv", data)

    assert response.status_code == 302, response.content.decode()[:3000]
    record = ImportRecord.objects.get()
    assert (record.company, record.kind, record.total_rows, record.created_by) == (company, "bookings", 30, staff_user)
    page = client.get(response.url)
    html = page.content.decode()
    assert page.status_code == 200
    assert 'class="count-created">27<' in html and 'class="count-error">3<' in html
    for line in bad_lines:
        assert f"<td>{line}</td>" in html
    assert "Ensure this value is less than or equal to 5." in html
    assert not Booking.objects.exists()
    assert not Event.objects.filter(type="booking_created").exists()


def test_a_small_import_runs_at_once_and_is_recorded(client, staff_user, company, world):
    client.force_login(staff_user)
    data, _ = bookings_csv(30, bad_every=10)
    status_url = upload(client, "booking", "bookings.csv", data).url

    response = client.post(status_url, {"confirm": "1"})

    assert response.status_code == 302
    record = ImportRecord.objects.get()
    assert (record.status, record.created_count, record.error_count, record.processed_rows) == ("completed", 27, 3, 30)
    assert [entry["line"] for entry in record.errors] == [11, 21, 31]
    assert record.data == b"" or bytes(record.data) == b""
    assert Booking.objects.filter(company=company).count() == 27
    # Naive times were read in Asia/Dhaka.
    first = Booking.objects.get(external_id="bk-0")
    assert first.scheduled_at == dt.datetime(2026, 1, 1, 3, 0, tzinfo=dt.UTC)
    assert Customer.objects.get(external_id="cus-0").last_booking_at is not None


def test_ten_thousand_rows_with_fifty_bad_report_exactly_those_and_write_the_rest(company, staff_user, world,
                                                                                 django_capture_on_commit_callbacks):
    # given: 10,000 rows, every 200th with a rating of 9
    data, bad_lines = bookings_csv(10000, bad_every=200)
    record = import_record_create(company=company, kind="bookings", file_name="year.csv", data=data, user=staff_user)
    preview = import_preview(import_record=record)
    assert preview.counts == {"created": 9950, "updated": 0, "unchanged": 0, "error": 50}
    assert {entry["line"] for entry in preview.errors} == bad_lines
    assert not Booking.objects.exists()

    # when: confirmed, it goes to the ledger (more than IMPORT_INLINE_MAX_ROWS rows) and the job runs
    from crm.feed.imports import import_record_confirm

    with django_capture_on_commit_callbacks(execute=False):
        record = import_record_confirm(import_record=record, user=staff_user)
    assert record.status == "queued"
    job = Job.objects.get(task_name="crm_import")
    assert job.idempotency_key == f"import:{record.pk}:0"
    assert job_execute(job_id=job.pk) == "completed"

    # then
    record.refresh_from_db()
    assert (record.status, record.processed_rows, record.created_count, record.error_count) == (
        "completed", 10000, 9950, 50)
    assert {entry["line"] for entry in record.errors} == bad_lines
    assert all(entry["errors"] == {"rating": ["Ensure this value is less than or equal to 5."]}
               for entry in record.errors)
    assert Booking.objects.filter(company=company).count() == 9950
    assert not Booking.objects.filter(rating=9).exists()


def test_a_background_import_resumes_from_its_checkpoint(company, staff_user, world, settings):
    settings.IMPORT_BATCH_ROWS = 100
    data, _ = bookings_csv(450)
    record = import_record_create(company=company, kind="bookings", file_name="b.csv", data=data, user=staff_user)
    ImportRecord.objects.filter(pk=record.pk).update(status="running")

    # when: the first slice stops after its first batch (its deadline passed), then a second run goes on
    assert import_record_run(import_record_id=record.pk, deadline=0.0) is False
    record.refresh_from_db()
    assert (record.processed_rows, Booking.objects.count()) == (100, 100)
    assert import_record_run(import_record_id=record.pk) is True

    # then
    record.refresh_from_db()
    assert (record.status, record.processed_rows, record.created_count, Booking.objects.count()) == (
        "completed", 450, 450, 450)
    assert Event.objects.filter(type="booking_created").count() == 450


def test_unreadable_files_are_refused_with_a_clear_error(client, staff_user, company):
    client.force_login(staff_user)

    for name, data, message in [
        ("b.txt", b"x", "A .csv, .xlsx or .jsonl file, please."),
        ("b.csv", "external_id\n".encode(), "The file has no rows."),
        ("b.csv", "name\nকরিম\n".encode("utf-16"), "The CSV file is not UTF-8 text."),
        ("b.xlsx", b"not a workbook", "Not a readable XLSX file"),
    ]:
        response = upload(client, "customer", name, data)
        assert response.status_code == 200
        assert message in response.content.decode()
    assert not ImportRecord.objects.exists()


# --- round trips ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
@pytest.mark.parametrize("model, kind", [("booking", "bookings"), ("customer", "customers"), ("worker", "workers"),
                                         ("service", "services"), ("contact", "contacts"), ("lead", "leads")])
def test_export_then_import_changes_nothing(client, staff_user, company, world, file_format, model, kind):
    # given: data made through the API's rules, Bengali included
    for index in range(3):
        BookingFactory(company=company, customer=world["customers"][index], service=world["service"],
                       external_id=f"bk-{index}", zone="মিরপুর", worker=WorkerFactory(company=company,
                       external_id=f"w-{index}", zones=["মিরপুর", "Gulshan"], contact__name=f"কর্মী {index}"))
    world["customers"][0].typical_services.add(world["service"])
    LeadFactory(company=company, external_id="lead-1", contact=world["customers"][1].contact, summary="চায় এসি সার্ভিস")
    client.force_login(staff_user)
    before = snapshot(company)
    events = Event.objects.count()

    # when: exported, then imported back
    export = client.get(reverse(f"admin:crm_{model}_export"), {"_format": file_format})
    assert export.status_code == 200
    data = b"".join(export.streaming_content) if export.streaming else export.getvalue()
    status_url = upload(client, model, f"{kind}.{file_format}", data).url
    page = client.get(status_url).content.decode()
    client.post(status_url, {"confirm": "1"})

    # then
    record = ImportRecord.objects.get()
    assert 'class="count-unchanged">' in page
    assert (record.status, record.created_count, record.updated_count, record.error_count) == ("completed", 0, 0, 0), \
        record.errors
    assert record.unchanged_count == record.total_rows > 0
    assert snapshot(company) == before
    assert Event.objects.count() == events


def test_the_api_and_a_file_agree_on_a_row(key_client, client, staff_user, company, world):
    row = {"customer_external_id": "cus-1", "service_external_id": "svc-1", "status": "scheduled",
           "scheduled_at": "2026-12-10T10:00:00", "price": "900.00", "zone": "বনানী"}
    created = key_client.put("/api/bookings/by-external-id/bk-api", row, format="json")
    client.force_login(staff_user)
    data = csv_bytes(["external_id", *row], [["bk-api", *row.values()]])

    client.post(upload(client, "booking", "b.csv", data).url, {"confirm": "1"})

    assert created.status_code == 201
    assert ImportRecord.objects.get().unchanged_count == 1


# --- export ---------------------------------------------------------------------------------------


def test_export_keeps_the_lists_filters_and_streams(client, staff_user, company, world):
    BookingFactory(company=company, customer=world["customers"][0], service=world["service"], external_id="done")
    BookingFactory(company=company, customer=world["customers"][1], service=world["service"], external_id="open",
                   status="scheduled", finished_at=None)
    client.force_login(staff_user)

    response = client.get(reverse("admin:crm_booking_export"), {"status__exact": "scheduled", "_format": "csv"})

    assert response.streaming
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert [row["external_id"] for row in rows] == ["open"]
    assert response["Content-Disposition"].startswith('attachment; filename="bookings-')


def test_export_of_customers_keeps_bengali_and_e164(client, staff_user, company, world):
    client.force_login(staff_user)

    response = client.get(reverse("admin:crm_customer_export"), {"_format": "xlsx"})

    sheet = openpyxl.load_workbook(io.BytesIO(response.getvalue())).active
    rows = list(sheet.iter_rows(values_only=True))
    header = rows[0]
    names = {row[header.index("name")] for row in rows[1:]}
    assert "গ্রাহক 3" in names
    assert {row[header.index("phone")] for row in rows[1:]} == {f"+88017120{i:05d}" for i in range(10)}


# --- tenancy: the three people -------------------------------------------------------------------------


def test_bob_sees_neither_alices_imports_nor_her_rows(client, staff_user, other_staff_user, company, other_company,
                                                     world):
    client.force_login(staff_user)
    data, _ = bookings_csv(5)
    status_url = upload(client, "booking", "alice.csv", data).url
    record = ImportRecord.objects.get()
    BookingFactory(company=other_company, external_id="bobs")
    BookingFactory(company=company, customer=world["customers"][0], service=world["service"], external_id="alices")

    client.force_login(other_staff_user)
    assert client.get(status_url).status_code == 404
    assert client.post(status_url, {"confirm": "1"}).status_code == 404
    assert client.get(reverse("admin:crm_booking_import_progress", args=[record.pk])).status_code == 404
    export = client.get(reverse("admin:crm_booking_export"), {"_format": "csv"})
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode("utf-8-sig"))))
    assert [row["external_id"] for row in rows] == ["bobs"]
    # Bob cannot import into Alice's company either.
    response = upload(client, "booking", "x.csv", data, company=company.pk)
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert ImportRecord.objects.count() == 1
    record.refresh_from_db()
    assert record.status == "previewed"
    assert not Booking.objects.filter(external_id__startswith="bk-").exists()


def test_anonymous_is_sent_to_the_login_page(client, company, world):
    for name, args in [("admin:crm_booking_import", []), ("admin:crm_booking_export", []),
                       ("admin:crm_booking_import_status", [1]), ("admin:crm_booking_import_progress", [1])]:
        response = client.get(reverse(name, args=args))
        assert response.status_code == 302 and "/admin/login/" in response.url


def test_marketing_staff_can_export_but_not_import(client, company, world):
    from crm.permissions import MARKETING

    marketer = StaffUserFactory(email="mina@alpha.test", groups=[MARKETING])
    Membership.objects.create(user=marketer, company=company, role=Membership.Role.MARKETING)
    client.force_login(marketer)

    assert client.get(reverse("admin:crm_customer_export"), {"_format": "csv"}).status_code == 200
    assert client.get(reverse("admin:crm_customer_import")).status_code == 403
    assert "feed-import" not in client.get(reverse("admin:crm_customer_changelist")).content.decode()


def test_the_import_list_shows_who_when_and_counts(client, staff_user, company, world):
    client.force_login(staff_user)
    data, _ = bookings_csv(4)
    client.post(upload(client, "booking", "four.csv", data).url, {"confirm": "1"})

    page = client.get(reverse("admin:crm_importrecord_changelist")).content.decode()

    assert "four.csv" in page and "alice@alpha.test" in page and "Completed" in page
