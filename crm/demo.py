"""Demo data: a home-services company and a course-selling company, deterministic and idempotent.

`demo_seed` is the CRM half of `manage.py seed_demo` (shokti/management/commands/): companies, staff,
customers, workers, bookings and leads. The engagement story told on them (campaigns, conversations,
jobs) is `engage.demo`, which the command runs next: crm does not know engage. Every value comes from
`random.Random` seeded with the seed and a row's index, and every date from a
fixed base time, so a rerun (or a run that adds more customers) produces the same
rows. Each piece is created only when it is missing: a second run writes nothing.

The customer volume (contacts, customers, typical services, bookings) is written
with PostgreSQL `COPY` through psycopg 3, or with `bulk_create` in chunks on SQLite.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connection, models, transaction
from django.db.models import Max

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
    Service,
    Stage,
    User,
    Worker,
)
from crm.services import BOOKING_CREATED, api_key_create, booking_created_payload, pipeline_get_or_create_default

HOME_SERVICES_SLUG = "sheba-demo"
COURSES_SLUG = "course-demo"
ADMIN_EMAIL = "admin@shokti.local"
OPERATIONS_EMAIL = "ops@shokti.local"
MARKETING_EMAIL = "marketing@shokti.local"
API_KEY_NAME = "demo"
STAFF_NAMES = {ADMIN_EMAIL: "Farhana Rahman", OPERATIONS_EMAIL: "Rahima Akter", MARKETING_EMAIL: "Tanvir Hasan"}
OLD_STAFF_NAMES = ("Demo Admin", "Demo Operations", "Demo Marketing")
DEFAULT_SEED = 2026
DEFAULT_CUSTOMERS = 120
DEFAULT_BOOKINGS_PER_CUSTOMER = 4
# The SmartEngage default cadence: customers whose last completed booking is this old get a reminder.
CAMPAIGN_CADENCE_DAYS = 21
# An arrival more than this many minutes after the scheduled time is late (CoachNova's view).
LATE_AFTER_MINUTES = 10
WORKER_COUNT = 10
LEADS_PER_STAGE = 8
COPY_CHUNK_CUSTOMERS = 20_000
# From this many new customers on, PostgreSQL loads with foreign keys and plain indexes put back at the end.
FAST_LOAD_MIN_CUSTOMERS = 20_000

# Demo phones are numbered: the prefix says what a contact is, the last 8 digits are its index.
CUSTOMER_PHONE_PREFIX = "+88017"
WORKER_PHONE_PREFIX = "+88019"
LEAD_PHONE_PREFIX = "+88018"

SERVICES = (
    # name, name_bn, category, base price (BDT), duration in minutes
    ("Home Cleaning", "হোম ক্লিনিং", "cleaning", Decimal("1500.00"), 180),
    ("AC Servicing", "এসি সার্ভিসিং", "appliance", Decimal("1200.00"), 90),
    ("Plumbing", "প্লাম্বিং", "repair", Decimal("800.00"), 60),
    ("Electrical", "ইলেকট্রিক্যাল", "repair", Decimal("700.00"), 60),
    ("Pest Control", "পেস্ট কন্ট্রোল", "cleaning", Decimal("2500.00"), 120),
    ("Sofa Cleaning", "সোফা ক্লিনিং", "cleaning", Decimal("1800.00"), 120),
)
FIRST_NAMES = (
    "রহিম", "করিম", "সাদিয়া", "নুসরাত", "তানভীর", "ফারহানা", "আরিফ", "মিতু",
    "রাকিব", "সুমাইয়া", "জাহিদ", "তাসলিমা", "মাহমুদ", "রুমানা", "শাকিল", "নাজমা",
)
LAST_NAMES = ("আহমেদ", "হোসেন", "ইসলাম", "রহমান", "চৌধুরী", "খান", "সরকার", "দাস", "মিয়া", "বেগম")
ZONES = ("Dhanmondi", "Gulshan", "Mirpur", "Uttara", "Mohammadpur", "Banani", "Bashundhara")
LEAD_SOURCES = ("website", "facebook", "whatsapp", "referral", "youtube")
LEAD_CHANNELS = (Channel.WHATSAPP_CLOUD, Channel.SMS, Channel.EMAIL, Channel.WHATSAPP_WEB)
COURSES = ("IELTS Preparation", "Spoken English", "Python for Beginners", "Graphic Design", "Digital Marketing")

# What the last completed booking of a customer looks like, by share of customers.
RECENCY_PROFILES = (
    ("campaign_due", 0.25),  # exactly CAMPAIGN_CADENCE_DAYS ago: today's campaign finds them
    ("recent", 0.27),  # 1-14 days ago, some with an upcoming booking
    ("lapsing", 0.28),  # 22-60 days ago: the demo's win-back campaign (28-58 days) reminds most of them
    ("dormant", 0.15),  # 61-365 days ago
    ("new", 0.05),  # only an upcoming booking, never completed one
)


@dataclass
class DemoResult:
    """What a seed run did, for the command to print."""

    base_time: dt.datetime
    created: dict[str, int] = field(default_factory=dict)
    api_keys: dict[str, str] = field(default_factory=dict)  # company slug -> raw key (only when created)
    logins: list[tuple[str, str, str]] = field(default_factory=list)  # (role, email, password or note)

    def count(self, name: str, number: int = 1) -> None:
        if number:
            self.created[name] = self.created.get(name, 0) + number


def demo_base_time(*, now: dt.datetime | dt.date | None = None) -> dt.datetime:
    """The fixed clock of the demo data: midnight UTC of `now`'s day (today when None)."""
    if now is None:
        now = dt.datetime.now(dt.UTC)
    day = now.date() if isinstance(now, dt.datetime) else now
    if isinstance(now, dt.datetime) and now.tzinfo is not None:
        day = now.astimezone(dt.UTC).date()
    return dt.datetime.combine(day, dt.time(0, 0), tzinfo=dt.UTC)


