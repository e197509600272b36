"""Writes and business rules of the CRM core."""

from __future__ import annotations

import functools
import secrets
import uuid
from datetime import datetime
from typing import Any

import phonenumbers
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Model, Q
from django.utils import timezone
from django.utils.translation import gettext_noop

from crm.models import (
    ApiKey,
    Booking,
    Company,
    Contact,
    Customer,
    Event,
    Lead,
    Pipeline,
    Stage,
    User,
    Worker,
)
from shokti.db.copy import objects_insert


class ContactAlreadyExists(ValidationError):
    """A contact with this phone exists in the company (the API answers 409)."""


def phone_normalize(*, phone: str, region: str = "BD") -> str:
    """The E.164 form of `phone`, read in `region` when it has no +prefix; ValidationError if invalid."""
    return _phone_e164(phone, region)


@functools.lru_cache(maxsize=4096)
def _phone_e164(phone: str, region: str) -> str:
    # Pure and called on every inbound message (often twice: the API's validation, then the
    # service), so the last few thousand answers are kept; errors are raised, never cached.
    try:
        parsed = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException as error:
        raise ValidationError({"phone": f"Not a phone number: {error}"}) from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationError({"phone": "Not a valid phone number for its country."})
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# Apps above crm (engage) register here what must happen when events are recorded, e.g. queueing
# the company's outbound webhook: `hook(*, events) -> None` runs inside the recording transaction,
# so its writes commit or roll back with the events. crm never imports them.
EVENT_RECORDED_HOOKS: list = []


def event_recorded_hook_register(hook) -> None:
    """Register `hook(*, events: list[Event])`, called inside the transaction of every recorded event."""
    if hook not in EVENT_RECORDED_HOOKS:
        EVENT_RECORDED_HOOKS.append(hook)


# The same string as engage.campaigns.attribution.BOOKING_CREATED (crm cannot import engage; a test holds them equal).
BOOKING_CREATED = "booking_created"


def event_record(
    *,
    company: Company,
    type: str,
    contact: Contact | None = None,
    target: Model | None = None,
    payload: dict[str, Any] | None = None,
    source: str = "",
    actor: User | None = None,
    correlation_id: uuid.UUID | str | None = None,
    occurred_at: datetime | None = None,
) -> Event:
    """Append one event to the company's timeline (and run the EVENT_RECORDED_HOOKS with it).

    A `booking_created` event whose payload names a `booking_id` is recorded once per booking:
    when the CRM (`booking_create`) and the customer app (POST /events) both report the same
    booking, the second report returns the first event.
    """
    event = Event(
        company=company,
        type=type,
        contact=contact,
        payload=payload or {},
        source=source,
        actor=actor,
        correlation_id=correlation_id,
    )
    if occurred_at is not None:
        event.occurred_at = occurred_at
    if target is not None:
        event.target = target
    with transaction.atomic(savepoint=False):
        booking_id = event.payload.get("booking_id") if type == BOOKING_CREATED else None
        if booking_id not in (None, ""):
            existing = _booking_event_existing(company=company, contact=contact, booking_id=booking_id)
            if existing is not None:
                return existing
        events_record(events=[event])
    return event


def _booking_event_existing(*, company: Company, contact: Contact | None, booking_id: Any) -> Event | None:
    """The `booking_created` event already recorded for this booking; holds a lock on the booking id until commit.

    Looked up through indexes only: the CRM's event by its target (the booking), the app's by its contact.
    """
    try:
        booking_id = int(booking_id)
    except (TypeError, ValueError):
        return None  # not one of our bookings: nothing to match
    if connection.vendor == "postgresql":
        # Two reports of one booking at the same moment: the second waits, then finds the first.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [BOOKING_EVENT_LOCK, booking_id % 2**31])
    about_booking = Q(target_type=ContentType.objects.get_for_model(Booking), target_id=str(booking_id))
    if contact is not None:
        about_booking |= Q(contact=contact) & (Q(payload__booking_id=booking_id) | Q(payload__booking_id=str(booking_id)))
    return Event.objects.filter(about_booking, company=company, type=BOOKING_CREATED).order_by("id").first()


# The first key of the advisory lock that serialises reports of one booking (any fixed number).
BOOKING_EVENT_LOCK = 0x5B00C


