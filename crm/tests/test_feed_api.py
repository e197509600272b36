"""The REST API of the CRM graph (crm/feed): upserts by external id, bulk, strict rows, tenancy."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from crm.models import Booking, Contact, Customer, Event, Lead, Membership, Pipeline, Service, Worker
from crm.services import api_key_create
from crm.tests.factories import (
    BookingFactory,
    CustomerFactory,
    LeadFactory,
    ServiceFactory,
    StaffUserFactory,
    WorkerFactory,
)

pytestmark = pytest.mark.django_db

UTC = dt.UTC


def jwt_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def error(response) -> dict:
    assert set(response.json()) == {"error"}, response.json()
    return response.json()["error"]


@pytest.fixture
def graph(company):
    """A service, a worker and a customer of `company`, each with an external id."""
    service = ServiceFactory(company=company, name="AC repair", external_id="svc-ac")
    worker = WorkerFactory(company=company, external_id="wrk-1", contact__phone="+8801711000101")
    customer = CustomerFactory(company=company, external_id="cus-1", contact__phone="+8801711000201")
    return {"service": service, "worker": worker, "customer": customer}


def booking_body(**overrides):
    return {
        "customer_external_id": "cus-1", "worker_external_id": "wrk-1", "service_external_id": "svc-ac",
        "status": "scheduled", "scheduled_at": "2026-12-10T10:00:00", "price": "1500.00", "zone": "Dhanmondi",
        **overrides,
    }


# --- upserts by external id -------------------------------------------------------------------------


def test_put_by_external_id_creates_then_replays_without_change(key_client, company, graph):
    # when
    first = key_client.put("/api/bookings/by-external-id/bk-1", booking_body(), format="json")
    again = key_client.put("/api/bookings/by-external-id/bk-1", booking_body(), format="json")

    # then
    assert first.status_code == 201, first.json()
    assert again.status_code == 200
    assert again.json() == first.json()
    booking = Booking.objects.get()
    assert booking.external_id == "bk-1"
    # 10:00 in Asia/Dhaka (UTC+6), stored as 04:00 UTC.
    assert booking.scheduled_at == dt.datetime(2026, 12, 10, 4, 0, tzinfo=UTC)
    assert first.json()["scheduled_at"] == "2026-12-10T04:00:00Z"
    assert (first.json()["customer_external_id"], first.json()["worker_external_id"]) == ("cus-1", "wrk-1")
    assert Event.objects.filter(type="booking_created").count() == 1


def test_put_with_a_time_offset_keeps_it(key_client, company, graph):
    response = key_client.put(
        "/api/bookings/by-external-id/bk-1", booking_body(scheduled_at="2026-12-10T10:00:00+00:00"), format="json"
    )

    assert response.status_code == 201
    assert Booking.objects.get().scheduled_at == dt.datetime(2026, 12, 10, 10, 0, tzinfo=UTC)


def test_completing_a_booking_moves_last_booking_at_forward_only_and_records_the_event_once(
    key_client, company, graph
):
    customer = graph["customer"]
    key_client.put("/api/bookings/by-external-id/new", booking_body(), format="json")
    key_client.put("/api/bookings/by-external-id/old", booking_body(scheduled_at="2026-11-01T10:00:00"),
                   format="json")

    # when: the newer one completes, then the older one is reported completed late
    done = key_client.put("/api/bookings/by-external-id/new", booking_body(
        status="completed", finished_at="2026-12-10T12:00:00+06:00", rating=5), format="json")
    late = key_client.put("/api/bookings/by-external-id/old", booking_body(
        scheduled_at="2026-11-01T10:00:00", status="completed", finished_at="2026-11-01T12:00:00"), format="json")
    replay = key_client.put("/api/bookings/by-external-id/new", booking_body(
        status="completed", finished_at="2026-12-10T12:00:00+06:00", rating=5), format="json")

    # then
    assert (done.status_code, late.status_code, replay.status_code) == (200, 200, 200)
    customer.refresh_from_db()
    assert customer.last_booking_at == dt.datetime(2026, 12, 10, 6, 0, tzinfo=UTC)
    completed = Event.objects.filter(type="booking.completed").order_by("id")
    assert completed.count() == 2
    newer = Booking.objects.get(external_id="new")
    assert completed[0].payload == {
        "booking_id": newer.pk, "external_id": "new", "customer_id": customer.pk, "worker_id": graph["worker"].pk,
        "service_id": graph["service"].pk, "finished_at": "2026-12-10T06:00:00+00:00", "rating": 5, "price": "1500.00",
    }
    assert completed[0].contact_id == customer.contact_id


def test_a_year_of_history_is_booked_at_its_own_time_not_today(key_client, company, graph):
    key_client.put("/api/bookings/by-external-id/past", booking_body(
        scheduled_at="2026-01-05T09:00:00+06:00", status="completed", finished_at="2026-01-05T11:00:00+06:00"),
        format="json")

    booking = Booking.objects.get()
    event = Event.objects.get(type="booking_created")
    assert booking.created_at == dt.datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
    assert event.occurred_at == booking.created_at


def test_booking_carries_punctuality_and_attribution_fields(key_client, company, graph):
    correlation_id = str(uuid.uuid4())
    body = booking_body(
        status="cancelled", arrived_at="2026-12-10T10:07:00", started_at="2026-12-10T10:10:00",
        cancelled_by="customer", cancellation_reason="Not at home", correlation_id=correlation_id, rating=None,
    )

    response = key_client.put("/api/bookings/by-external-id/bk-9", body, format="json")

    assert response.status_code == 201, response.json()
    data = response.json()
    assert (data["arrived_at"], data["started_at"]) == ("2026-12-10T04:07:00Z", "2026-12-10T04:10:00Z")
    assert (data["cancelled_by"], data["cancellation_reason"], data["correlation_id"]) == (
        "customer", "Not at home", correlation_id)
    assert data["cancelled_at"] is not None
    assert Booking.objects.get().correlation_id == uuid.UUID(correlation_id)


def test_customer_upsert_normalises_the_phone_and_keeps_bengali_exactly(key_client, company):
    name = "মোঃ রফিকুল ইসলাম"

    response = key_client.put("/api/customers/by-external-id/c-77", {
        "name": name, "phone": "01712-345678", "is_sms_consented": True,
    }, format="json")

    assert response.status_code == 201, response.json()
    customer = Customer.objects.select_related("contact").get(external_id="c-77")
    assert (customer.contact.name, customer.contact.phone) == (name, "+8801712345678")
    assert customer.contact.name.encode() == name.encode()
    assert response.json()["name"] == name
    assert customer.contact.timezone == company.timezone


def test_a_customer_in_the_console_adopts_the_external_id_by_phone(key_client, company):
    existing = CustomerFactory(company=company, contact__phone="+8801712345678")

    response = key_client.put("/api/customers/by-external-id/c-1", {"phone": "+8801712345678"}, format="json")

    assert response.status_code == 200
    existing.refresh_from_db()
    assert existing.external_id == "c-1"
    assert Customer.objects.count() == 1


def test_customer_changes_record_customer_updated_once(key_client, company):
    key_client.put("/api/customers/by-external-id/c-1", {"name": "Rafi", "phone": "01712345678"}, format="json")
    key_client.put("/api/customers/by-external-id/c-1", {"name": "Rafi", "phone": "01712345678"}, format="json")
    key_client.put("/api/customers/by-external-id/c-1", {"name": "Rafiq"}, format="json")

    events = list(Event.objects.filter(type="customer.updated").order_by("id"))
    assert [(event.payload["created"], event.payload["fields"]) for event in events] == [
        (True, ["external_id", "name", "phone"]), (False, ["name"])
    ]


def test_withdrawn_consent_records_an_opt_out(key_client, company):
    customer = CustomerFactory(company=company, external_id="c-1", contact__is_sms_consented=True)

    response = key_client.put("/api/customers/by-external-id/c-1", {"is_sms_consented": False}, format="json")

    assert response.status_code == 200
    customer.contact.refresh_from_db()
    assert customer.contact.is_sms_consented is False
    assert Event.objects.filter(type="opt_out", contact=customer.contact).count() == 1


def test_create_of_an_existing_external_id_is_a_conflict(key_client, company, graph):
    response = key_client.post("/api/services/", {"external_id": "svc-ac", "name": "X", "category": "c",
                                                  "base_price": "1"}, format="json")

    assert response.status_code == 409
    assert error(response)["code"] == "conflict"


def test_patch_changes_only_what_it_names(key_client, company, graph):
    worker = graph["worker"]

    response = key_client.patch(f"/api/workers/{worker.pk}/", {"zones": ["Gulshan", "বনানী"]}, format="json")

    assert response.status_code == 200, response.json()
    worker.refresh_from_db()
    assert worker.zones == ["Gulshan", "বনানী"]
    assert worker.skills == ["cleaning"]


def test_delete_deactivates_and_cancels(key_client, company, graph):
    booking = BookingFactory(company=company, customer=graph["customer"], service=graph["service"],
                             status="scheduled", finished_at=None)
    done = BookingFactory(company=company, customer=graph["customer"], service=graph["service"])

    assert key_client.delete(f"/api/customers/{graph['customer'].pk}/").status_code == 204
    assert key_client.delete(f"/api/bookings/{booking.pk}/?cancelled_by=worker").status_code == 204
    assert key_client.delete(f"/api/bookings/{done.pk}/").status_code == 409

    graph["customer"].refresh_from_db()
    booking.refresh_from_db()
    assert graph["customer"].is_active is False
    assert (booking.status, booking.cancelled_by) == ("cancelled", "worker")
    assert booking.cancelled_at is not None


def test_paths_answer_without_their_trailing_slash(key_client, company, graph):
    response = key_client.post("/api/bookings/bulk", {"rows": [{**booking_body(), "external_id": "b"}]},
                               format="json")

    assert response.status_code == 200, response.content
    assert response.json()["created"] == 1


# --- bulk -------------------------------------------------------------------------------------------


def test_bulk_answers_per_row_and_writes_the_valid_rows(key_client, company, graph):
    rows = [
        {**booking_body(), "external_id": "b-1"},
        {**booking_body(), "external_id": "b-2", "rating": 9},
        {**booking_body(), "external_id": "b-3", "customer_external_id": "nobody"},
        {**booking_body(), "external_id": "b-1"},
        {**booking_body(), "external_id": "b-4", "colour": "red"},
        {**booking_body(), "external_id": "b-5"},
    ]

    response = key_client.post("/api/bookings/bulk", {"rows": rows}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert (body["created"], body["updated"], body["unchanged"], body["errors"]) == (2, 0, 0, 4)
    assert [(result["row"], result["status"]) for result in body["results"]] == [
        (0, "created"), (1, "error"), (2, "error"), (3, "error"), (4, "error"), (5, "created")
    ]
    assert body["results"][1]["errors"] == {"rating": ["Ensure this value is less than or equal to 5."]}
    assert body["results"][2]["errors"] == {"customer_external_id": ["No such customer in your company."]}
    assert body["results"][3]["errors"] == {"external_id": ["Also in row 1 of this batch."]}
    assert body["results"][4]["errors"] == {"colour": ["Unknown field."]}
    assert sorted(Booking.objects.values_list("external_id", flat=True)) == ["b-1", "b-5"]

    replay = key_client.post("/api/bookings/bulk", {"rows": [rows[0], rows[5]]}, format="json").json()
    assert (replay["created"], replay["unchanged"]) == (0, 2)


def test_bulk_dry_run_writes_nothing(key_client, company, graph):
    response = key_client.post("/api/bookings/bulk", {"rows": [{**booking_body(), "external_id": "b-1"}],
                                                      "dry_run": True}, format="json")

    assert response.json()["created"] == 1
    assert not Booking.objects.exists()
    assert not Event.objects.filter(type="booking_created").exists()


@pytest.mark.parametrize("body, field", [
    ({"rows": [{}] * 1001}, "rows"),
    ({"rows": []}, "rows"),
    ({"rows": "x"}, "rows"),
    ({"rows": [{}], "extra": 1}, "extra"),
    ([{}], "non_field_errors"),
])
def test_bulk_refuses_a_malformed_batch_whole(key_client, company, graph, body, field):
    response = key_client.post("/api/customers/bulk", body, format="json")

    assert response.status_code == 400
    assert field in error(response)["fields"]
    assert not Customer.objects.exclude(pk=graph["customer"].pk).exists()


def test_customers_and_workers_bulk(key_client, company):
    ServiceFactory(company=company, external_id="s-1", name="Cleaning")
    customers = [{"external_id": f"c-{i}", "name": f"গ্রাহক {i}", "phone": f"0171100{i:04d}",
                  "typical_service_external_ids": ["s-1"]} for i in range(20)]
    workers = [{"external_id": f"w-{i}", "name": f"Worker {i}", "phone": f"0181100{i:04d}", "skills": ["ac"]}
               for i in range(5)]

    first = key_client.post("/api/customers/bulk", {"rows": customers}, format="json").json()
    second = key_client.post("/api/customers/bulk", {"rows": customers}, format="json").json()
    staff = key_client.post("/api/workers/bulk", {"rows": workers}, format="json").json()

    assert (first["created"], first["errors"]) == (20, 0), first
    assert (second["unchanged"], second["created"]) == (20, 0)
    assert staff["created"] == 5
    assert Customer.objects.filter(company=company, typical_services__external_id="s-1").count() == 20
    assert Contact.objects.filter(company=company).count() == 25


# --- strict types and field errors --------------------------------------------------------------------


@pytest.mark.parametrize("kind, body, field", [
    ("bookings", {"rating": "5"}, "rating"),
    ("bookings", {"price": True}, "price"),
    ("bookings", {"scheduled_at": "tomorrow"}, "scheduled_at"),
    ("bookings", {"scheduled_at": 1765000000}, "scheduled_at"),
    ("bookings", {"status": "done"}, "status"),
    ("bookings", {"correlation_id": "not-a-uuid"}, "correlation_id"),
    ("bookings", {"cancelled_by": "aliens"}, "cancelled_by"),
    # refused on customer_id (no such customer) or on customer_external_id (customer 1 exists: another one)
    ("bookings", {"customer_id": 1, "customer_external_id": "x"}, ("customer_id", "customer_external_id")),
    ("bookings", {"customer_id": "cus-1"}, "customer_id"),
    ("bookings", {"customer_id": 10**20}, "customer_id"),
    ("customers", {"email": "a" * 250 + "@example.com"}, "email"),
    ("customers", {"name": 12}, "name"),
    ("customers", {"phone": "12"}, "phone"),
    ("customers", {"is_sms_consented": "yes"}, "is_sms_consented"),
    ("customers", {"timezone": "Mars/Olympus"}, "timezone"),
    ("customers", {"email": "not-an-email"}, "email"),
    ("customers", {"typical_service_ids": "1"}, "typical_service_ids"),
    ("workers", {"ratings_avg": "7"}, "ratings_avg"),
    ("workers", {"skills": [1]}, "skills.0"),
    ("services", {"base_price": "-1"}, "base_price"),
    ("services", {"duration_minutes": 0}, "duration_minutes"),
    ("pipelines", {"stages": [{"name": "A", "kind": "maybe"}]}, "stages.0.kind"),
    ("leads", {"score": 101}, "score"),
    ("contacts", {"unknown": 1}, "unknown"),
])
def test_every_serializer_is_strict_about_types(key_client, company, graph, kind, body, field):
    before = {model: model.objects.count() for model in (Booking, Customer, Worker, Service, Pipeline, Lead, Contact)}

    response = key_client.put(f"/api/{kind}/by-external-id/x-1", body, format="json")

    assert response.status_code == 400, response.json()
    fields = field if isinstance(field, tuple) else (field,)
    assert set(fields) & set(error(response)["fields"]), error(response)
    assert before == {model: model.objects.count() for model in before}


def test_a_new_booking_without_its_references_names_the_missing_fields(key_client, company, graph):
    response = key_client.put("/api/bookings/by-external-id/x", {"status": "scheduled"}, format="json")

    assert response.status_code == 400
    assert set(error(response)["fields"]) == {"customer_id", "service_id", "scheduled_at"}


# --- pipelines, leads, company -------------------------------------------------------------------------


def test_pipeline_upsert_with_stages_then_a_lead_moves_through_them(key_client, company):
    stages = [{"name": "New"}, {"name": "Visited"}, {"name": "Won", "kind": "won"}]
    created = key_client.put("/api/pipelines/by-external-id/p-1", {"name": "Field sales", "stages": stages},
                             format="json")
    again = key_client.put("/api/pipelines/by-external-id/p-1", {"name": "Field sales", "stages": stages},
                           format="json")
    lead = key_client.put("/api/leads/by-external-id/l-1", {
        "phone": "01712345678", "name": "করিম", "pipeline_external_id": "p-1", "source": "fair"}, format="json")
    moved = key_client.patch(f"/api/leads/{lead.json()['id']}/", {"stage": "Won"}, format="json")

    assert created.status_code == 201, created.json()
    assert again.status_code == 200 and again.json() == created.json()
    assert [stage["name"] for stage in created.json()["stages"]] == ["New", "Visited", "Won"]
    assert lead.status_code == 201, lead.json()
    assert (lead.json()["stage"], lead.json()["contact"]["phone"]) == ("New", "+8801712345678")
    assert (moved.json()["stage"], moved.json()["status"]) == ("Won", "won")
    assert list(Event.objects.filter(type__in=["lead.created", "stage.changed"]).order_by("id")
                .values_list("type", flat=True)) == ["lead.created", "stage.changed"]


def test_company_settings_read_and_change(key_client, company):
    response = key_client.patch("/api/company/", {"timezone": "Asia/Kolkata", "webhook_url": "https://x.test/h",
                                                  "webhook_secret": "s" * 20}, format="json")
    bad = key_client.patch("/api/company/", {"timezone": "Nowhere", "default_region": "ZZ"}, format="json")

    assert response.status_code == 200
    assert response.json()["timezone"] == "Asia/Kolkata"
    assert response.json()["has_webhook_secret"] is True
    assert "webhook_secret" not in response.json()
    assert bad.status_code == 400
    company.refresh_from_db()
    assert (company.timezone, company.webhook_secret) == ("Asia/Kolkata", "s" * 20)


# --- tenancy: the three people on every endpoint ---------------------------------------------------------


def _endpoints(objects):
    booking, customer, worker, service, lead, pipeline = objects
    return [
        ("get", "/api/customers/", None), ("get", f"/api/customers/{customer.pk}/", None),
        ("patch", f"/api/customers/{customer.pk}/", {"name": "x"}), ("delete", f"/api/customers/{customer.pk}/", None),
        ("put", "/api/customers/by-external-id/e", {"phone": "01712000000"}),
        ("post", "/api/customers/", {"phone": "01712000001"}), ("post", "/api/customers/bulk", {"rows": [{}]}),
        ("get", "/api/workers/", None), ("get", f"/api/workers/{worker.pk}/", None),
        ("patch", f"/api/workers/{worker.pk}/", {"name": "x"}), ("delete", f"/api/workers/{worker.pk}/", None),
        ("put", "/api/workers/by-external-id/e", {"phone": "01712000002"}),
        ("post", "/api/workers/bulk", {"rows": [{}]}),
        ("get", "/api/services/", None), ("get", f"/api/services/{service.pk}/", None),
        ("patch", f"/api/services/{service.pk}/", {"name": "x"}), ("delete", f"/api/services/{service.pk}/", None),
        ("put", "/api/services/by-external-id/e", {"name": "n", "category": "c", "base_price": "1"}),
        ("get", "/api/bookings/", None), ("get", f"/api/bookings/{booking.pk}/", None),
        ("patch", f"/api/bookings/{booking.pk}/", {"zone": "x"}), ("delete", f"/api/bookings/{booking.pk}/", None),
        ("put", "/api/bookings/by-external-id/e", {"zone": "x"}), ("post", "/api/bookings/bulk", {"rows": [{}]}),
        ("get", "/api/pipelines/", None), ("get", f"/api/pipelines/{pipeline.pk}/", None),
        ("patch", f"/api/pipelines/{pipeline.pk}/", {"name": "x"}),
        ("put", "/api/pipelines/by-external-id/e", {"name": "P"}),
        ("get", f"/api/leads/{lead.pk}/", None), ("patch", f"/api/leads/{lead.pk}/", {"score": 5}),
        ("put", "/api/leads/by-external-id/e", {"phone": "01712000003"}),
        ("post", "/api/leads/", {"phone": "01712000004"}),
        ("get", f"/api/contacts/{lead.contact_id}/", None), ("patch", f"/api/contacts/{lead.contact_id}/", {"name": "x"}),
        ("put", "/api/contacts/by-external-id/e", {"phone": "01712000005"}),
        ("get", "/api/company/", None), ("patch", "/api/company/", {"timezone": "UTC"}),
    ]


@pytest.fixture
def alpha_objects(company):
    booking = BookingFactory(company=company, status="scheduled", finished_at=None)
    lead = LeadFactory(company=company)
    return (booking, booking.customer, booking.worker, booking.service, lead, lead.pipeline)


def _snapshot(company):
    """Every row of the company's graph: what a denied caller must leave as it was."""
    return [list(model.objects.filter(company=company).order_by("pk").values()) for model in
            (Booking, Customer, Worker, Service, Lead, Pipeline, Contact)]


