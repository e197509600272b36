"""What users do after a message: opens, clicks, deep-link follows, bookings; and attribution.

Services record each as a `crm.Event` tied to the message by correlation id (and contact), and
count it in `user_events_total` (a booking under the agent and channel of the message it converts for). Selectors answer which message a booking converts for, and the
funnel sent -> delivered -> opened -> clicked -> booked of a set of messages.

Attribution rule (last touch, defined once in `attributed_bookings`): a `booking_created` event of
a contact converts for the message of the contact's latest click (`message_clicked` or
`deeplink_followed`, tied to the message by correlation id) at or before the booking, when that
click is at most `attribution_window_hours` (the company's policy, default 72) before it. A click
on another message in between makes that one the touch; a click after the booking does not count.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.lookups import IsNull

from crm.models import Company, Contact, Customer, Event, User
from crm.services import event_record
from engage.campaigns.deeplinks import DeepLinkClaims
from engage.messaging.models import Message
from engage.policy.services import policy_for
from shokti.metrics import count

NOTIFICATION_OPENED = "notification_opened"
MESSAGE_CLICKED = "message_clicked"
BOOKING_CREATED = "booking_created"
DEEPLINK_FOLLOWED = "deeplink_followed"
USER_EVENT_TYPES = (NOTIFICATION_OPENED, MESSAGE_CLICKED, BOOKING_CREATED, DEEPLINK_FOLLOWED)
CLICK_EVENT_TYPES = (MESSAGE_CLICKED, DEEPLINK_FOLLOWED)
# A booking can happen without a message; the others are about one.
TYPES_NEEDING_MESSAGE = (NOTIFICATION_OPENED, MESSAGE_CLICKED, DEEPLINK_FOLLOWED)


def _count_user_event(*, event_type: str, message: Message | None, source: str) -> None:
    count(
        "user_events_total", event_type=event_type, agent_type=(message.agent_type if message else "") or "none",
        channel=(message.channel if message else "") or "none", source=source or "unknown",
    )


def message_for_correlation(
    *, company: Company, correlation_id: uuid.UUID | str, contact: Contact | None = None
) -> Message | None:
    """The outbound message of `company` (to `contact` when given) carrying `correlation_id`."""
    messages = Message.objects.filter(
        company=company, correlation_id=correlation_id, direction=Message.Direction.OUTBOUND
    )
    if contact is not None:
        messages = messages.filter(contact=contact)
    return messages.order_by("-created_at", "-id").first()


def user_event_record(
    *,
    company: Company,
    event_type: str,
    correlation_id: uuid.UUID | str | None = None,
    contact: Contact | None = None,
    source: str = "app",
    metadata: dict[str, Any] | None = None,
    actor: User | None = None,
    occurred_at: dt.datetime | None = None,
) -> Event:
    """Record what a user did about a message; ValidationError for an unknown type or a foreign correlation id.

    `contact` narrows the message to that person's (an app user reports only their own messages).
    """
    if event_type not in USER_EVENT_TYPES:
        raise ValidationError({"event_type": f"Unknown event type; one of {', '.join(USER_EVENT_TYPES)}."})
    message = None
    if correlation_id:
        message = message_for_correlation(company=company, correlation_id=correlation_id, contact=contact)
        if message is None:
            raise ValidationError({"correlation_id": "No message of yours carries this correlation id."})
    elif event_type in TYPES_NEEDING_MESSAGE:
        raise ValidationError({"correlation_id": f"A {event_type} event needs the message's correlation id."})
    if contact is None and message is not None:
        contact = message.contact
    payload = dict(metadata or {})
    if message is not None:
        payload["message_id"] = message.pk
    with transaction.atomic():
        event = event_record(
            company=company,
            type=event_type,
            contact=contact,
            target=message,
            payload=payload,
            source=source,
            actor=actor,
            correlation_id=correlation_id or None,
        )
        if occurred_at is not None:
            event.occurred_at = occurred_at
            event.save(update_fields=["occurred_at"])
    if message is None and event_type == BOOKING_CREATED:
        # Counted under the agent and channel of the message it converts for, as the seed's metrics show.
        message = booking_attributed_message(booking_event=event)
    _count_user_event(event_type=event_type, message=message, source=source)
    return event


def deeplink_follow_record(*, claims: DeepLinkClaims, source: str = "deeplink") -> Event:
    """Record that a verified deep link was followed, tied to the message that carried it."""
    customer = (
        Customer.objects.select_related("contact", "company")
        .filter(pk=claims.customer_id, company_id=claims.company_id, company__is_active=True)
        .first()
    )
    if customer is None:
        raise ValidationError({"token": "The link's customer no longer exists."})
    metadata = {
        "customer_id": customer.pk,
        "service_id": claims.service_id,
        "promo_code": claims.promo_code,
        "link_type": claims.type,
    }
    if claims.correlation_id and message_for_correlation(
        company=customer.company, correlation_id=claims.correlation_id, contact=customer.contact
    ):
        return user_event_record(
            company=customer.company,
            event_type=DEEPLINK_FOLLOWED,
            correlation_id=claims.correlation_id,
            contact=customer.contact,
            source=source,
            metadata=metadata,
        )
    # A link made outside a message (or whose message is gone): keep the follow, without the tie.
    event = event_record(
        company=customer.company, type=DEEPLINK_FOLLOWED, contact=customer.contact, source=source, payload=metadata
    )
    _count_user_event(event_type=DEEPLINK_FOLLOWED, message=None, source=source)
    return event


# --- Attribution (selectors) ----------------------------------------------------------------------


def attribution_window(*, company: Company) -> dt.timedelta:
    return dt.timedelta(hours=policy_for(company=company).attribution_window_hours)


def attributed_bookings(*, company: Company) -> QuerySet[Event]:
    """The company's `booking_created` events that convert for a message, annotated with which one.

    The one definition of attribution (last touch): a booking's touch is the contact's latest click
    on a message (`message_clicked` or `deeplink_followed` with a correlation id) at or before the
    booking, ties broken by the later event id; it converts for that message when the click is at most
    the attribution window before the booking. `touch_correlation_id` names the message.
    """
    window = attribution_window(company=company)
    last_click = Event.objects.filter(
        company_id=company.pk,
        contact_id=OuterRef("contact_id"),
        type__in=CLICK_EVENT_TYPES,
        correlation_id__isnull=False,
        occurred_at__lte=OuterRef("occurred_at"),
    ).order_by("-occurred_at", "-id")
    return (
        Event.objects.filter(company_id=company.pk, type=BOOKING_CREATED, contact__isnull=False)
        .annotate(
            touch_correlation_id=Subquery(last_click.values("correlation_id")[:1]),
            touch_at=Subquery(last_click.values("occurred_at")[:1]),
        )
        .filter(touch_at__gte=F("occurred_at") - window)
    )


def booking_attributed_message(*, booking_event: Event) -> Message | None:
    """The message a `booking_created` event converts for (see `attributed_bookings`), or None."""
    if booking_event.type != BOOKING_CREATED or booking_event.contact_id is None:
        return None
    company = booking_event.company
    touch = attributed_bookings(company=company).filter(pk=booking_event.pk).values("touch_correlation_id").first()
    if touch is None:
        return None
    return message_for_correlation(
        company=company, correlation_id=touch["touch_correlation_id"], contact=booking_event.contact
    )


def messages_with_funnel(*, company: Company, messages: QuerySet[Message] | None = None) -> QuerySet[Message]:
    """Outbound messages annotated with is_opened, is_clicked, is_booked (a booking attributed to it)."""
    messages = Message.objects.filter(company=company) if messages is None else messages.filter(company=company)
    messages = messages.filter(direction=Message.Direction.OUTBOUND)
    about_message = {
        "company_id": company.pk,
        "correlation_id": OuterRef("correlation_id"),
        "contact_id": OuterRef("contact_id"),
    }
    # A scalar subquery, not EXISTS: PostgreSQL would pull an EXISTS up into a join over every booking
    # of the company (and its estimate past the JIT threshold); this probes each message's contact.
    booking = attributed_bookings(company=company).filter(
        contact_id=OuterRef("contact_id"), touch_correlation_id=OuterRef("correlation_id")
    )
    return messages.annotate(
        is_opened=Exists(Event.objects.filter(type=NOTIFICATION_OPENED, **about_message)),
        is_clicked=Exists(Event.objects.filter(type__in=CLICK_EVENT_TYPES, **about_message)),
        is_booked=IsNull(Subquery(booking.values("pk")[:1]), False),
    )


def funnel_counts(*, company: Company, messages: QuerySet[Message] | None = None) -> dict[str, int]:
    """sent -> delivered -> opened -> clicked -> booked counts over outbound messages (one query)."""
    annotated = messages_with_funnel(company=company, messages=messages)
    sent_statuses = [Message.Status.SENT, Message.Status.DELIVERED, Message.Status.READ]
    delivered_statuses = [Message.Status.DELIVERED, Message.Status.READ]
    counts = {
        "sent": Count("pk", filter=Q(status__in=sent_statuses)),
        "delivered": Count("pk", filter=Q(status__in=delivered_statuses)),
        "opened": Count("pk", filter=Q(is_opened=True)),
        "clicked": Count("pk", filter=Q(is_clicked=True)),
        "booked": Count("pk", filter=Q(is_booked=True)),
    }
    return annotated.aggregate(**counts)