def demo_seed(
    *,
    now: dt.datetime | dt.date | None = None,
    seed: int = DEFAULT_SEED,
    customers: int = DEFAULT_CUSTOMERS,
    bookings_per_customer: int = DEFAULT_BOOKINGS_PER_CUSTOMER,
    admin_password: str | None = None,
) -> DemoResult:
    """Create whatever part of the demo data is missing; a rerun with the same arguments writes nothing."""
    if customers < 0 or bookings_per_customer < 1:
        raise ValueError("customers must be >= 0 and bookings_per_customer >= 1")
    result = DemoResult(base_time=demo_base_time(now=now))
    if admin_password is None:
        admin_password = os.environ.get("DEMO_ADMIN_PASSWORD") or None
    with transaction.atomic():
        home = _company_get_or_create(slug=HOME_SERVICES_SLUG, name="Sheba Home Services (demo)", result=result)
        courses = _company_get_or_create(slug=COURSES_SLUG, name="Shikkha Courses (demo)", result=result)
        _staff_seed(companies=[home, courses], admin_password=admin_password, result=result)
        services = _services_seed(company=home, result=result)
        workers = _workers_seed(company=home, seed=seed, base_time=result.base_time, result=result)
        _leads_seed(company=courses, seed=seed, base_time=result.base_time, result=result)
    # Volume in its own transaction: everything above stays if a huge load is interrupted.
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # A 1M-customer load builds indexes for minutes: lift the web's statement timeout here only.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL statement_timeout = 0")
        _customers_seed(
            company=home,
            services=services,
            workers=workers,
            seed=seed,
            base_time=result.base_time,
            customers=customers,
            bookings_per_customer=bookings_per_customer,
            result=result,
        )
    if result.created.get("bookings") and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Fresh statistics: the admin's estimated counts and the planner read them.
            cursor.execute("ANALYZE crm_contact, crm_customer, crm_booking")
    return result


# --- companies, people, keys ---------------------------------------------------------


def _company_get_or_create(*, slug: str, name: str, result: DemoResult) -> Company:
    company, created = Company.objects.get_or_create(
        slug=slug,
        defaults={
            "name": name, "default_region": "BD", "timezone": "Asia/Dhaka", "created_at": result.base_time,
            # Marketing email needs the sender's postal address (channels_app's email adapter).
            "postal_address": "House 12, Road 5, Dhanmondi, Dhaka 1205, Bangladesh",
        },
    )
    if created:
        result.count("companies")
    if not ApiKey.objects.filter(company=company, name=API_KEY_NAME, revoked_at__isnull=True).exists():
        _, raw_key = api_key_create(company=company, name=API_KEY_NAME)
        result.api_keys[slug] = raw_key
        result.count("api_keys")
    return company