def test_alice_reaches_every_endpoint_of_her_company(staff_user, alpha_objects):
    client = jwt_for(staff_user)
    for method, url, body in _endpoints(alpha_objects):
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code < 500 and response.status_code not in (401, 403, 404), (method, url, response)


def test_bob_reaches_none_of_alices_objects_and_changes_nothing(other_staff_user, alpha_objects, company):
    client = jwt_for(other_staff_user)
    before = _snapshot(company)
    for method, url, body in _endpoints(alpha_objects):
        response = getattr(client, method)(url, body, format="json")
        if "/by-external-id/" in url or url.endswith(("/bulk", "s/", "/company/")):
            # Collections and upserts act for Bob's own company: nothing of Alice's is visible or touched.
            if method == "get":
                assert all(row["id"] not in {obj.pk for obj in alpha_objects} for row in response.json()["results"]) \
                    if "results" in response.json() else response.json()["id"] != company.pk
            continue
        assert response.status_code == 404, (method, url, response.status_code)
        response = getattr(client, method)(url, body, format="json", HTTP_X_COMPANY_ID=str(company.pk))
        assert response.status_code == 403, (method, url, response.status_code)
    after = _snapshot(company)
    assert [rows for rows in after] == [rows for rows in before]


def test_an_api_key_of_another_company_sees_nothing_of_alices(company, other_company, alpha_objects):
    _, raw_key = api_key_create(company=other_company, name="beta")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    before = _snapshot(company)
    for method, url, body in _endpoints(alpha_objects):
        if not re.search(r"/\d+/$", url):
            continue  # collections and upserts act for the key's own company
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code == 404, (method, url)
    assert _snapshot(company) == before


