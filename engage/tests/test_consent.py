"""Consent and frequency caps: reasons, calendar days and weeks in the contact's zone, and the atomic reservation."""

import datetime as dt
import threading
import time
import uuid
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction

from crm.models import Event
from crm.tests.factories import CustomerFactory, WorkerFactory
from engage.models import Message
from engage.policy.consent import (
    can_send,
    contact_opt_out,
    local_day_and_week_start,
    send_intent_create,
    send_slot_reserve,
    send_slots_reserve,
)
from engage.policy.services import policy_get_or_create
from shokti.metrics import opt_outs_total

DHAKA = ZoneInfo("Asia/Dhaka")


def sent(contact, *, at, agent_type="smartengage", status=Message.Status.SENT):
    message = Message.objects.create(
        company=contact.company, contact=contact, direction=Message.Direction.OUTBOUND, channel="sms",
        agent_type=agent_type, message_type="reminder", body="...", status=status, correlation_id=uuid.uuid4(),
    )
    Message.objects.filter(pk=message.pk).update(created_at=at)
    return message


def set_caps(company, **fields):
    policy = policy_get_or_create(company=company)
    for name, value in fields.items():
        setattr(policy, name, value)
    policy.save()


@pytest.fixture
def contact(company):
    return CustomerFactory(company=company, contact__timezone="Asia/Dhaka").contact


# Wednesday 2026-11-18 15:00 in Dhaka (09:00 UTC).
NOW = dt.datetime(2026, 11, 18, 15, 0, tzinfo=DHAKA)


def test_allowed_with_consent_and_no_history(contact):
    assert can_send(contact=contact, channel="sms", role="customer", now=NOW) == (True, None)


def test_no_consent_and_no_address(contact):
    contact.is_sms_consented = False
    contact.email = ""

    assert can_send(contact=contact, channel="sms", role="customer", now=NOW) == (False, "no_consent")
    assert can_send(contact=contact, channel="email", role="customer", now=NOW) == (False, "no_address")
    # Staff bypass of caps never bypasses consent.
    assert can_send(contact=contact, channel="sms", role="customer", now=NOW, bypass_caps=True) == (False, "no_consent")


def test_daily_cap_counts_the_calendar_day_in_the_contacts_zone(contact, company):
    set_caps(company, customer_min_hours_between=0)
    # 00:30 Dhaka today is still yesterday in UTC (18:30): it counts for today.
    sent(contact, at=dt.datetime(2026, 11, 18, 0, 30, tzinfo=DHAKA))

    assert can_send(contact=contact, channel="sms", role="customer", now=NOW) == (False, "daily_cap")


def test_yesterday_in_the_contacts_zone_does_not_count_for_today(contact, company):
    set_caps(company, customer_min_hours_between=0)
    # 23:30 Dhaka yesterday is 17:30 UTC yesterday; a UTC day would count a later one the same.
    sent(contact, at=dt.datetime(2026, 11, 17, 23, 30, tzinfo=DHAKA))

    assert can_send(contact=contact, channel="sms", role="customer", now=NOW) == (True, None)


def test_weekly_cap_counts_from_monday(contact, company):
    set_caps(company, customer_min_hours_between=0)
    sent(contact, at=dt.datetime(2026, 11, 16, 10, 0, tzinfo=DHAKA))  # Monday
    sent(contact, at=dt.datetime(2026, 11, 17, 10, 0, tzinfo=DHAKA))  # Tuesday

    assert can_send(contact=contact, channel="sms", role="customer", now=NOW) == (False, "weekly_cap")
    # Last week's Sunday does not count.
    Message.objects.filter(created_at__date=dt.date(2026, 11, 16)).update(
        created_at=dt.datetime(2026, 11, 15, 23, 0, tzinfo=DHAKA)
    )
    assert can_send(contact=contact, channel="sms", role="customer", now=NOW) == (True, None)


def test_too_soon_uses_the_minimum_gap(contact):
    # Yesterday 16:00 local: another calendar day, but less than 24 hours ago.
    sent(contact, at=NOW - dt.timedelta(hours=23))

    assert can_send(contact=contact, channel="sms", role="customer", now=NOW) == (False, "too_soon")
    assert can_send(contact=contact, channel="sms", role="customer", now=NOW + dt.timedelta(hours=2)) == (True, None)


