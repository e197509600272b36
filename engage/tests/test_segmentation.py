"""SmartEngage segmentation: cadence window, consent, caps, cycle, local send window, batches; booking history."""

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.feed.services import booking_complete
from crm.models import Booking, Customer
from crm.tests.factories import BookingFactory, CustomerFactory
from engage.ai.bengali import date_bn
from engage.campaigns.segmentation import (
    SegmentCriteria,
    booking_history_text,
    contact_zones,
    customer_booking_histories,
    customer_segment,
    customer_segment_batches,
    customer_segment_skips,
    send_window_parse,
)
from engage.models import Message
from engage.policy.services import policy_for, policy_get_or_create

UTC = dt.UTC
# 09:00 UTC = 15:00 in Dhaka, on a Wednesday.
NOW = dt.datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
CRITERIA = SegmentCriteria(cadence_days=21, window_days=7, send_window_start_hour=9, send_window_end_hour=18)


def due(company, *, days_ago=22, **contact):
    return CustomerFactory(company=company, last_booking_at=NOW - dt.timedelta(days=days_ago), **{f"contact__{k}": v for k, v in contact.items()})


def reminded(customer, *, at, status=Message.Status.SENT, agent_type="smartengage"):
    message = Message.objects.create(
        company=customer.company, contact=customer.contact, direction=Message.Direction.OUTBOUND, channel="email",
        agent_type=agent_type, message_type="reminder", body="...", status=status, correlation_id=uuid.uuid4(),
    )
    Message.objects.filter(pk=message.pk).update(created_at=at)


def ids(queryset) -> list[int]:
    return [customer.pk for customer in queryset]


def test_cadence_window(company):
    inside = [due(company, days_ago=21), due(company, days_ago=24), due(company, days_ago=27.9)]
    due(company, days_ago=20.9)
    due(company, days_ago=28)
    CustomerFactory(company=company, last_booking_at=None)

    assert ids(customer_segment(company=company, criteria=CRITERIA, now=NOW)) == sorted(c.pk for c in inside)


def test_a_customer_the_marketplace_deleted_is_never_reminded(company):
    kept = due(company)
    deleted = due(company)
    Customer.objects.filter(pk=deleted.pk).update(is_active=False)  # DELETE /api/customers/<id>/ (crm.feed)

    assert ids(customer_segment(company=company, criteria=CRITERIA, now=NOW)) == [kept.pk]


def test_consent_and_address_on_the_channel(company):
    ok = due(company, is_sms_consented=False)
    due(company, is_email_consented=False, is_sms_consented=False)
    due(company, email="", is_sms_consented=False)
    sms_only = due(company, is_email_consented=False, is_sms_consented=True)
    due(company, is_email_consented=False, is_sms_consented=True, phone="")

    assert ids(customer_segment(company=company, criteria=CRITERIA, now=NOW)) == [ok.pk]
    sms = SegmentCriteria(cadence_days=21, window_days=7, send_window_start_hour=9, send_window_end_hour=18, channel="sms")
    assert ids(customer_segment(company=company, criteria=sms, now=NOW)) == [sms_only.pk]


def test_not_reminded_again_in_the_same_cycle(company):
    already = due(company)
    reminded(already, at=NOW - dt.timedelta(days=8))  # after the last booking (22 days ago)
    previous_cycle = due(company)
    reminded(previous_cycle, at=NOW - dt.timedelta(days=30))  # before the last booking
    failed = due(company)
    reminded(failed, at=NOW - dt.timedelta(days=8), status=Message.Status.FAILED)

    assert ids(customer_segment(company=company, criteria=CRITERIA, now=NOW)) == [previous_cycle.pk, failed.pk]


def test_caps_exclude_customers_messaged_recently(company):
    coached_today = due(company)
    # A CoachNova message 2 hours ago (the same contact can be a worker): daily cap and too soon.
    reminded(coached_today, at=NOW - dt.timedelta(hours=2), agent_type="coachnova")
    free = due(company)

    assert ids(customer_segment(company=company, criteria=CRITERIA, now=NOW)) == [free.pk]


def test_weekly_cap_in_the_contacts_week(company):
    customer = due(company, days_ago=25)
    policy = policy_get_or_create(company=company)
    policy.customer_daily_limit, policy.customer_weekly_limit, policy.customer_min_hours_between = 1, 2, 0
    policy.save()
    # Two non-reminder messages (e.g. a CoachNova one) earlier this week (Mon, Tue in Dhaka), before the cycle's booking.
    Customer.objects.filter(pk=customer.pk).update(last_booking_at=NOW - dt.timedelta(days=22))
    reminded(customer, at=dt.datetime(2026, 11, 16, 12, 0, tzinfo=ZoneInfo("Asia/Dhaka")), agent_type="coachnova")
    reminded(customer, at=dt.datetime(2026, 11, 17, 12, 0, tzinfo=ZoneInfo("Asia/Dhaka")), agent_type="coachnova")

    assert ids(customer_segment(company=company, criteria=CRITERIA, now=NOW)) == []
    policy.customer_weekly_limit = 3
    policy.save()
    assert ids(customer_segment(company=company, criteria=CRITERIA, now=NOW)) == [customer.pk]


