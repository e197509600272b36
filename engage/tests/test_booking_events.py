"""A booking made in the CRM records `booking_created`, once per booking, and the campaign funnel counts it."""

import datetime as dt
import uuid

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from crm import services as crm_services
from crm.feed.services import booking_create
from crm.models import Booking, Customer, Event
from crm.tests.factories import CustomerFactory, ServiceFactory, WorkerFactory
from engage.campaigns.attribution import BOOKING_CREATED, booking_attributed_message, funnel_counts, user_event_record
from engage.models import Message

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()  # the policy (attribution window) is cached per company id
    yield
    cache.clear()


@pytest.fixture
def customer(company):
    return CustomerFactory(company=company)


@pytest.fixture
def service(company):
    return ServiceFactory(company=company)


def book(customer, service, **extra):
    return booking_create(
        company=customer.company, customer=customer, service=service,
        scheduled_at=timezone.now() + dt.timedelta(days=2), **extra,
    )


def test_crm_and_engage_name_the_event_alike():
    assert crm_services.BOOKING_CREATED == BOOKING_CREATED


def test_booking_create_records_booking_created_for_the_customers_contact(customer, service):
    booking = book(customer, service)

    event = Event.objects.get(type=BOOKING_CREATED)
    assert (event.contact, event.target, event.occurred_at, event.company) == (
        customer.contact, booking, booking.created_at, customer.company
    )
    assert event.payload["booking_id"] == booking.pk and event.payload["service_id"] == service.pk


def test_a_booking_created_completed_moves_the_customers_last_booking(customer, service):
    finished_at = timezone.now() - dt.timedelta(hours=1)
    book(customer, service, status=Booking.Status.COMPLETED, finished_at=finished_at)

    assert Customer.objects.get(pk=customer.pk).last_booking_at == finished_at


def test_parts_of_another_company_are_refused(customer, service, other_company):
    foreign_worker = WorkerFactory(company=other_company)
    with pytest.raises(ValidationError):
        book(customer, service, worker=foreign_worker)
    with pytest.raises(ValidationError):
        book(customer, ServiceFactory(company=other_company))
    assert not Booking.objects.exists() and not Event.objects.exists()


def test_a_crm_booking_after_a_click_is_booked_in_the_funnel(customer, service, company):
    message = Message.objects.create(
        company=company, contact=customer.contact, direction=Message.Direction.OUTBOUND, channel="email",
        agent_type="smartengage", message_type="reminder", body="...", status=Message.Status.DELIVERED,
        correlation_id=uuid.uuid4(),
    )
    user_event_record(
        company=company, event_type="message_clicked", contact=customer.contact,
        correlation_id=message.correlation_id, occurred_at=timezone.now() - dt.timedelta(hours=2),
    )
    assert funnel_counts(company=company)["booked"] == 0

    book(customer, service)

    assert funnel_counts(company=company)["booked"] == 1
    assert booking_attributed_message(booking_event=Event.objects.get(type=BOOKING_CREATED)) == message


def test_the_app_reporting_the_same_booking_records_nothing_more(customer, service, company):
    booking = book(customer, service)

    reported = user_event_record(
        company=company, event_type=BOOKING_CREATED, contact=customer.contact, source="app",
        metadata={"booking_id": str(booking.pk)},
    )

    assert Event.objects.filter(type=BOOKING_CREATED).count() == 1
    assert reported.target == booking


def test_a_booking_the_app_reported_first_is_not_recorded_again_by_the_crm(customer, service, company):
    first = book(customer, service)
    other = CustomerFactory(company=company)
    # the app reports the booking it just made before the CRM row exists (the next id)
    app_event = user_event_record(
        company=company, event_type=BOOKING_CREATED, contact=other.contact, source="app",
        metadata={"booking_id": first.pk + 1},
    )

    booking = book(other, service)

    assert booking.pk == first.pk + 1
    assert list(Event.objects.filter(type=BOOKING_CREATED, contact=other.contact)) == [app_event]
    assert Event.objects.filter(type=BOOKING_CREATED).count() == 2


def test_a_booking_added_in_the_admin_records_booking_created(client, staff_user, customer, service, company):
    client.force_login(staff_user)
    scheduled = timezone.now() + dt.timedelta(days=1)
    response = client.post(
        reverse("admin:crm_booking_add"),
        {"company": company.pk, "customer": customer.pk, "service": service.pk, "status": "scheduled",
         "scheduled_at_0": scheduled.strftime("%Y-%m-%d"), "scheduled_at_1": scheduled.strftime("%H:%M:%S")},
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    booking = Booking.objects.get()
    event = Event.objects.get(type=BOOKING_CREATED)
    assert (event.target, event.contact, event.actor, event.source) == (booking, customer.contact, staff_user, "admin")