def test_anonymous_gets_401_everywhere(company, alpha_objects):
    client = APIClient()
    before = _snapshot(company)
    for method, url, body in _endpoints(alpha_objects):
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code == 401, (method, url)
        assert error(response)["code"] == "not_authenticated"
    assert _snapshot(company) == before


def test_marketing_staff_read_but_cannot_write(company, alpha_objects):
    marketer = StaffUserFactory(email="mina@alpha.test")
    Membership.objects.create(user=marketer, company=company, role=Membership.Role.MARKETING)
    client = jwt_for(marketer)

    assert client.get("/api/bookings/").status_code == 200
    response = client.put("/api/services/by-external-id/s", {"name": "n", "category": "c", "base_price": "1"},
                          format="json")
    assert response.status_code == 403
    assert not Service.objects.filter(external_id="s").exists()


# --- lists ----------------------------------------------------------------------------------------------


def test_lists_filter_and_page_by_cursor_without_counting(key_client, company, graph, django_assert_max_num_queries):
    for index in range(5):
        BookingFactory(company=company, customer=graph["customer"], service=graph["service"], worker=graph["worker"],
                       external_id=f"b-{index}", status="completed" if index % 2 else "scheduled")

    page = key_client.get("/api/bookings/", {"status": "completed", "page_size": 1}).json()
    second = key_client.get(page["next"]).json()
    by_external = key_client.get("/api/bookings/", {"external_id": "b-3"}).json()["results"]
    bad = key_client.get("/api/bookings/", {"scheduled_after": "soon"})

    assert "count" not in page
    assert [row["external_id"] for row in page["results"] + second["results"]] == ["b-3", "b-1"]
    assert [row["external_id"] for row in by_external] == ["b-3"]
    assert bad.status_code == 400 and "scheduled_after" in error(bad)["fields"]