def test_failed_messages_and_replies_do_not_count(contact):
    sent(contact, at=NOW - dt.timedelta(hours=1), status=Message.Status.FAILED)
    sent(contact, at=NOW - dt.timedelta(hours=1), agent_type="sales")

    assert can_send(contact=contact, channel="sms", role="customer", now=NOW) == (True, None)


def test_workers_have_their_own_caps(company):
    worker = WorkerFactory(company=company).contact
    sent(worker, at=NOW - dt.timedelta(days=2), agent_type="coachnova")  # Monday, 48 h ago

    assert can_send(contact=worker, channel="sms", role="worker", now=NOW) == (False, "weekly_cap")
    set_caps(company, worker_weekly_limit=2)
    assert can_send(contact=worker, channel="sms", role="worker", now=NOW) == (False, "too_soon")


def test_policy_changes_take_effect_on_the_next_check(contact, company):
    sent(contact, at=NOW - dt.timedelta(hours=30))
    sent(contact, at=NOW - dt.timedelta(hours=29, minutes=30))
    assert can_send(contact=contact, channel="sms", role="customer", now=NOW) == (False, "weekly_cap")

    set_caps(company, customer_weekly_limit=3)

    assert can_send(contact=contact, channel="sms", role="customer", now=NOW) == (True, None)


def test_week_and_day_boundaries():
    day, week = local_day_and_week_start(now=NOW, zone=DHAKA)

    assert day == dt.datetime(2026, 11, 18, 0, 0, tzinfo=DHAKA)
    assert week == dt.datetime(2026, 11, 16, 0, 0, tzinfo=DHAKA)


@pytest.mark.django_db(transaction=True)
def test_reserve_refuses_outside_a_transaction(company):
    contact = CustomerFactory(company=company).contact

    with pytest.raises(RuntimeError):
        send_slot_reserve(contact=contact, channel="sms", role="customer")


def test_send_intent_create_writes_only_when_allowed(contact):
    def intent():
        return Message.objects.create(
            company=contact.company, contact=contact, direction=Message.Direction.OUTBOUND, channel="sms",
            agent_type="smartengage", message_type="reminder", body="hi",
        )

    first = send_intent_create(contact=contact, channel="sms", role="customer", create_intent=intent)
    second = send_intent_create(contact=contact, channel="sms", role="customer", create_intent=intent)

    assert first[0] == (True, None) and isinstance(first[1], Message)
    assert second == ((False, "daily_cap"), None)
    assert Message.objects.filter(contact=contact).count() == 1


def test_opt_out_is_an_event_and_is_counted(contact):
    before = opt_outs_total.labels(channel="sms", reason="request")._value.get()

    assert contact_opt_out(contact=contact, channel="sms", source="app") is True
    assert contact_opt_out(contact=contact, channel="sms", source="app") is False

    contact.refresh_from_db()
    assert contact.is_sms_consented is False
    assert Event.objects.filter(type="opt_out", contact=contact).count() == 1
    assert opt_outs_total.labels(channel="sms", reason="request")._value.get() == before + 1
    assert can_send(contact=contact, channel="sms", role="customer") == (False, "no_consent")


# --- Many concurrent senders on PostgreSQL --------------------------------------------------------


def race(contact, *, senders: int, role="customer", agent_type="smartengage") -> list:
    """`senders` threads, each on its own connection, try to reserve and write an intent at once."""
    barrier = threading.Barrier(senders)
    outcomes: list = []
    errors: list = []

    def sender():
        try:
            barrier.wait(timeout=10)
            with transaction.atomic():
                decision = send_slot_reserve(contact=contact, channel="sms", role=role)
                if decision.allowed:
                    time.sleep(0.02)  # widen the window between the check and the write
                    Message.objects.create(
                        company_id=contact.company_id, contact_id=contact.pk, direction=Message.Direction.OUTBOUND,
                        channel="sms", agent_type=agent_type, message_type="reminder", body="race",
                    )
            outcomes.append(decision)
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(outcomes) == senders
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_concurrent_senders_never_exceed_the_daily_cap(company):
    contact = CustomerFactory(company=company).contact

    outcomes = race(contact, senders=16)

    assert Message.objects.filter(contact=contact).count() == 1
    assert sorted(outcome.reason or "" for outcome in outcomes) == [""] + ["daily_cap"] * 15


