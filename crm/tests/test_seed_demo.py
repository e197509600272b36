"""seed_demo: the demo companies, idempotent and deterministic, and the COPY volume path on PostgreSQL."""

import datetime as dt
import io
from collections import Counter

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, F, Max, OuterRef, Q, Subquery

from crm import demo
from crm.models import (
    ApiKey,
    Booking,
    Channel,
    Company,
    Contact,
    Customer,
    Event,
    Lead,
    Membership,
    Pipeline,
    Service,
    Stage,
    User,
    Worker,
)

TODAY = "2026-11-21"
BASE_TIME = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
COUNTED_MODELS = (
    Company, User, Membership, Group, ApiKey, Contact, Pipeline, Stage, Lead, Service, Customer, Worker,
    Booking, Event, Customer.typical_services.through,
)


@pytest.fixture(autouse=True)
def fast_demo(settings, tmp_path, monkeypatch):
    # A private var/ for the generated password (the fast hasher comes from the root conftest).
    settings.VAR_DIR = tmp_path
    monkeypatch.delenv("DEMO_ADMIN_PASSWORD", raising=False)


def seed(*arguments: str) -> str:
    """The CRM half of seed_demo (the engagement story on it is engage/tests/test_demo.py's)."""
    out = io.StringIO()
    call_command("seed_demo", "--now", TODAY, "--no-story", *arguments, stdout=out)
    return out.getvalue()


def row_counts() -> dict[str, int]:
    return {model._meta.label: model.objects.count() for model in COUNTED_MODELS}


@pytest.mark.django_db
def test_second_run_creates_and_changes_nothing():
    # given
    first_output = seed("--customers", "40", "--bookings-per-customer", "3")
    counts = row_counts()
    passwords = dict(User.objects.values_list("email", "password"))
    last_bookings = dict(Customer.objects.values_list("pk", "last_booking_at"))

    # when
    second_output = seed("--customers", "40", "--bookings-per-customer", "3")

    # then
    assert row_counts() == counts
    assert dict(User.objects.values_list("email", "password")) == passwords
    assert dict(Customer.objects.values_list("pk", "last_booking_at")) == last_bookings
    assert "nothing created" in second_output
    assert first_output.count("API key of") == 2
    assert "API key of" not in second_output
    assert counts["crm.Customer"] == 40
    assert counts["crm.Company"] == 2
    assert counts["crm.ApiKey"] == 2


@pytest.mark.django_db
def test_both_companies_logins_and_keys():
    # when
    output = seed("--customers", "10")

    # then
    home = Company.objects.get(slug=demo.HOME_SERVICES_SLUG)
    courses = Company.objects.get(slug=demo.COURSES_SLUG)
    admin = User.objects.get(email=demo.ADMIN_EMAIL)
    assert admin.is_superuser and admin.is_staff
    generated_password = (demo._password_file()).read_text().strip()
    assert admin.check_password(generated_password)
    assert f"admin@shokti.local       {generated_password}" in output
    assert "http://" in output and "/admin/" in output
    for email, group, role in (
        (demo.OPERATIONS_EMAIL, "Operations", Membership.Role.OPERATIONS),
        (demo.MARKETING_EMAIL, "Marketing", Membership.Role.MARKETING),
    ):
        user = User.objects.get(email=email)
        assert user.is_staff and not user.is_superuser
        assert list(user.groups.values_list("name", flat=True)) == [group]
        assert set(Membership.objects.filter(user=user).values_list("company__slug", "role")) == {
            (home.slug, role),
            (courses.slug, role),
        }
    for company in (home, courses):
        key = ApiKey.objects.get(company=company)
        printed = [line.split(": ")[1] for line in output.splitlines() if f"API key of {company.slug}" in line]
        assert len(printed) == 1 and ApiKey.hash(printed[0]) == key.hashed_key


@pytest.mark.django_db
def test_staff_have_real_names_and_older_demo_names_are_replaced():
    # given: a demo seeded by an earlier version, which greeted everyone as "Demo ..."
    seed("--customers", "0")
    User.objects.filter(email=demo.OPERATIONS_EMAIL).update(full_name="Demo Operations")

    # when
    output = seed("--customers", "0")

    # then
    assert dict(User.objects.values_list("email", "full_name")) == {
        demo.ADMIN_EMAIL: "Farhana Rahman", demo.OPERATIONS_EMAIL: "Rahima Akter", demo.MARKETING_EMAIL: "Tanvir Hasan",
    }
    assert "1 users renamed" in output
    assert "nothing created" in seed("--customers", "0")


@pytest.mark.django_db
def test_admin_password_comes_from_the_environment(monkeypatch):
    # given
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "demo-pass-1")
    seed("--customers", "0")

    # when: the password is changed in the environment
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "demo-pass-2")
    seed("--customers", "0")

    # then
    for email in (demo.ADMIN_EMAIL, demo.OPERATIONS_EMAIL, demo.MARKETING_EMAIL):
        assert User.objects.get(email=email).check_password("demo-pass-2")
    assert not demo._password_file().exists()


