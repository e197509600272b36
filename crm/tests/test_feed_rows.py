"""The bookings feed's fast paths: typed rows read without DRF's per-field machinery, and lookups by
external id that do not depend on the planner's statistics. Each must answer exactly what the slow path does."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.db import connection, transaction
from rest_framework.exceptions import ValidationError

from crm.feed.rows import ROW_CLASSES, SLOW, BookingRow, fast_parser, rows_validate
from crm.feed.services import _by_external_ids, by_keys
from crm.models import Booking, Customer, Service
from crm.tests.factories import BookingFactory, CustomerFactory, ServiceFactory

# Values of every shape the feed meets: valid ones of each type, and each way to be wrong.
VALUES = [
    None, True, False, 0, 1, 5, 6, -1, 2**63, 2**63 - 1, 1.0, 1.5, "", " ", "  x  ", "x", "abc", "x" * 100,
    "x" * 101, "x" * 201, "a\x00b", "\ud800", "মিরপুর", "5", "05", "5.0", "-5", "+5", "٥", "1e3", "0", "12345678",
    "123456789", "800.00", "800.005", "800.5", " 800.00 ", "0.00", "-1.00", "NaN", "Infinity", "4.99", "5.01",
    "true", "false", "TRUE", "False", "yes", "no", "1", "on", "off", "null", "completed", "scheduled", "Completed",
    "customer", "2026-12-10T10:00:00", "2026-12-10T10:00:00+06:00", "2026-12-10T10:00:00Z", " 2026-12-10 10:00 ",
    "2026-12-10", "2026-02-30T10:00:00", "10:00", "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+01:00",
    str(uuid.UUID(int=7)), uuid.UUID(int=7).hex, "not-a-uuid", [], {}, ["a"], Decimal("1.5"),
    dt.datetime(2026, 1, 1), dt.date(2026, 1, 1),
]


def _slow(field, value):
    try:
        return "value", field.run_validation(value)
    except ValidationError as error:
        return "error", error.detail
    except Exception as error:  # whatever DRF does, the fast path must hand it over
        return "raised", type(error)


@pytest.mark.parametrize("text", [False, True], ids=["json", "text"])
@pytest.mark.parametrize("kind", sorted(ROW_CLASSES))
def test_fast_parsers_accept_only_what_drf_accepts_and_return_the_same_value(kind, text):
    serializer = ROW_CLASSES[kind](context={"text": text})
    compiled = 0
    for name, field in serializer.fields.items():
        fast = fast_parser(field, text=text)
        if fast is None:
            continue
        compiled += 1
        for value in VALUES:
            outcome, expected = _slow(field, value)
            try:
                got = fast(value)
            except Exception as error:
                pytest.fail(f"{kind}.{name}: the fast parser raised {error!r} for {value!r}")
            if got is SLOW:
                continue
            assert outcome == "value", f"{kind}.{name}: fast accepted {value!r}, DRF says {expected!r}"
            assert (type(got), got, str(got)) == (type(expected), expected, str(expected)), f"{kind}.{name}: {value!r}"
    assert compiled > 0 or kind == "pipelines"


def test_booking_rows_read_the_same_as_through_drf_alone(monkeypatch):
    # given: rows with valid and invalid values in every field
    rows = [
        {"external_id": "bk-1", "customer_external_id": "cus-1", "service_id": 3, "status": "completed",
         "scheduled_at": "2026-12-10T10:00:00", "finished_at": "2026-12-10T12:00:00+06:00", "rating": 5,
         "price": "800.00", "zone": "মিরপুর", "correlation_id": str(uuid.UUID(int=3)), "worker_id": None},
        {"external_id": " ", "customer_id": "5", "status": "done", "scheduled_at": "tomorrow", "rating": 6,
         "price": "-1", "zone": "x" * 101, "correlation_id": "nope", "surprise": 1},
        {"external_id": 5, "price": 1.5, "rating": True, "cancelled_by": "", "arrived_at": None},
        "not an object",
    ]
    for text in (False, True):
        # when
        fast = rows_validate(BookingRow, rows, text=text)
        monkeypatch.setattr("crm.feed.rows.fast_parser", lambda field, text: None)
        slow = rows_validate(BookingRow, rows, text=text)
        monkeypatch.undo()
        # then
        assert fast == slow


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the LATERAL lookup is PostgreSQL's")
@pytest.mark.django_db
def test_lookup_by_external_ids_finds_what_the_orm_finds_in_the_company_only(company, other_company):
    # given: the same external ids in two companies
    service = ServiceFactory(company=company, external_id="svc-1")
    ServiceFactory(company=other_company, external_id="svc-1")
    customer = CustomerFactory(company=company, external_id="cus-1")
    CustomerFactory(company=other_company, external_id="cus-1")
    ours = [BookingFactory(company=company, customer=customer, service=service, external_id=f"bk-{index}")
            for index in range(3)]
    other_customer = CustomerFactory(company=other_company, external_id="cus-2")
    BookingFactory(company=other_company, customer=other_customer, service=ServiceFactory(company=other_company),
                   external_id="bk-0")
    wanted = ["bk-0", "bk-2", "bk-9", ""]

    # when
    with transaction.atomic():
        locked = _by_external_ids(Booking.objects.filter(company=company).select_for_update(of=("self",)),
                                  external_ids=wanted, company=company)
    values = _by_external_ids(Customer.objects.filter(company=company).values_list("pk", "external_id"),
                              external_ids=["cus-1", "cus-2"], company=company)
    flat = _by_external_ids(Service.objects.filter(company=company).values_list("pk", flat=True),
                            external_ids=["svc-1"], company=company)

    # then
    assert sorted(booking.pk for booking in locked) == [ours[0].pk, ours[2].pk]
    assert all(isinstance(booking, Booking) and booking.company_id == company.pk for booking in locked)
    assert values == [(customer.pk, "cus-1")]
    assert flat == [service.pk]
    orm = by_keys(Booking.objects.filter(company=company), external_ids=wanted)
    assert sorted(booking.pk for booking in orm) == sorted(booking.pk for booking in locked)
    # A queryset it cannot read exactly (another condition, a join, another company) goes to the ORM.
    assert _by_external_ids(Booking.objects.filter(company=company, status="completed"), external_ids=wanted,
                            company=company) is None
    assert _by_external_ids(Customer.objects.filter(company=company).select_related("contact"),
                            external_ids=["cus-1"], company=company) is None
    assert _by_external_ids(Booking.objects.filter(company=other_company), external_ids=wanted,
                            company=company) is None