def _password_file() -> Path:
    return Path(settings.VAR_DIR) / "demo-admin-password"


def _staff_seed(*, companies: Sequence[Company], admin_password: str | None, result: DemoResult) -> None:
    """The admin (superuser), an Operations and a Marketing staff user; all three share the demo password."""
    password = admin_password or _stored_password()
    people = (
        ("admin", ADMIN_EMAIL, STAFF_NAMES[ADMIN_EMAIL], None, None),
        ("operations", OPERATIONS_EMAIL, STAFF_NAMES[OPERATIONS_EMAIL], "Operations", Membership.Role.OPERATIONS),
        ("marketing", MARKETING_EMAIL, STAFF_NAMES[MARKETING_EMAIL], "Marketing", Membership.Role.MARKETING),
    )
    for label, email, full_name, group_name, role in people:
        user = User.objects.filter(email=email).first()
        if user is not None and user.full_name in OLD_STAFF_NAMES:
            # Demo data of an earlier version greeted everyone as "Demo ...".
            user.full_name = full_name
            user.save(update_fields=["full_name"])
            result.count("users renamed")
        if user is None:
            password = password or _generated_password()
            extra = {"full_name": full_name, "date_joined": result.base_time}
            if group_name is None:
                user = User.objects.create_superuser(email=email, password=password, **extra)
            else:
                user = User.objects.create_user(email=email, password=password, is_staff=True, **extra)
            result.count("users")
            result.logins.append((label, email, password))
        elif admin_password and not user.check_password(admin_password):
            user.set_password(admin_password)
            user.save(update_fields=["password"])
            result.logins.append((label, email, admin_password))
        elif password and user.check_password(password):
            result.logins.append((label, email, password))
        else:
            result.logins.append((label, email, "(unchanged; set DEMO_ADMIN_PASSWORD to reset it)"))
        if group_name is None:
            continue
        group, group_created = Group.objects.get_or_create(name=group_name)
        result.count("groups", int(group_created))
        if not user.groups.filter(pk=group.pk).exists():
            user.groups.add(group)
        for company in companies:
            _, created = Membership.objects.get_or_create(user=user, company=company, defaults={"role": role})
            result.count("memberships", int(created))


def _stored_password() -> str | None:
    path = _password_file()
    return path.read_text().strip() if path.exists() else None


def _generated_password() -> str:
    """A new demo password, kept in var/ (0600) so `make run` can print it again."""
    path = _password_file()
    password = secrets.token_urlsafe(12)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(password + "\n")
    return password


# --- home services: services, workers ------------------------------------------------


def _services_seed(*, company: Company, result: DemoResult) -> list[Service]:
    services = []
    for name, name_bn, category, price, minutes in SERVICES:
        service, created = Service.objects.get_or_create(
            company=company,
            name=name,
            defaults={"name_bn": name_bn, "category": category, "base_price": price, "duration_minutes": minutes},
        )
        result.count("services", int(created))
        services.append(service)
    return services


def _person_name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def _workers_seed(*, company: Company, seed: int, base_time: dt.datetime, result: DemoResult) -> list[Worker]:
    """Ten workers; the even-numbered ones are punctual, the odd-numbered ones are often late."""
    workers = []
    for index in range(WORKER_COUNT):
        rng = random.Random(f"{seed}:worker:{index}")
        phone = f"{WORKER_PHONE_PREFIX}{index:08d}"
        contact = Contact.objects.filter(company=company, phone=phone).first()
        if contact is None:
            contact = Contact.objects.create(
                company=company,
                name=_person_name(rng),
                phone=phone,
                email=f"worker{index}@sheba-demo.test",
                is_sms_consented=True,
                is_whatsapp_consented=rng.random() < 0.8,
                created_at=base_time - dt.timedelta(days=400),
            )
            result.count("contacts")
        worker = Worker.objects.filter(contact=contact).first()
        if worker is None:
            worker = Worker.objects.create(
                company=company,
                contact=contact,
                skills=sorted(rng.sample([s[2] for s in SERVICES], 2)),
                zones=sorted(rng.sample(ZONES, 2)),
                ratings_avg=Decimal(f"{rng.uniform(3.6, 4.9):.2f}"),
                created_at=base_time - dt.timedelta(days=400),
            )
            result.count("workers")
        workers.append(worker)
    return workers