# From this many events on, events_record inserts them by COPY (shokti.db.copy) rather than INSERT.
EVENTS_COPY_MIN = 100


def events_record(*, events: list[Event]) -> list[Event]:
    """Append prepared events in one INSERT and run the EVENT_RECORDED_HOOKS, in one transaction."""
    with transaction.atomic(savepoint=False):
        if len(events) >= EVENTS_COPY_MIN:
            objects_insert(events)  # a batch of the bookings feed: binary COPY on PostgreSQL
        else:
            Event.objects.bulk_create(events)
        for hook in EVENT_RECORDED_HOOKS:
            hook(events=events)
    return events


def api_key_create(*, company: Company, name: str) -> tuple[ApiKey, str]:
    """Create an API key; returns the row and the raw key, which is never shown again."""
    prefix, raw_key = ApiKey.generate()
    api_key = ApiKey.objects.create(company=company, name=name, prefix=prefix, hashed_key=ApiKey.hash(raw_key))
    return api_key, raw_key


def company_webhook_secret_set(*, company: Company, secret: str | None = None) -> str:
    """Set the secret that signs the company's webhook deliveries (a new random one when None); returns it.

    Only shown to the operator who sets it (the admin never renders it back).
    """
    secret = secret.strip() if secret is not None else f"whsec_{secrets.token_urlsafe(32)}"
    if len(secret) < 16:
        raise ValidationError({"webhook_secret": "At least 16 characters."})
    if len(secret) > Company._meta.get_field("webhook_secret").max_length:
        raise ValidationError({"webhook_secret": "Too long."})
    company.webhook_secret = secret
    company.save(update_fields=["webhook_secret"])
    return secret


def api_key_revoke(*, api_key: ApiKey) -> None:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])