@pytest.mark.django_db(transaction=True)
def test_concurrent_senders_never_exceed_the_weekly_cap(company):
    contact = CustomerFactory(company=company).contact
    set_caps(company, customer_daily_limit=3, customer_weekly_limit=3, customer_min_hours_between=0)

    outcomes = race(contact, senders=16)

    assert Message.objects.filter(contact=contact).count() == 3
    assert sum(outcome.allowed for outcome in outcomes) == 3


@pytest.mark.django_db(transaction=True)
def test_concurrent_senders_to_different_contacts_do_not_block_each_other(company):
    contacts = [CustomerFactory(company=company).contact for _ in range(2)]
    results = []

    def both():
        results.extend(race(contact, senders=4) for contact in contacts)

    both()

    for contact in contacts:
        assert Message.objects.filter(contact=contact).count() == 1


# --- The batch form: one lock statement, one count statement ---------------------------------------


@pytest.mark.django_db
def test_batch_reserve_decides_as_the_single_reserve_does(company):
    # given contacts under each rule: free, daily cap (in Dhaka's day), weekly cap, too soon, no consent
    set_caps(company, customer_daily_limit=1, customer_weekly_limit=2, customer_min_hours_between=0)
    free, daily, weekly, soon, refused = (CustomerFactory(company=company, contact__timezone="Asia/Dhaka").contact
                                          for _ in range(5))
    sent(daily, at=dt.datetime(2026, 11, 18, 0, 30, tzinfo=DHAKA))
    sent(weekly, at=dt.datetime(2026, 11, 16, 10, 0, tzinfo=DHAKA))
    sent(weekly, at=dt.datetime(2026, 11, 17, 10, 0, tzinfo=DHAKA))
    sent(daily, at=dt.datetime(2026, 11, 17, 23, 30, tzinfo=DHAKA) - dt.timedelta(days=7))  # last week: not counted
    refused.is_sms_consented = False
    refused.save(update_fields=["is_sms_consented"])
    contacts = [free, daily, weekly, soon, refused]

    # when
    with transaction.atomic():
        decisions = send_slots_reserve(contacts=contacts, channel="sms", role="customer", now=NOW)
        singles = [send_slot_reserve(contact=contact, channel="sms", role="customer", now=NOW) for contact in contacts]

    # then
    assert decisions == singles
    assert [decision.reason for decision in decisions] == [None, "daily_cap", "weekly_cap", None, "no_consent"]
    set_caps(company, customer_daily_limit=5, customer_weekly_limit=5, customer_min_hours_between=24)
    sent(soon, at=NOW - dt.timedelta(hours=23))
    with transaction.atomic():
        assert send_slots_reserve(contacts=[soon], channel="sms", role="customer", now=NOW) == [(False, "too_soon")]


@pytest.mark.django_db
def test_batch_reserve_counts_a_contact_given_twice(contact, company):
    set_caps(company, customer_daily_limit=1, customer_min_hours_between=0)

    with transaction.atomic():
        decisions = send_slots_reserve(contacts=[contact, contact], channel="sms", role="customer", now=NOW)

    assert decisions == [(True, None), (False, "daily_cap")]


@pytest.mark.django_db(transaction=True)
def test_batch_reserve_refuses_outside_a_transaction(contact):
    with pytest.raises(RuntimeError):
        send_slots_reserve(contacts=[contact], channel="sms", role="customer")


@pytest.mark.django_db(transaction=True)
def test_concurrent_batch_senders_never_exceed_the_caps(company):
    # given six contacts, eight batch senders each trying all six (in different orders) at once
    contacts = [CustomerFactory(company=company).contact for _ in range(6)]
    barrier = threading.Barrier(8)
    errors: list = []

    def sender(order: int) -> None:
        try:
            batch = contacts[order % 6:] + contacts[: order % 6]
            barrier.wait(timeout=10)
            with transaction.atomic():
                decisions = send_slots_reserve(contacts=batch, channel="sms", role="customer")
                time.sleep(0.02)  # widen the window between the check and the write
                for contact, decision in zip(batch, decisions, strict=True):
                    if decision.allowed:
                        Message.objects.create(
                            company_id=company.pk, contact_id=contact.pk, direction=Message.Direction.OUTBOUND,
                            channel="sms", agent_type="smartengage", message_type="reminder", body="race",
                        )
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=sender, args=(order,)) for order in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # then no deadlock, and each contact got exactly one (the daily cap of 1)
    assert errors == []
    assert [Message.objects.filter(contact=contact).count() for contact in contacts] == [1] * 6