def worker_is_punctual(*, index: int) -> bool:
    """Which demo workers arrive on time (the others are late more often than not)."""
    return index % 2 == 0


# --- course company: pipeline and leads -----------------------------------------------


def _leads_seed(*, company: Company, seed: int, base_time: dt.datetime, result: DemoResult) -> None:
    """Leads in every stage of the default pipeline, each with its `lead.created` event."""
    pipeline = pipeline_get_or_create_default(company=company)
    stages = list(pipeline.stages.order_by("order"))
    owner = User.objects.filter(email=MARKETING_EMAIL).first()
    status_by_kind = {Stage.Kind.WON: Lead.Status.WON, Stage.Kind.LOST: Lead.Status.LOST}
    index = 0
    for stage in stages:
        for _ in range(LEADS_PER_STAGE):
            rng = random.Random(f"{seed}:lead:{index}")
            phone = f"{LEAD_PHONE_PREFIX}{index:08d}"
            index += 1
            if Contact.objects.filter(company=company, phone=phone).exists():
                continue
            created_at = base_time - dt.timedelta(days=rng.randint(0, 45), minutes=rng.randint(0, 24 * 60))
            contact = Contact.objects.create(
                company=company,
                name=_person_name(rng),
                phone=phone,
                email=f"lead{index}@course-demo.test" if rng.random() < 0.6 else "",
                is_email_consented=rng.random() < 0.5,
                is_sms_consented=rng.random() < 0.7,
                is_whatsapp_consented=rng.random() < 0.8,
                created_at=created_at,
            )
            course = rng.choice(COURSES)
            lead = Lead.objects.create(
                company=company,
                contact=contact,
                pipeline=pipeline,
                stage=stage,
                status=status_by_kind.get(stage.kind, Lead.Status.OPEN),
                channel=rng.choice(LEAD_CHANNELS),
                source=rng.choice(LEAD_SOURCES),
                owner=owner if stage.order > 1 else None,
                summary=f"Asked about the {course} course." if stage.order > 1 else "",
                score=rng.randint(5, 95),
                created_at=created_at,
            )
            Event.objects.create(
                company=company,
                type="lead.created",
                contact=contact,
                target_type_id=_content_type_id(Lead),
                target_id=str(lead.pk),
                payload={"source": lead.source, "channel": lead.channel, "course": course},
                source="seed_demo",
                occurred_at=created_at,
            )
            result.count("contacts")
            result.count("leads")
            result.count("events")


def _content_type_id(model: type[models.Model]) -> int:
    from django.contrib.contenttypes.models import ContentType

    return ContentType.objects.get_for_model(model).pk


# --- home services: the customer volume ---------------------------------------------------


@dataclass
class _CustomerRows:
    contacts: list[tuple] = field(default_factory=list)
    customers: list[tuple] = field(default_factory=list)
    typical_services: list[tuple] = field(default_factory=list)
    bookings: list[tuple] = field(default_factory=list)


CONTACT_COLUMNS = (
    "id", "company_id", "name", "phone", "email", "locale", "timezone", "is_email_consented",
    "is_sms_consented", "is_whatsapp_consented", "consent_updated_at", "created_at", "updated_at",
)
CUSTOMER_COLUMNS = ("id", "company_id", "contact_id", "last_booking_at", "created_at")
TYPICAL_SERVICE_COLUMNS = ("customer_id", "service_id")
BOOKING_COLUMNS = (
    "id", "company_id", "customer_id", "worker_id", "service_id", "status", "scheduled_at", "arrived_at",
    "finished_at", "rating", "price", "created_at",
)
EVENT_COLUMNS = ("company_id", "type", "contact_id", "target_type_id", "target_id", "payload", "source", "occurred_at")


def _recency_profile(rng: random.Random) -> str:
    draw = rng.random()
    for name, share in RECENCY_PROFILES:
        if draw < share:
            return name
        draw -= share
    return RECENCY_PROFILES[-1][0]