def test_skips_carry_the_first_rule_each_customer_fails_and_leave_out_the_eligible_and_reminded(company):
    # given a policy of 1 a day, 2 a week, 6 hours apart, at Wednesday 15:00 in Dhaka
    policy = policy_get_or_create(company=company)
    policy.customer_daily_limit, policy.customer_weekly_limit, policy.customer_min_hours_between = 1, 2, 6
    policy.save()
    cache.clear()
    no_consent = due(company, is_email_consented=False, email="")  # also no address: consent comes first
    reminded(no_consent, at=NOW - dt.timedelta(hours=1), agent_type="coachnova")
    no_address = due(company, email="")
    too_soon = due(company)  # 2 hours ago: too soon, and the daily cap too
    reminded(too_soon, at=NOW - dt.timedelta(hours=2), agent_type="coachnova")
    daily = due(company)  # 05:00 today in Dhaka, 10 hours ago
    reminded(daily, at=NOW - dt.timedelta(hours=10), agent_type="coachnova")
    weekly = due(company)  # Monday and Tuesday
    for day in (16, 17):
        reminded(weekly, at=dt.datetime(2026, 11, day, 12, 0, tzinfo=ZoneInfo("Asia/Dhaka")), agent_type="coachnova")
    eligible = due(company)
    already = due(company, is_email_consented=False)  # reminded in this cycle: not a candidate at all
    reminded(already, at=NOW - dt.timedelta(days=3))
    due(company, days_ago=30, is_email_consented=False)  # outside the cadence window

    # when
    skips = customer_segment_skips(company=company, criteria=CRITERIA, now=NOW)

    # then each excluded candidate has its reason, the eligible one none, and both agree with the segment
    reasons = {customer.pk: customer.skip_reason for customer in skips}
    assert reasons == {
        no_consent.pk: "no_consent", no_address.pk: "no_address", too_soon.pk: "too_soon",
        daily.pk: "daily_cap", weekly.pk: "weekly_cap", eligible.pk: None,
    }
    whole_day = SegmentCriteria(cadence_days=21, window_days=7, send_window_start_hour=0, send_window_end_hour=24)
    assert ids(customer_segment(company=company, criteria=whole_day, now=NOW)) == [eligible.pk]
    # a keyset range (after, upto]
    ranged = customer_segment_skips(company=company, criteria=CRITERIA, now=NOW, after_id=no_address.pk, upto_id=daily.pk)
    assert sorted(customer.pk for customer in ranged) == [too_soon.pk, daily.pk]


def test_send_window_in_each_customers_own_time_zone(company):
    dhaka = due(company, timezone="Asia/Dhaka")  # 15:00 local
    new_york = due(company, timezone="America/New_York")  # 04:00 local
    london = due(company, timezone="Europe/London")  # 09:00 local: the window's first hour
    broken = due(company, timezone="Mars/Olympus")  # read in the company's zone (Dhaka)

    assert ids(customer_segment(company=company, criteria=CRITERIA, now=NOW)) == [dhaka.pk, london.pk, broken.pk]
    evening = NOW + dt.timedelta(hours=15)  # 06:00 Dhaka, 00:00 UTC next day, 19:00 New York
    late = SegmentCriteria(cadence_days=21, window_days=8, send_window_start_hour=18, send_window_end_hour=20)
    assert ids(customer_segment(company=company, criteria=late, now=evening)) == [new_york.pk]


def test_a_zone_added_after_the_cache_is_seen_by_the_next_walk(company):
    fine = due(company)
    assert contact_zones(company=company) == ("Asia/Dhaka",)  # cached
    london = due(company, timezone="Europe/London")
    broken = due(company, timezone="Nowhere/Atlantis")

    batches = list(customer_segment_batches(company=company, criteria=CRITERIA, batch_size=10, now=NOW))

    assert [c.pk for c in batches[0]] == [fine.pk, london.pk, broken.pk]
    assert contact_zones(company=company) == ("Asia/Dhaka", "Europe/London", "Nowhere/Atlantis")


