"""POST /events (JWT) and attribution: clicks, bookings within the window, the funnel."""

import datetime as dt
import uuid

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from crm.auth import token_pair_for
from crm.models import Event, User
from crm.tests.factories import CustomerFactory
from engage.campaigns.attribution import (
    booking_attributed_message,
    funnel_counts,
    messages_with_funnel,
    user_event_record,
)
from engage.models import EngagementPolicy, Message
from shokti.metrics import user_events_total


def outbound(customer, *, status=Message.Status.SENT, correlation_id=None, agent_type="smartengage"):
    return Message.objects.create(
        company=customer.company, contact=customer.contact, direction=Message.Direction.OUTBOUND,
        channel="email", agent_type=agent_type, message_type="reminder", body="...",
        status=status, correlation_id=correlation_id or uuid.uuid4(),
    )


def app_client(customer) -> APIClient:
    user = User.objects.create_user(email=customer.contact.email)
    customer.contact.user = user
    customer.contact.save(update_fields=["user"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(user=user, user_type='customer').access_token}")
    return client


@pytest.fixture
def customer(company):
    return CustomerFactory(company=company)


def counter_value(**labels) -> float:
    return user_events_total.labels(**labels)._value.get()


def test_click_is_accepted_recorded_and_counted(customer):
    message = outbound(customer)
    client = app_client(customer)
    labels = {"event_type": "message_clicked", "agent_type": "smartengage", "channel": "email", "source": "app"}
    before = counter_value(**labels)

    response = client.post(
        "/events",
        {"event_type": "message_clicked", "correlation_id": str(message.correlation_id), "metadata": {"button": "book"}},
        format="json",
    )

    assert response.status_code == 202
    assert response.json() == {"status": "accepted", "event_id": response.json()["event_id"]}
    event = Event.objects.get(pk=response.json()["event_id"])
    assert (event.type, event.contact, event.correlation_id, event.target) == (
        "message_clicked", customer.contact, message.correlation_id, message,
    )
    assert event.payload == {"button": "book", "message_id": message.pk}
    assert event.actor == customer.contact.user
    assert counter_value(**labels) == before + 1


def test_a_booking_needs_no_correlation_id(customer):
    response = app_client(customer).post("/events", {"event_type": "booking_created", "metadata": {"booking_id": 7}}, format="json")

    assert response.status_code == 202
    assert Event.objects.get(type="booking_created").contact == customer.contact


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"event_type": "password_changed"}, "event_type"),
        ({"event_type": "message_clicked"}, "correlation_id"),
        ({"event_type": "message_clicked", "correlation_id": "not-a-uuid"}, "correlation_id"),
        ({"event_type": "message_clicked", "correlation_id": str(uuid.uuid4())}, "correlation_id"),
        ({"event_type": "notification_opened", "correlation_id": str(uuid.uuid4()), "metadata": "x"}, "metadata"),
    ],
)
def test_bad_events_are_400_and_write_nothing(customer, body, field):
    outbound(customer)

    response = app_client(customer).post("/events", body, format="json")

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not Event.objects.exists()


def test_three_people_and_foreign_correlation_ids(customer, other_company, jwt_client, other_staff_user):
    message = outbound(customer)
    body = {"event_type": "notification_opened", "correlation_id": str(message.correlation_id)}
    stranger = app_client(CustomerFactory(company=other_company))
    same_company_other_customer = app_client(CustomerFactory(company=customer.company))
    bob = APIClient()
    bob.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(user=other_staff_user, user_type='staff').access_token}")

    assert stranger.post("/events", body, format="json").status_code == 400
    assert same_company_other_customer.post("/events", body, format="json").status_code == 400
    assert bob.post("/events", body, format="json").status_code == 400
    assert APIClient().post("/events", body, format="json").status_code == 401
    assert not Event.objects.exists()
    # Alice, staff of the message's company, may report it (e.g. from a provider's open pixel).
    allowed = jwt_client.post("/events", body, format="json")
    assert allowed.status_code == 202
    assert Event.objects.get().contact == customer.contact


# --- Attribution ---------------------------------------------------------------------------------


def record(customer, event_type, *, at, message=None):
    return user_event_record(
        company=customer.company, event_type=event_type, contact=customer.contact,
        correlation_id=message.correlation_id if message else None, occurred_at=at,
    )