def _customer_rows(
    *,
    index: int,
    seed: int,
    company_id: int,
    contact_id: int,
    customer_id: int,
    base_time: dt.datetime,
    bookings_per_customer: int,
    services: Sequence[Service],
    workers: Sequence[tuple[int, bool]],
    rows: _CustomerRows,
) -> None:
    """Append the rows of customer number `index`; the same index always gives the same rows."""
    rng = random.Random(seed * 1_000_003 + index)
    profile = _recency_profile(rng)
    joined_at = base_time - dt.timedelta(days=400 + rng.randint(0, 300))
    rows.contacts.append(
        (
            contact_id, company_id, _person_name(rng), f"{CUSTOMER_PHONE_PREFIX}{index:08d}",
            f"customer{index}@sheba-demo.test" if rng.random() < 0.7 else "", "bn", "Asia/Dhaka",
            rng.random() < 0.4, rng.random() < 0.85, rng.random() < 0.65, joined_at, joined_at, joined_at,
        )
    )
    usual_service = rng.choice(services)
    rows.typical_services.append((customer_id, usual_service.pk))

    # Days before the base time of the last completed booking (None: never completed one).
    if profile == "campaign_due":
        last_days = CAMPAIGN_CADENCE_DAYS
    elif profile == "recent":
        last_days = rng.randint(1, 14)
    elif profile == "lapsing":
        last_days = rng.randint(CAMPAIGN_CADENCE_DAYS + 1, 60)
    elif profile == "dormant":
        last_days = rng.randint(61, 365)
    else:
        last_days = None
    has_upcoming = profile == "new" or (profile == "recent" and rng.random() < 0.3)
    completed_count = 0 if last_days is None else bookings_per_customer - int(has_upcoming)

    last_finished_at = None
    day_offset = last_days or 0
    for number in range(completed_count):
        if number:
            day_offset += rng.randint(14, 40)
        service = usual_service if rng.random() < 0.7 else rng.choice(services)
        # Daytime in Dhaka (UTC+6): 03:00-09:00 UTC is 09:00-15:00 there. A booking due for
        # today's campaign starts early (07:00-08:00 in Dhaka), so that even a late arrival and
        # a long job finish before the daily 09:00 UTC run: exactly CAMPAIGN_CADENCE_DAYS old then.
        start_hour = rng.randint(1, 2) if number == 0 and profile == "campaign_due" else rng.randint(3, 9)
        scheduled_at = base_time - dt.timedelta(days=day_offset) + dt.timedelta(hours=start_hour)
        worker_id, is_punctual = rng.choice(workers)
        is_cancelled = number > 0 and rng.random() < 0.08
        if is_cancelled:
            rows.bookings.append(
                (company_id, customer_id, worker_id, service.pk, Booking.Status.CANCELLED, scheduled_at,
                 None, None, None, service.base_price, scheduled_at - dt.timedelta(days=2))
            )
            continue
        if is_punctual:
            late_minutes = rng.randint(-10, 5) if rng.random() < 0.92 else rng.randint(15, 40)
        else:
            late_minutes = rng.randint(15, 75) if rng.random() < 0.7 else rng.randint(-5, 5)
        arrived_at = scheduled_at + dt.timedelta(minutes=late_minutes)
        finished_at = arrived_at + dt.timedelta(minutes=service.duration_minutes + rng.randint(-15, 30))
        if number == 0:
            last_finished_at = finished_at
        rows.bookings.append(
            (company_id, customer_id, worker_id, service.pk, Booking.Status.COMPLETED, scheduled_at,
             arrived_at, finished_at, rng.choice((3, 4, 4, 5, 5, 5, None)), service.base_price,
             scheduled_at - dt.timedelta(days=rng.randint(1, 5)))
        )
    if has_upcoming or completed_count == 0:
        scheduled_at = base_time + dt.timedelta(days=rng.randint(1, 10), hours=rng.randint(3, 9))
        worker_id, _ = rng.choice(workers)
        rows.bookings.append(
            (company_id, customer_id, worker_id, usual_service.pk, Booking.Status.SCHEDULED, scheduled_at,
             None, None, None, usual_service.base_price, base_time - dt.timedelta(days=1))
        )
    rows.customers.append((customer_id, company_id, contact_id, last_finished_at, joined_at))


