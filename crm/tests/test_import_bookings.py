"""`manage.py import_bookings`: the first load, resumable and idempotent; the COPY path and its portable twin."""

from __future__ import annotations

import csv
import datetime as dt
import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.forms.models import model_to_dict

from crm.feed.services import rows_write
from crm.models import Booking, Customer, Event, ImportRecord
from crm.tests.factories import CustomerFactory, ServiceFactory, WorkerFactory

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ["external_id", "customer_external_id", "worker_external_id", "service_external_id", "status",
           "scheduled_at", "finished_at", "rating", "price", "zone"]


@pytest.fixture
def world(company):
    ServiceFactory(company=company, external_id="svc-1", name="AC servicing")
    WorkerFactory(company=company, external_id="wrk-1")
    for index in range(5):
        CustomerFactory(company=company, external_id=f"cus-{index}", contact__phone=f"+88017130{index:05d}")
    return company


def row(index: int, **overrides) -> dict:
    day = dt.datetime(2026, 2, 1, 10, 0) + dt.timedelta(hours=index)
    return {"external_id": f"bk-{index}", "customer_external_id": f"cus-{index % 5}", "worker_external_id": "wrk-1",
            "service_external_id": "svc-1", "status": "completed", "scheduled_at": day.isoformat(),
            "finished_at": (day + dt.timedelta(hours=2)).isoformat(), "rating": "4", "price": "750.00",
            "zone": "উত্তরা", **overrides}


def write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def load(path: Path, *args: str) -> str:
    out = StringIO()
    call_command("import_bookings", str(path), "--company", "alpha", "--no-progress", *args, stdout=out)
    return out.getvalue()


@pytest.mark.embedded  # make test runs it again on SQLite: the portable path of the embedded default
def test_a_file_loads_with_its_bad_rows_reported_and_loads_again_without_change(world, tmp_path):
    rows = [row(index) for index in range(40)]
    rows[7]["customer_external_id"] = "nobody"
    rows[19]["scheduled_at"] = "31/12/2026"
    path = write_csv(tmp_path / "bookings.csv", rows)

    first = load(path, "--batch-rows", "10")
    snapshot = list(Booking.objects.order_by("pk").values())
    again = load(path, "--batch-rows", "10")

    assert "40 rows, 38 created, 0 updated, 0 unchanged, 2 with errors" in first
    assert "line 9 (bk-7): customer_external_id: No such customer in your company." in first
    assert "line 21 (bk-19): scheduled_at:" in first
    assert "40 rows, 0 created, 0 updated, 38 unchanged, 2 with errors" in again
    assert list(Booking.objects.order_by("pk").values()) == snapshot
    assert Event.objects.filter(type="booking_created").count() == 38
    booking = Booking.objects.get(external_id="bk-0")
    assert booking.scheduled_at == dt.datetime(2026, 2, 1, 4, 0, tzinfo=dt.UTC)  # 10:00 in Dhaka
    assert booking.zone == "উত্তরা"
    latest = Customer.objects.get(external_id="cus-4").last_booking_at
    assert latest == max(b.finished_at for b in Booking.objects.filter(customer__external_id="cus-4"))
    records = list(ImportRecord.objects.order_by("pk").values_list("source", "status", "processed_rows"))
    assert records == [("command", "completed", 40), ("command", "completed", 40)]


def test_an_interrupted_load_resumes_after_its_last_committed_batch(world, tmp_path, monkeypatch):
    path = write_csv(tmp_path / "bookings.csv", [row(index) for index in range(30)])
    from crm.feed import imports

    real_rows_write = imports.rows_write
    calls = {"n": 0}

    def crash_on_the_third_batch(**kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_rows_write(**kwargs)

    monkeypatch.setattr(imports, "rows_write", crash_on_the_third_batch)
    with pytest.raises(CommandError, match="Interrupted after row 20"):
        load(path, "--batch-rows", "10")
    assert Booking.objects.count() == 20
    monkeypatch.setattr(imports, "rows_write", real_rows_write)

    output = load(path, "--batch-rows", "10")

    assert "Resuming import" in output and "after row 20" in output
    assert Booking.objects.count() == 30
    record = ImportRecord.objects.get()
    assert (record.status, record.processed_rows, record.created_count) == ("completed", 30, 30)
    assert Event.objects.filter(type="booking_created").count() == 30


def test_json_lines(world, tmp_path):
    path = tmp_path / "bookings.jsonl"
    lines = [{**row(index), "rating": 5, "price": 900} for index in range(3)]
    path.write_text("\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n{broken\n")

    output = load(path)

    assert "4 rows, 3 created, 0 updated, 0 unchanged, 1 with errors" in output
    assert "line 5 (no external_id): non_field_errors: Line 4 is not JSON." in output
    assert set(Booking.objects.values_list("rating", flat=True)) == {5}


def test_refusals(world, tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        load(tmp_path / "missing.csv")
    with pytest.raises(CommandError, match="No company"):
        call_command("import_bookings", str(write_csv(tmp_path / "b.csv", [row(0)])), "--company", "nope",
                     "--no-progress")
    with pytest.raises(CommandError, match="CSV or JSON lines"):
        load(write_csv(tmp_path / "b.xlsx", [row(0)]))


def test_the_copy_path_writes_what_the_portable_path_writes(world, monkeypatch):
    # given the same batch written twice, once by COPY (PostgreSQL), once by the path every database takes
    assert connection.vendor == "postgresql"
    first = [row(index) for index in range(12)]
    second = [row(index, external_id=f"twin-{index}") for index in range(12)]
    by_copy = rows_write(company=world, kind="bookings", rows=first, text=True, source="import")
    monkeypatch.setattr(connection, "vendor", "portable")
    portable = rows_write(company=world, kind="bookings", rows=second, text=True, source="import")
    monkeypatch.undo()

    def written(results):
        ignore = ["id", "external_id", "created_at", "updated_at"]
        bookings = Booking.objects.filter(pk__in=[result.id for result in results]).order_by("scheduled_at")
        events = Event.objects.filter(type="booking_created", target_id__in=[str(r.id) for r in results])
        return (
            [model_to_dict(booking, exclude=ignore) for booking in bookings],
            sorted((event.contact_id, event.source, event.occurred_at, event.payload["status"]) for event in events),
        )

    assert [r.status for r in by_copy] == [r.status for r in portable] == ["created"] * 12
    assert written(by_copy) == written(portable)
    # and the customers' last bookings moved the same way (both batches end at the same times)
    assert Customer.objects.filter(company=world, last_booking_at__isnull=True).count() == 0


def test_two_writers_racing_on_the_same_bookings_create_each_once(world):
    # given two bulk writers sending the same 200 new bookings at the same moment
    import threading

    from django.db import connections

    rows = [row(index) for index in range(200)]
    barrier = threading.Barrier(2)
    results: list = []

    def write():
        barrier.wait()
        try:
            results.append(rows_write(company=world, kind="bookings", rows=rows, text=True))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then each booking exists once; one writer created them, the other found them
    assert Booking.objects.count() == 200
    assert Event.objects.filter(type="booking_created").count() == 200
    statuses = sorted({result.status for result in batch} for batch in results)
    assert statuses == [{"created"}, {"unchanged"}]