def test_a_booking_within_the_window_after_a_click_converts_for_the_last_clicked_message(customer):
    now = timezone.now()
    first, second = outbound(customer), outbound(customer)
    record(customer, "message_clicked", at=now - dt.timedelta(hours=50), message=first)
    record(customer, "deeplink_followed", at=now - dt.timedelta(hours=10), message=second)
    booking = record(customer, "booking_created", at=now)

    assert booking_attributed_message(booking_event=booking) == second


def test_a_booking_outside_the_window_converts_for_nobody(customer):
    now = timezone.now()
    message = outbound(customer)
    record(customer, "message_clicked", at=now - dt.timedelta(hours=73), message=message)
    booking = record(customer, "booking_created", at=now)

    assert booking_attributed_message(booking_event=booking) is None


def test_the_window_comes_from_the_company_policy(customer):
    now = timezone.now()
    message = outbound(customer)
    record(customer, "message_clicked", at=now - dt.timedelta(hours=80), message=message)
    booking = record(customer, "booking_created", at=now)
    from engage.policy.services import policy_get_or_create

    policy = policy_get_or_create(company=customer.company)
    policy.attribution_window_hours = 96
    policy.save()

    assert EngagementPolicy.objects.get(company=customer.company).attribution_window_hours == 96
    assert booking_attributed_message(booking_event=booking) == message


def test_funnel_sent_delivered_opened_clicked_booked(customer, company):
    now = timezone.now()
    other = CustomerFactory(company=company)
    booked = outbound(customer, status=Message.Status.DELIVERED)
    clicked_only = outbound(other, status=Message.Status.READ)
    sent_only = outbound(customer, status=Message.Status.SENT)
    outbound(customer, status=Message.Status.FAILED)
    record(customer, "notification_opened", at=now - dt.timedelta(hours=5), message=booked)
    record(customer, "message_clicked", at=now - dt.timedelta(hours=4), message=booked)
    record(customer, "booking_created", at=now - dt.timedelta(hours=1))
    record(other, "notification_opened", at=now - dt.timedelta(hours=5), message=clicked_only)
    record(other, "message_clicked", at=now - dt.timedelta(hours=4), message=clicked_only)
    # A booking before the click is not a conversion.
    record(other, "booking_created", at=now - dt.timedelta(hours=6))

    counts = funnel_counts(company=company)

    assert counts == {"sent": 3, "delivered": 2, "opened": 2, "clicked": 2, "booked": 1}
    assert funnel_counts(company=company, messages=Message.objects.filter(pk=sent_only.pk)) == {
        "sent": 1, "delivered": 0, "opened": 0, "clicked": 0, "booked": 0,
    }


def assert_one_rule(company, *, booked):
    """Both faces of attribution agree: the messages the bookings convert for are the funnel's booked ones."""
    bookings = Event.objects.filter(company=company, type="booking_created")
    by_booking = {booking_attributed_message(booking_event=booking) for booking in bookings} - {None}
    by_funnel = {message for message in messages_with_funnel(company=company) if message.is_booked}
    assert by_booking == by_funnel == set(booked)


def test_two_clicks_on_two_messages_the_last_one_converts_in_both_views(customer, company):
    now = timezone.now()
    first, second = outbound(customer), outbound(customer)
    record(customer, "message_clicked", at=now - dt.timedelta(hours=5), message=first)
    record(customer, "message_clicked", at=now - dt.timedelta(hours=3), message=second)
    record(customer, "booking_created", at=now)

    assert_one_rule(company, booked=[second])
    assert funnel_counts(company=company)["booked"] == 1
    # as two campaigns' funnels: the conversion is the second one's only
    assert funnel_counts(company=company, messages=Message.objects.filter(pk=first.pk))["booked"] == 0
    assert funnel_counts(company=company, messages=Message.objects.filter(pk=second.pk))["booked"] == 1