def _customers_seed(
    *,
    company: Company,
    services: Sequence[Service],
    workers: Sequence[Worker],
    seed: int,
    base_time: dt.datetime,
    customers: int,
    bookings_per_customer: int,
    result: DemoResult,
) -> None:
    """Customers number 0..customers-1, each with its bookings; only the missing tail is written."""
    # Demo customers are written in index order in one transaction, so the highest
    # demo phone tells how many exist; the unique (company, phone) index answers it.
    highest = (
        Contact.objects.filter(company=company, phone__startswith=CUSTOMER_PHONE_PREFIX)
        .exclude(phone="")  # the predicate of that partial index
        .aggregate(highest=Max("phone"))["highest"]
    )
    first_index = 0 if highest is None else int(highest[len(CUSTOMER_PHONE_PREFIX):]) + 1
    if first_index >= customers:
        return
    worker_profiles = [
        (worker.pk, worker_is_punctual(index=int(worker.contact.phone[len(WORKER_PHONE_PREFIX):])))
        for worker in Worker.objects.filter(pk__in=[w.pk for w in workers]).select_related("contact")
    ]
    worker_profiles.sort()
    count = customers - first_index
    contact_ids = _reserve_ids(Contact, count)
    customer_ids = _reserve_ids(Customer, count)
    typical_model = Customer.typical_services.through
    tables = [model._meta.db_table for model in (Contact, Customer, typical_model, Booking, Event)]
    with _constraints_deferred_to_end(tables=tables, is_large=count >= FAST_LOAD_MIN_CUSTOMERS):
        for chunk_start in range(0, count, COPY_CHUNK_CUSTOMERS):
            _customer_chunk_write(
                first_index=first_index,
                offsets=range(chunk_start, min(count, chunk_start + COPY_CHUNK_CUSTOMERS)),
                contact_ids=contact_ids,
                customer_ids=customer_ids,
                seed=seed,
                company=company,
                base_time=base_time,
                bookings_per_customer=bookings_per_customer,
                services=services,
                workers=worker_profiles,
                result=result,
            )


def _customer_chunk_write(
    *,
    first_index: int,
    offsets: range,
    contact_ids: range,
    customer_ids: range,
    seed: int,
    company: Company,
    base_time: dt.datetime,
    bookings_per_customer: int,
    services: Sequence[Service],
    workers: Sequence[tuple[int, bool]],
    result: DemoResult,
) -> None:
    rows = _CustomerRows()
    for offset in offsets:
        _customer_rows(
            index=first_index + offset,
            seed=seed,
            company_id=company.pk,
            contact_id=contact_ids[offset],
            customer_id=customer_ids[offset],
            base_time=base_time,
            bookings_per_customer=bookings_per_customer,
            services=services,
            workers=workers,
            rows=rows,
        )
    _rows_write(Contact, CONTACT_COLUMNS, rows.contacts)
    _rows_write(Customer, CUSTOMER_COLUMNS, rows.customers)
    _rows_write(Customer.typical_services.through, TYPICAL_SERVICE_COLUMNS, rows.typical_services)
    bookings, events = _bookings_with_events(rows=rows)
    _rows_write(Booking, BOOKING_COLUMNS, bookings)
    _rows_write(Event, EVENT_COLUMNS, events)
    result.count("contacts", len(rows.contacts))
    result.count("customers", len(rows.customers))
    result.count("bookings", len(bookings))
    result.count("events", len(events))


def _bookings_with_events(*, rows: _CustomerRows) -> tuple[list[tuple], list[tuple]]:
    """The chunk's booking rows with fresh ids, and the `booking_created` event `booking_create` records for each."""
    if not rows.bookings:
        return [], []
    contact_by_customer = {customer[0]: customer[2] for customer in rows.customers}
    booking_type_id = _content_type_id(Booking)
    bookings, events = [], []
    for booking_id, row in zip(_reserve_ids(Booking, len(rows.bookings)), rows.bookings, strict=True):
        company_id, customer_id, _, service_id, status, scheduled_at, *_, created_at = row
        bookings.append((booking_id, *row))
        payload = booking_created_payload(
            booking_id=booking_id, service_id=service_id, scheduled_at=scheduled_at, status=status
        )
        events.append(
            (company_id, BOOKING_CREATED, contact_by_customer[customer_id], booking_type_id, str(booking_id),
             _jsonb(payload), "seed_demo", created_at)
        )
    return bookings, events


def _jsonb(value: dict):
    if connection.vendor == "postgresql":
        from psycopg.types.json import Jsonb

        return Jsonb(value)
    return value