def test_outbound_webhook_jobs_for_booking_completed_and_customer_updated(key_client, company, graph):
    from engage.models import Job

    company.webhook_url = "https://receiver.test/hook"
    company.webhook_secret = "s" * 20
    company.save()
    key_client.put("/api/bookings/by-external-id/b", booking_body(), format="json")

    key_client.put("/api/bookings/by-external-id/b", booking_body(status="completed"), format="json")
    key_client.put("/api/customers/by-external-id/cus-1", {"name": "নতুন নাম"}, format="json")

    jobs = {job.payload["event"]: job.payload["data"] for job in Job.objects.filter(task_name="webhook_reminder")}
    assert set(jobs) == {"booking.completed", "customer.updated"}
    assert jobs["booking.completed"]["external_id"] == "b"
    assert (jobs["customer.updated"]["external_id"], jobs["customer.updated"]["fields"]) == ("cus-1", ["name"])
    assert Decimal(jobs["booking.completed"]["price"]) == Decimal("1500.00")


def test_two_rows_of_a_batch_with_one_phone_or_one_service_name(key_client, company):
    from crm.feed.services import rows_write

    customers = key_client.post("/api/customers/bulk", {"rows": [
        {"external_id": "a", "phone": "01712000001"}, {"external_id": "b", "phone": "+8801712000001"},
    ]}, format="json").json()
    services = rows_write(company=company, kind="services", rows=[
        {"external_id": "s1", "name": "Wash", "category": "c", "base_price": "1"},
        {"external_id": "s2", "name": "Wash", "category": "c", "base_price": "2"},
    ])

    assert [result["status"] for result in customers["results"]] == ["created", "error"]
    assert customers["results"][1]["errors"] == {"phone": ["Also in row 1 of this batch."]}
    assert [result.status for result in services] == ["created", "error"]
    assert services[1].errors == {"name": ["Also in row 1 of this batch."]}
    assert Customer.objects.count() == 1 and Service.objects.filter(name="Wash").count() == 1