def test_a_message_clicked_again_after_another_is_the_last_touch(customer, company):
    # first, then second, then first again: the old funnel (window from the FIRST click, any other
    # click since then disqualifying) counted nobody while the booking converted for `first`.
    now = timezone.now()
    first, second = outbound(customer), outbound(customer)
    record(customer, "message_clicked", at=now - dt.timedelta(hours=6), message=first)
    record(customer, "deeplink_followed", at=now - dt.timedelta(hours=4), message=second)
    record(customer, "message_clicked", at=now - dt.timedelta(hours=2), message=first)
    record(customer, "booking_created", at=now)

    assert_one_rule(company, booked=[first])


def test_the_window_runs_from_the_latest_click_before_the_booking(customer, company):
    # clicked 80 h before the booking (outside the 72 h window) and again 10 h before it (inside)
    now = timezone.now()
    message = outbound(customer)
    record(customer, "message_clicked", at=now - dt.timedelta(hours=80), message=message)
    record(customer, "message_clicked", at=now - dt.timedelta(hours=10), message=message)
    record(customer, "booking_created", at=now)

    assert_one_rule(company, booked=[message])


def test_a_booking_outside_the_window_of_the_last_click_converts_for_nobody_in_both_views(customer, company):
    now = timezone.now()
    message = outbound(customer)
    record(customer, "message_clicked", at=now - dt.timedelta(hours=72, minutes=1), message=message)
    record(customer, "booking_created", at=now)

    assert_one_rule(company, booked=[])
    # the window's edge is inclusive
    record(customer, "booking_created", at=now - dt.timedelta(minutes=1))
    assert_one_rule(company, booked=[message])


def test_a_click_after_the_booking_does_not_convert_it(customer, company):
    now = timezone.now()
    earlier, later = outbound(customer), outbound(customer)
    record(customer, "message_clicked", at=now - dt.timedelta(hours=2), message=earlier)
    record(customer, "booking_created", at=now - dt.timedelta(hours=1))
    # a click on another message after the booking neither steals nor converts it
    record(customer, "message_clicked", at=now, message=later)

    assert_one_rule(company, booked=[earlier])
    # and a click only after the booking converts nothing
    other = CustomerFactory(company=company)
    only_after = outbound(other)
    record(other, "booking_created", at=now - dt.timedelta(hours=1))
    record(other, "message_clicked", at=now, message=only_after)
    assert_one_rule(company, booked=[earlier])


def test_another_contacts_click_never_touches_a_booking(customer, company):
    now = timezone.now()
    mine = outbound(customer)
    other = CustomerFactory(company=company)
    theirs = outbound(other)
    record(customer, "message_clicked", at=now - dt.timedelta(hours=3), message=mine)
    record(other, "message_clicked", at=now - dt.timedelta(hours=2), message=theirs)
    record(customer, "booking_created", at=now)

    assert_one_rule(company, booked=[mine])


def test_a_booking_is_counted_under_the_agent_and_channel_of_the_message_it_converts_for(customer, company):
    now = timezone.now()
    message = outbound(customer)  # smartengage, email
    attributed = {"event_type": "booking_created", "agent_type": "smartengage", "channel": "email", "source": "app"}
    unattributed = {**attributed, "agent_type": "none", "channel": "none"}
    before = (counter_value(**attributed), counter_value(**unattributed))
    record(customer, "message_clicked", at=now - dt.timedelta(hours=1), message=message)

    record(customer, "booking_created", at=now)
    # a booking of someone who clicked nothing converts for nobody
    record(CustomerFactory(company=company), "booking_created", at=now)

    assert (counter_value(**attributed), counter_value(**unattributed)) == (before[0] + 1, before[1] + 1)


def test_an_app_login_without_a_contact_or_with_a_deactivated_company_is_a_403_not_a_500(customer):
    # given: an app login (a customer token) whose contact was since deleted, and one whose company is off
    body = {"event_type": "notification_opened"}
    orphan = User.objects.create_user(email="orphan@example.test")
    orphan_client = APIClient()
    orphan_client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {token_pair_for(user=orphan, user_type='customer').access_token}"
    )
    client = app_client(customer)
    customer.company.is_active = False
    customer.company.save(update_fields=["is_active"])

    # when / then: a 403 in the one error shape, nothing recorded
    for response in (orphan_client.post("/events", body, format="json"), client.post("/events", body, format="json")):
        assert response.status_code == 403, response.content
        assert response.json()["error"]["code"] == "permission_denied"
    assert not Event.objects.exists()