def contact_create(
    *,
    company: Company,
    name: str = "",
    phone: str = "",
    email: str = "",
    locale: str = "bn",
    timezone_name: str = "Asia/Dhaka",
    **consent: bool,
) -> Contact:
    """Create a contact with a normalised phone; ValidationError on a bad or duplicate phone."""
    normalized = phone_normalize(phone=phone, region=company.default_region) if phone else ""
    contact = Contact(
        company=company,
        name=name,
        phone=normalized,
        email=email.strip().lower(),
        locale=locale,
        timezone=timezone_name,
        **consent,
    )
    contact.full_clean(exclude=["company", "user"], validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            contact.save()
    except IntegrityError:
        raise ContactAlreadyExists({"phone": f"A contact with phone {normalized} already exists."}) from None
    return contact


def pipeline_get_or_create_default(*, company: Company) -> Pipeline:
    """The company's default pipeline, created with its five stages on first use."""
    pipeline = Pipeline.objects.filter(company=company, is_default=True).first()
    if pipeline is not None:
        return pipeline
    try:
        with transaction.atomic():
            pipeline = Pipeline.objects.create(company=company, name="Sales", is_default=True)
            Stage.objects.bulk_create(
                Stage(pipeline=pipeline, name=name, order=order, kind=kind)
                for order, (name, kind) in enumerate(Pipeline.DEFAULT_STAGES, start=1)
            )
    except IntegrityError:
        # Another request created it first.
        pipeline = Pipeline.objects.get(company=company, is_default=True)
    return pipeline


@transaction.atomic
def lead_move_to_stage(*, lead: Lead, stage: Stage, actor: User | None = None, source: str = "admin") -> Lead:
    """Move a lead to a stage of its pipeline, keep its status in step, record `stage.changed`."""
    if stage.pipeline_id != lead.pipeline_id:
        raise ValidationError({"stage": "The stage belongs to another pipeline."})
    lead = Lead.objects.select_for_update().get(pk=lead.pk)
    if lead.stage_id == stage.pk:
        return lead
    previous = lead.stage
    lead.stage = stage
    lead.status = {Stage.Kind.WON: Lead.Status.WON, Stage.Kind.LOST: Lead.Status.LOST}.get(
        stage.kind, Lead.Status.OPEN
    )
    lead.save(update_fields=["stage", "status", "updated_at"])
    event_record(
        company=lead.company,
        type="stage.changed",
        contact=lead.contact,
        target=lead,
        payload={
            "lead_id": lead.pk, "from": previous.name, "to": stage.name, "from_id": previous.pk, "to_id": stage.pk,
            "status": lead.status,
        },
        source=source,
        actor=actor,
    )
    return lead


def consent_revoke(
    *, contact: Contact, channel: str, reason: str = "opt_out", source: str = "", text: str = ""
) -> bool:
    """Withdraw the contact's consent for the channel's family, record `opt_out`; False if it was already withdrawn."""
    field = Contact.CONSENT_FIELD_BY_CHANNEL[channel]
    now = timezone.now()
    with transaction.atomic():
        # Conditional UPDATE: of two concurrent STOPs, one records the opt-out.
        changed = Contact.objects.filter(pk=contact.pk).exclude(**{field: False, "consent_updated_at__isnull": False})
        changed = changed.update(**{field: False, "consent_updated_at": now, "updated_at": now})
        setattr(contact, field, False)
        contact.consent_updated_at = now
        if changed:
            event_record(
                company=contact.company,
                type="opt_out",
                contact=contact,
                target=contact,
                payload={"channel": channel, "consent": field, "reason": reason, **({"text": text[:200]} if text else {})},
                source=source or channel,
            )
    return bool(changed)


def consent_restore(*, contact: Contact, channel: str, source: str = "", text: str = "") -> bool:
    """The person opts back in on the channel's family (a START after a STOP): consent given again, as their own
    choice (`consent_updated_at`), `opt_in` recorded; False if they had not opted out."""
    field = Contact.CONSENT_FIELD_BY_CHANNEL[channel]
    now = timezone.now()
    with transaction.atomic():
        changed = Contact.objects.filter(pk=contact.pk, **{field: False}).update(
            **{field: True, "consent_updated_at": now, "updated_at": now}
        )
        if changed:
            setattr(contact, field, True)
            contact.consent_updated_at = now
            event_record(
                company=contact.company,
                type="opt_in",
                contact=contact,
                target=contact,
                payload={"channel": channel, "consent": field, "reason": "keyword", **({"text": text[:200]} if text else {})},
                source=source or channel,
            )
    return bool(changed)


# Apps above crm (engage, coaching) register here what they must re-point when two contacts merge:
# `hook(keep=..., merge=...) -> dict` runs inside the merge transaction, before crm merges the two
# contacts' customer and worker profiles: both profiles still exist, so rows keyed to the merged one
# (engage's campaign recipients) can move to the kept one before its deletion would cascade them away.
# crm never imports them.
CONTACT_MERGE_HOOKS: list = []


def contact_merge_hook_register(hook) -> None:
    """Register `hook(*, keep, merge) -> dict of counts`, called inside every contact merge."""
    if hook not in CONTACT_MERGE_HOOKS:
        CONTACT_MERGE_HOOKS.append(hook)


CONSENT_FIELDS = ("is_email_consented", "is_sms_consented", "is_whatsapp_consented")


@transaction.atomic
def contact_merge(*, keep: Contact, merge: Contact, actor: User | None = None) -> Contact:
    """Merge `merge` into `keep` (same company) and delete it: leads, events, profiles, consent and
    everything registered apps hold (their CONTACT_MERGE_HOOKS) move to `keep`; `contact.merged` is recorded.

    When both are customers (or workers), the merged profile's bookings move to the kept profile and
    the merged profile is deleted; a kept customer's `last_booking_at` becomes the later of the two.

    Consent: the most recent explicit decision wins (the contact whose consent was updated last);
    when neither has one, a channel is consented if either contact consented.
    """
    if keep.pk == merge.pk:
        raise ValidationError({"merge": gettext_noop("Choose two different contacts.")})
    if keep.company_id != merge.company_id:
        raise ValidationError({"merge": gettext_noop("Both contacts must belong to the same company.")})
    locked = {c.pk: c for c in Contact.objects.select_for_update().filter(pk__in=[keep.pk, merge.pk]).order_by("pk")}
    if len(locked) != 2:
        raise ValidationError({"merge": gettext_noop("A contact no longer exists.")})
    keep, merge = locked[keep.pk], locked[merge.pk]
    moved: dict[str, Any] = {
        "leads": Lead.objects.filter(contact=merge).update(contact=keep),
        "events": Event.objects.filter(contact=merge).update(contact=keep),
    }
    # Events about the merged contact itself (opt-outs, consent) now point at the kept one.
    Event.objects.filter(
        target_type=ContentType.objects.get_for_model(Contact), target_id=str(merge.pk)
    ).update(target_id=str(keep.pk))
    # The registered apps first, while both profiles exist (see CONTACT_MERGE_HOOKS).
    for hook in CONTACT_MERGE_HOOKS:
        moved.update(hook(keep=keep, merge=merge) or {})
    for profile_model, key in ((Customer, "customer"), (Worker, "worker")):
        merge_profile = profile_model.objects.filter(contact=merge).first()
        if merge_profile is None:
            continue
        keep_profile = profile_model.objects.filter(contact=keep).first()
        if keep_profile is None:
            merge_profile.contact = keep
            merge_profile.save(update_fields=["contact"])
            moved[key] = "moved"
            continue
        field = "customer" if profile_model is Customer else "worker"
        moved[f"{key}_bookings"] = Booking.objects.filter(**{field: merge_profile}).update(**{field: keep_profile})
        if profile_model is Customer:
            # The kept customer now holds both booking histories: its last completed booking (the
            # campaigns' cycle key) is the later of the two, and it keeps both sets of typical services.
            if merge_profile.last_booking_at is not None:
                _customer_last_booking_advance(customer_id=keep_profile.pk, finished_at=merge_profile.last_booking_at)
            keep_profile.typical_services.add(*merge_profile.typical_services.all())
        merge_profile.delete()

    decided = [contact for contact in (keep, merge) if contact.consent_updated_at is not None]
    if decided:
        latest = max(decided, key=lambda contact: contact.consent_updated_at)
        consent = {field: getattr(latest, field) for field in CONSENT_FIELDS}
        keep.consent_updated_at = latest.consent_updated_at
    else:
        consent = {field: getattr(keep, field) or getattr(merge, field) for field in CONSENT_FIELDS}
    for field, value in consent.items():
        setattr(keep, field, value)
    snapshot = {"id": merge.pk, "name": merge.name, "phone": merge.phone, "email": merge.email}
    merge_user = merge.user
    merge.delete()  # first: its phone and user become free for `keep`
    for field in ("name", "phone", "email"):
        if not getattr(keep, field) and snapshot[field]:
            setattr(keep, field, snapshot[field])
    if keep.user_id is None and merge_user is not None:
        keep.user = merge_user
    keep.save()
    event_record(
        company=keep.company,
        type="contact.merged",
        contact=keep,
        target=keep,
        payload={"merged": snapshot, "moved": moved, "consent": consent},
        source="admin",
        actor=actor,
    )
    return keep


def booking_created_payload(*, booking_id: int, service_id: int, scheduled_at: datetime, status: str) -> dict[str, Any]:
    """The payload of a booking's `booking_created` event (`booking_create` and seed_demo's bulk load write it)."""
    return {"booking_id": booking_id, "service_id": service_id, "scheduled_at": scheduled_at.isoformat(), "status": status}


def _customer_last_booking_advance(*, customer_id: int, finished_at: datetime) -> None:
    customers_last_booking_advance(finished_by_customer={customer_id: finished_at})


def customers_last_booking_advance(*, finished_by_customer: dict[int, datetime]) -> int:
    """Move each customer's `last_booking_at` forward to the given finish time, never back.

    Only ever forward: a late report of an older booking keeps the newer date. One statement on
    PostgreSQL (the pairs as two arrays); a conditional UPDATE per customer elsewhere.
    """
    if not finished_by_customer:
        return 0
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(Customer._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS customer SET last_booking_at = latest.finished_at"
                " FROM (SELECT unnest(%s::bigint[]) AS id, unnest(%s::timestamptz[]) AS finished_at) AS latest"
                " WHERE customer.id = latest.id"
                " AND (customer.last_booking_at IS NULL OR customer.last_booking_at < latest.finished_at)",
                [list(finished_by_customer), list(finished_by_customer.values())],
            )
            return cursor.rowcount
    moved = 0
    for customer_id, finished_at in finished_by_customer.items():
        moved += Customer.objects.filter(pk=customer_id).filter(
            Q(last_booking_at__isnull=True) | Q(last_booking_at__lt=finished_at)
        ).update(last_booking_at=finished_at)
    return moved