def test_tenants_are_separate(company, other_company):
    mine = due(company)
    due(other_company)

    assert ids(customer_segment(company=company, criteria=CRITERIA, now=NOW)) == [mine.pk]


def test_batches_by_keyset_in_one_query_each(company):
    customers = [due(company) for _ in range(7)]
    policy_for(company=company)  # warm the policy cache
    contact_zones(company=company)  # and the zone names (a walk refreshes them: one more query)
    list(customer_segment(company=company, criteria=CRITERIA, now=NOW, limit=1))  # and the zones the database knows

    with CaptureQueriesContext(connection) as queries:
        batches = list(customer_segment_batches(company=company, criteria=CRITERIA, batch_size=3, now=NOW))

    assert [[c.pk for c in batch] for batch in batches] == [
        [c.pk for c in customers[0:3]], [c.pk for c in customers[3:6]], [customers[6].pk],
    ]
    selects = [query["sql"] for query in queries.captured_queries if query["sql"].startswith("SELECT")]
    assert len(selects) == 1 + 3  # the zone names, then one query a batch
    assert batches[0][0].contact.email  # contact joined in, no extra query
    # each batch planned for its own keyset position and clock, never a prepared generic plan
    assert sum("plan_cache_mode = force_custom_plan" in query["sql"] for query in queries.captured_queries) == 3
    assert len(queries) == 4 + 3 * 3  # + per batch: its savepoint, SET LOCAL, release


def test_from_preset_and_send_window_parsing(company):
    preset = policy_for(company=company).preset("aggressive")
    criteria = SegmentCriteria.from_preset(preset, channel="sms")

    assert (criteria.cadence_days, criteria.send_window_start_hour, criteria.send_window_end_hour) == (14, 8, 20)
    assert send_window_parse(send_window="9-18") == (9, 18)
    for bad in ("18-9", "9", "a-b", "0-25"):
        with pytest.raises(ValueError):
            send_window_parse(send_window=bad)
    with pytest.raises(ValueError):
        SegmentCriteria(cadence_days=0, window_days=7, send_window_start_hour=9, send_window_end_hour=18)


def test_booking_complete_keeps_last_booking_at_and_history_is_newest_first(company):
    customer = CustomerFactory(company=company)
    older = BookingFactory(company=company, customer=customer, status=Booking.Status.SCHEDULED, finished_at=None)
    newer = BookingFactory(company=company, customer=customer, status=Booking.Status.SCHEDULED, finished_at=None)
    BookingFactory(company=company, customer=customer, status=Booking.Status.CANCELLED)

    booking_complete(booking=newer, finished_at=NOW - dt.timedelta(days=2))
    booking_complete(booking=older, finished_at=NOW - dt.timedelta(days=9))  # reported late: keeps the newer date

    customer.refresh_from_db()
    assert customer.last_booking_at == NOW - dt.timedelta(days=2)
    assert [b.pk for b in customer_booking_histories(customer_ids=[customer.pk], limit=5)[customer.pk]] == [
        newer.pk, older.pk
    ]
    assert [b.pk for b in customer_booking_histories(customer_ids=[customer.pk], limit=1)[customer.pk]] == [newer.pk]


def test_booking_histories_of_a_batch_in_one_query_newest_first_completed_only(company):
    many, one, none = (CustomerFactory(company=company) for _ in range(3))
    done = [
        BookingFactory(company=company, customer=many, status=Booking.Status.COMPLETED,
                       finished_at=NOW - dt.timedelta(days=days))
        for days in (40, 10, 30, 20)
    ]
    BookingFactory(company=company, customer=many, status=Booking.Status.SCHEDULED, finished_at=None)
    single = BookingFactory(company=company, customer=one, status=Booking.Status.COMPLETED,
                            finished_at=NOW - dt.timedelta(days=5))
    BookingFactory(company=company, customer=none, status=Booking.Status.CANCELLED)

    with CaptureQueriesContext(connection) as queries:
        histories = customer_booking_histories(customer_ids=[many.pk, one.pk, none.pk], limit=3)
        text = booking_history_text(bookings=histories[many.pk], now=NOW)

    assert len(queries) == 1
    assert [b.pk for b in histories[many.pk]] == [done[1].pk, done[3].pk, done[2].pk]
    assert [b.pk for b in histories[one.pk]] == [single.pk]
    assert none.pk not in histories
    lines = text.splitlines()
    service = done[1].service.name_bn or done[1].service.name
    # Bengali dates and digits, never ISO dates: the model writes back what it is fed
    assert lines[0] == f"- {date_bn(NOW - dt.timedelta(days=10))}: {service} (১০ দিন আগে)"
    assert len(lines) == 3 and lines[2].endswith("(৩০ দিন আগে)")