@pytest.mark.django_db
def test_home_services_company_has_bengali_services_and_varied_consent():
    seed("--customers", "80")

    home = Company.objects.get(slug=demo.HOME_SERVICES_SLUG)
    names_bn = set(Service.objects.filter(company=home).values_list("name_bn", flat=True))
    assert {"হোম ক্লিনিং", "এসি সার্ভিসিং", "প্লাম্বিং", "ইলেকট্রিক্যাল", "পেস্ট কন্ট্রোল"} <= names_bn
    customers = Contact.objects.filter(company=home, customer__isnull=False)
    for flag in ("is_email_consented", "is_sms_consented", "is_whatsapp_consented"):
        assert set(customers.values_list(flag, flat=True)) == {True, False}, flag
    assert Customer.typical_services.through.objects.filter(customer__company=home).count() == 80


@pytest.mark.django_db
def test_every_stage_of_the_course_pipeline_has_leads():
    seed("--customers", "0")

    courses = Company.objects.get(slug=demo.COURSES_SLUG)
    pipeline = Pipeline.objects.get(company=courses, is_default=True)
    stages = pipeline.stages.annotate(leads_count=Count("leads")).order_by("order")
    assert [(stage.name, stage.leads_count) for stage in stages] == [
        (name, demo.LEADS_PER_STAGE) for name, _ in Pipeline.DEFAULT_STAGES
    ]
    assert not Lead.objects.filter(stage__kind=Stage.Kind.WON).exclude(status=Lead.Status.WON).exists()
    assert not Lead.objects.filter(stage__kind=Stage.Kind.LOST).exclude(status=Lead.Status.LOST).exists()
    assert Event.objects.filter(company=courses, type="lead.created").count() == Lead.objects.count()


@pytest.mark.django_db
def test_customers_have_bookings_of_varied_ages_and_some_are_due_for_the_campaign():
    seed("--customers", "120", "--bookings-per-customer", "4")

    due_day = (BASE_TIME - dt.timedelta(days=demo.CAMPAIGN_CADENCE_DAYS)).date()
    ages = Counter()
    for last_booking_at in Customer.objects.values_list("last_booking_at", flat=True):
        if last_booking_at is None:
            ages["never"] += 1
        else:
            days = (BASE_TIME.date() - last_booking_at.date()).days
            ages["due" if last_booking_at.date() == due_day else "recent" if days < 21 else "older"] += 1
    assert ages["due"] >= 15
    assert ages["recent"] >= 15
    assert ages["older"] >= 15
    assert ages["never"] >= 1
    assert Booking.objects.filter(status=Booking.Status.SCHEDULED, scheduled_at__gt=BASE_TIME).exists()
    assert Booking.objects.filter(status=Booking.Status.CANCELLED).exists()


@pytest.mark.django_db
def test_todays_campaign_finds_the_customers_due_for_it():
    from engage.campaigns.segmentation import SegmentCriteria, customer_segment

    # given
    seed("--customers", "120", "--bookings-per-customer", "4")
    home = Company.objects.get(slug=demo.HOME_SERVICES_SLUG)
    due_day = (BASE_TIME - dt.timedelta(days=demo.CAMPAIGN_CADENCE_DAYS)).date()
    due = set(
        Customer.objects.filter(
            company=home, last_booking_at__date=due_day, contact__is_sms_consented=True
        ).values_list("pk", flat=True)
    )

    # when: SmartEngage's daily run, 09:00 UTC, 21-day cadence, one day wide, over SMS
    criteria = SegmentCriteria(
        cadence_days=demo.CAMPAIGN_CADENCE_DAYS,
        window_days=1,
        send_window_start_hour=0,
        send_window_end_hour=24,
        channel=Channel.SMS,
    )
    found = customer_segment(company=home, criteria=criteria, now=BASE_TIME + dt.timedelta(hours=9))

    # then
    assert len(due) >= 15
    assert {customer.pk for customer in found} == due


@pytest.mark.django_db
def test_last_booking_at_matches_the_latest_completed_booking():
    seed("--customers", "120", "--bookings-per-customer", "5")

    latest = (
        Booking.objects.filter(customer=OuterRef("pk"), status=Booking.Status.COMPLETED)
        .order_by("-finished_at")
        .values("finished_at")[:1]
    )
    customers = Customer.objects.annotate(latest=Subquery(latest))
    assert customers.count() == 120
    assert not customers.exclude(
        Q(latest__isnull=True, last_booking_at__isnull=True) | Q(last_booking_at=F("latest"))
    ).exists()


@pytest.mark.django_db
def test_workers_arrive_on_time_or_late():
    seed("--customers", "150", "--bookings-per-customer", "4")

    late_after = dt.timedelta(minutes=demo.LATE_AFTER_MINUTES)
    late_share = {}
    for worker in Worker.objects.select_related("contact"):
        arrivals = [
            arrived - scheduled
            for scheduled, arrived in worker.bookings.filter(arrived_at__isnull=False).values_list(
                "scheduled_at", "arrived_at"
            )
        ]
        assert arrivals, f"{worker} has no arrivals"
        late_share[worker.contact.phone] = sum(delay > late_after for delay in arrivals) / len(arrivals)
    assert len(late_share) == demo.WORKER_COUNT
    punctual = [share for share in late_share.values() if share < 0.25]
    late = [share for share in late_share.values() if share > 0.5]
    assert len(punctual) == len(late) == demo.WORKER_COUNT // 2