@contextmanager
def _constraints_deferred_to_end(*, tables: Sequence[str], is_large: bool) -> Iterator[None]:
    """On PostgreSQL, for a large load: drop foreign keys and plain indexes, put them back after.

    Checking a foreign key per row and growing eight indexes row by row cost more
    than the load itself; re-adding a foreign key checks the whole table in one
    join, and an index built at the end is one sort. It all happens inside the
    caller's transaction, so other sessions never see the tables without them.
    Unique indexes and primary keys stay: uniqueness is checked as rows arrive.
    """
    if not is_large or connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        # Fire checks still pending in this transaction: ALTER TABLE refuses to run past them.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        cursor.execute(
            """
            SELECT con.conrelid::regclass::text, con.conname, pg_get_constraintdef(con.oid)
            FROM pg_constraint con
            WHERE con.contype = 'f' AND con.conrelid = ANY(%s::regclass[])
            ORDER BY con.conname
            """,
            [list(tables)],
        )
        foreign_keys = cursor.fetchall()
        cursor.execute(
            """
            SELECT idx.indexrelid::regclass::text, pg_get_indexdef(idx.indexrelid)
            FROM pg_index idx
            WHERE idx.indrelid = ANY(%s::regclass[]) AND NOT idx.indisunique AND NOT idx.indisprimary
              AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = idx.indexrelid)
            ORDER BY 1
            """,
            [list(tables)],
        )
        indexes = cursor.fetchall()
        quote = connection.ops.quote_name
        for table, name, _ in foreign_keys:
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {quote(name)}")
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {name}")
    yield
    with connection.cursor() as cursor:
        for _, definition in indexes:
            cursor.execute(definition)
        for table, name, definition in foreign_keys:
            cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {quote(name)} {definition}")


def _reserve_ids(model: type[models.Model], count: int) -> range:
    """A block of `count` fresh primary keys of `model` (inside the caller's transaction)."""
    table = model._meta.db_table
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The lock keeps other inserts from drawing from the sequence while we move it.
            cursor.execute(f"LOCK TABLE {quote(table)} IN SHARE ROW EXCLUSIVE MODE")
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            (sequence,) = cursor.fetchone()
            cursor.execute("SELECT nextval(%s)", [sequence])
            (first,) = cursor.fetchone()
            cursor.execute("SELECT setval(%s, %s)", [sequence, first + count - 1])
        else:
            # SQLite writes under one lock per transaction (transaction_mode IMMEDIATE).
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {quote(table)}")
            (first,) = cursor.fetchone()
    return range(first, first + count)


def _rows_write(model: type[models.Model], columns: Sequence[str], rows: Sequence[tuple]) -> None:
    """Insert `rows` (values of `columns`); other columns get their model default."""
    if not rows:
        return
    fields = [f for f in model._meta.concrete_fields if not (f.primary_key and f.column not in columns)]
    missing = [f for f in fields if f.column not in columns]
    if connection.vendor == "postgresql":
        all_columns = list(columns) + [f.column for f in missing]
        defaults = tuple(f.get_db_prep_save(f.get_default(), connection) for f in missing)
        quote = connection.ops.quote_name
        table = model._meta.db_table
        statement = f"COPY {quote(table)} ({', '.join(map(quote, all_columns))}) FROM STDIN (FORMAT BINARY)"
        with connection.connection.cursor() as cursor:
            cursor.execute(
                "SELECT attname, atttypid::regtype::text FROM pg_attribute WHERE attrelid = %s::regclass",
                [table],
            )
            type_by_column = dict(cursor.fetchall())
            with cursor.copy(statement) as copy:
                # Binary COPY: no text formatting and parsing on either side.
                copy.set_types([type_by_column[column] for column in all_columns])
                for row in rows:
                    copy.write_row(row + defaults if defaults else row)
        return
    attnames = [_attname(model, column) for column in columns]
    model._default_manager.bulk_create(
        (model(**dict(zip(attnames, row, strict=True))) for row in rows), batch_size=500
    )


def _attname(model: type[models.Model], column: str) -> str:
    for model_field in model._meta.concrete_fields:
        if model_field.column == column:
            return model_field.attname
    raise LookupError(f"{model.__name__} has no column {column}")