@pytest.mark.django_db
def test_more_customers_later_gives_the_same_rows_as_one_run():
    # given: 30 customers, then 60 in a second run
    seed("--customers", "30", "--bookings-per-customer", "3")
    seed("--customers", "60", "--bookings-per-customer", "3")
    in_two_runs = _customer_snapshot()

    # when: the same 60 in one run
    home = Company.objects.get(slug=demo.HOME_SERVICES_SLUG)
    Booking.objects.filter(company=home).delete()
    Customer.objects.filter(company=home).delete()
    Contact.objects.filter(company=home, phone__startswith=demo.CUSTOMER_PHONE_PREFIX).delete()
    seed("--customers", "60", "--bookings-per-customer", "3")

    # then
    assert len(in_two_runs) == 60
    assert _customer_snapshot() == in_two_runs


def _customer_snapshot() -> dict[str, tuple]:
    snapshot = {}
    for customer in Customer.objects.select_related("contact").prefetch_related("bookings__service"):
        contact = customer.contact
        bookings = sorted(
            (b.service.name, b.status, b.scheduled_at, b.arrived_at, b.finished_at, b.rating, b.worker_id)
            for b in customer.bookings.all()
        )
        snapshot[contact.phone] = (
            contact.name,
            contact.email,
            contact.is_email_consented,
            contact.is_sms_consented,
            contact.is_whatsapp_consented,
            customer.last_booking_at,
            tuple(bookings),
        )
    return snapshot


@pytest.mark.django_db
def test_volume_flags_load_through_copy_and_put_constraints_back(monkeypatch):
    # given: the large-load path (foreign keys and plain indexes dropped, then rebuilt) even for 200
    assert connection.vendor == "postgresql"
    monkeypatch.setattr(demo, "FAST_LOAD_MIN_CUSTOMERS", 1)
    monkeypatch.setattr(demo, "COPY_CHUNK_CUSTOMERS", 64)
    tables = ["crm_contact", "crm_customer", "crm_booking", "crm_customer_typical_services"]
    before = _constraints_and_indexes(tables)
    copies = []
    real_rows_write = demo._rows_write
    monkeypatch.setattr(
        demo, "_rows_write", lambda model, columns, rows: copies.append(model) or real_rows_write(model, columns, rows)
    )

    # when
    seed("--customers", "200", "--bookings-per-customer", "3")

    # then
    assert _constraints_and_indexes(tables) == before
    assert Counter(copies)[Booking] == 4  # 200 customers in chunks of 64
    home = Company.objects.get(slug=demo.HOME_SERVICES_SLUG)
    assert Customer.objects.filter(company=home).count() == 200
    per_customer = Counter(
        Customer.objects.filter(company=home).annotate(n=Count("bookings")).values_list("n", flat=True)
    )
    assert set(per_customer) <= {1, 3}
    assert per_customer[3] > 150
    assert Customer.objects.filter(last_booking_at__isnull=False).aggregate(m=Max("last_booking_at"))["m"] < BASE_TIME
    # New rows after the load draw fresh ids from the moved sequences.
    contact = Contact.objects.create(company=home, phone="+8801600000001")
    assert contact.pk > Contact.objects.exclude(pk=contact.pk).aggregate(m=Max("pk"))["m"]


def _constraints_and_indexes(tables: list[str]) -> tuple[set, set]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = ANY(%s::regclass[])",
            [tables],
        )
        constraints = set(cursor.fetchall())
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s)", [tables])
        indexes = set(cursor.fetchall())
    return constraints, indexes


@pytest.mark.django_db
def test_every_demo_booking_has_the_booking_created_event_booking_create_records():
    seed("--customers", "30", "--bookings-per-customer", "3")

    home = Company.objects.get(slug=demo.HOME_SERVICES_SLUG)
    bookings = {booking.pk: booking for booking in Booking.objects.filter(company=home).select_related("customer")}
    events = Event.objects.filter(company=home, type="booking_created")
    assert len(bookings) > 30 and events.count() == len(bookings)
    for event in events:
        booking = bookings[event.payload["booking_id"]]
        assert (event.target_id, event.contact_id, event.occurred_at) == (
            str(booking.pk), booking.customer.contact_id, booking.created_at
        )
        assert event.payload == {
            "booking_id": booking.pk, "service_id": booking.service_id,
            "scheduled_at": booking.scheduled_at.isoformat(), "status": booking.status,
        }
    # a booking made afterwards draws a fresh id (the sequence moved past the loaded ones)
    customer = Customer.objects.filter(company=home).select_related("contact").first()
    later = demo_booking_create(customer)
    assert later.pk > max(bookings)


def demo_booking_create(customer):
    from crm.feed.services import booking_create

    return booking_create(
        company=customer.company, customer=customer, service=Service.objects.filter(company=customer.company).first(),
        scheduled_at=BASE_TIME,
    )
