"""Contact merge: crm's contact_merge moves leads, events, profiles, consent, and engage's rows via its hook."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from crm.models import Booking, Contact, Customer, Event, Lead
from crm.services import contact_merge
from crm.tests.factories import (
    BookingFactory,
    ContactFactory,
    CustomerFactory,
    EventFactory,
    LeadFactory,
)
from engage.models import AISession, Message

pytestmark = pytest.mark.django_db


def message(contact, lead=None, body="hi"):
    return Message.objects.create(
        company=contact.company, contact=contact, lead=lead, direction="inbound", channel="console", body=body,
    )


def test_merge_moves_everything_to_the_kept_contact_and_records_it(company, staff_user):
    # given: the same person twice, once by phone and once by email
    keep = ContactFactory(company=company, name="Rahim", phone="+8801711000001", email="",
                          is_email_consented=False, is_sms_consented=True, is_whatsapp_consented=False)
    merge = ContactFactory(company=company, name="", phone="", email="rahim@example.test",
                           is_email_consented=True, is_sms_consented=False, is_whatsapp_consented=False)
    lead = LeadFactory(company=company, contact=merge)
    inbound = message(merge, lead)
    session = AISession.objects.create(company=company, agent_type="sales", purpose="reply", outcome="ok",
                                       contact=merge)
    event = EventFactory(company=company, contact=merge, type="message.received")
    opt_out = EventFactory(company=company, contact=merge, type="opt_out", target=merge)
    customer = CustomerFactory(company=company, contact=merge)

    # when
    kept = contact_merge(keep=keep, merge=merge, actor=staff_user)

    # then
    assert not Contact.objects.filter(pk=merge.pk).exists()
    assert Lead.objects.get(pk=lead.pk).contact_id == keep.pk
    assert Message.objects.get(pk=inbound.pk).contact_id == keep.pk
    assert AISession.objects.get(pk=session.pk).contact_id == keep.pk
    assert Event.objects.get(pk=event.pk).contact_id == keep.pk
    assert Event.objects.get(pk=opt_out.pk).target == keep
    assert Customer.objects.get(pk=customer.pk).contact_id == keep.pk
    kept.refresh_from_db()
    assert (kept.name, kept.phone, kept.email) == ("Rahim", "+8801711000001", "rahim@example.test")
    # neither made an explicit decision: a channel is consented if either consented
    assert (kept.is_email_consented, kept.is_sms_consented, kept.is_whatsapp_consented) == (True, True, False)
    merged = Event.objects.get(type="contact.merged")
    assert (merged.contact_id, merged.actor) == (keep.pk, staff_user)
    assert merged.payload["merged"] == {"id": merge.pk, "name": "", "phone": "", "email": "rahim@example.test"}
    assert merged.payload["moved"]["messages"] == 1 and merged.payload["moved"]["leads"] == 1


def test_the_most_recent_consent_decision_wins(company):
    keep = ContactFactory(company=company, is_sms_consented=True, consent_updated_at=timezone.now() - dt.timedelta(days=9))
    merge = ContactFactory(company=company, is_sms_consented=False, is_email_consented=False,
                           consent_updated_at=timezone.now())

    kept = contact_merge(keep=keep, merge=merge, actor=None)

    kept.refresh_from_db()
    assert (kept.is_sms_consented, kept.is_email_consented) == (False, False)


@pytest.mark.parametrize("later", ["keep", "merge"])
def test_when_both_are_customers_the_bookings_move_to_the_kept_profile(company, later):
    from crm.tests.factories import ServiceFactory

    now = timezone.now()
    keep_customer = CustomerFactory(company=company, last_booking_at=now - dt.timedelta(days=30 if later == "merge" else 3))
    merge_customer = CustomerFactory(company=company, last_booking_at=now - dt.timedelta(days=30 if later == "keep" else 3))
    latest = max(keep_customer.last_booking_at, merge_customer.last_booking_at)
    cleaning, painting = ServiceFactory(company=company), ServiceFactory(company=company)
    keep_customer.typical_services.add(cleaning)
    merge_customer.typical_services.add(cleaning, painting)
    booking = BookingFactory(company=company, customer=merge_customer)

    contact_merge(keep=keep_customer.contact, merge=merge_customer.contact, actor=None)

    assert Booking.objects.get(pk=booking.pk).customer_id == keep_customer.pk
    assert not Customer.objects.filter(pk=merge_customer.pk).exists()
    keep_customer.refresh_from_db()
    # the campaigns' cycle key is the later last booking of the two; both sets of typical services stay
    assert keep_customer.last_booking_at == latest
    assert set(keep_customer.typical_services.all()) == {cleaning, painting}


@pytest.mark.parametrize("case", ["other_company", "same_contact"])
def test_contacts_of_two_companies_or_one_contact_cannot_merge(company, other_company, case):
    keep = ContactFactory(company=company)
    merge = ContactFactory(company=other_company) if case == "other_company" else keep
    lead = LeadFactory(company=merge.company, contact=merge)

    with pytest.raises(ValidationError):
        contact_merge(keep=keep, merge=merge, actor=None)

    assert Contact.objects.filter(pk=merge.pk).exists()
    assert Lead.objects.get(pk=lead.pk).contact_id == merge.pk
    assert not Event.objects.filter(type="contact.merged").exists()


# --- The admin action ---------------------------------------------------------------------------------


def merge_action(client, contacts, **extra):
    from django.urls import reverse

    data = {"action": "merge_contacts", "_selected_action": [contact.pk for contact in contacts], **extra}
    return client.post(reverse("admin:crm_contact_changelist"), data, follow=True)


def test_ops_merge_two_contacts_from_the_admin(client, staff_user, company):
    keep = ContactFactory(company=company, name="Rahim")
    merge = ContactFactory(company=company, name="Rahim (email)")
    lead = LeadFactory(company=company, contact=merge)
    client.force_login(staff_user)

    confirm = merge_action(client, [keep, merge])
    assert confirm.status_code == 200 and "Merge two contacts" in confirm.content.decode()
    assert Contact.objects.filter(pk=merge.pk).exists()  # nothing happens before the confirmation

    done = merge_action(client, [keep, merge], apply="1", keep=str(keep.pk))

    assert f"Merged contact #{merge.pk}" in done.content.decode()
    assert not Contact.objects.filter(pk=merge.pk).exists()
    assert Lead.objects.get(pk=lead.pk).contact_id == keep.pk
    assert Event.objects.get(type="contact.merged").actor == staff_user


def test_the_action_needs_exactly_two_contacts(client, staff_user, company):
    contacts = [ContactFactory(company=company) for _ in range(3)]
    client.force_login(staff_user)

    response = merge_action(client, contacts, apply="1", keep=str(contacts[0].pk))

    assert "Select exactly two contacts" in response.content.decode()
    assert Contact.objects.filter(pk__in=[c.pk for c in contacts]).count() == 3


def test_another_companys_staff_cannot_merge_our_contacts(client, other_staff_user, company):
    keep, merge = ContactFactory(company=company), ContactFactory(company=company)
    client.force_login(other_staff_user)

    merge_action(client, [keep, merge], apply="1", keep=str(keep.pk))

    assert Contact.objects.filter(pk__in=[keep.pk, merge.pk]).count() == 2
    assert not Event.objects.filter(type="contact.merged").exists()


# --- Campaign history of two customers merged -----------------------------------------------------------


@pytest.fixture
def campaign(company):
    from django.core.cache import cache

    from engage.models import Campaign
    from engage.policy.services import policy_get_or_create
    from engage.prompts.services import templates_seed_defaults

    templates_seed_defaults(company=company)
    # the default preset's send window: the whole day, so the test does not depend on the clock
    policy_get_or_create(company=company).presets.filter(name="default").update(
        send_window_start_hour=0, send_window_end_hour=24
    )
    cache.clear()
    yield Campaign.objects.create(company=company, name="Daily reminders", channel="console")
    cache.clear()


def campaign_run(campaign) -> dict:
    from engage.campaigns.runner import campaign_run_execute
    from engage.campaigns.runs import campaign_run_trigger

    return campaign_run_execute(run_id=campaign_run_trigger(campaign=campaign).pk)


@pytest.mark.parametrize("outcome", ["sent", "failed"])
def test_a_customer_reminded_as_the_merged_one_keeps_that_history_and_is_not_reminded_again(
    campaign, fake_openai, outcome
):
    from engage.models import CampaignRecipient
    from engage.tests.campaign_helpers import AI_TEXT, customer_due

    # given the same person twice, both due a reminder: once without SMS consent (not reminded), once
    # reminded by the campaign, the reminder sent or failed (a failed intent holds its cycle too: it is
    # retried by the run's "retry failed", not by a new run)
    fake_openai.reply(AI_TEXT)
    company = campaign.company
    kept = customer_due(company, days=25, is_sms_consented=False)
    merged = customer_due(company, days=22)
    assert campaign_run(campaign)["sent"] == 1
    reminder = CampaignRecipient.objects.get(customer=merged, status="sent")
    # two days ago: the frequency caps would allow another reminder now, only the cycle forbids it
    two_days_ago = timezone.now() - dt.timedelta(days=2)
    Message.objects.filter(pk=reminder.message_id).update(created_at=two_days_ago, sent_at=two_days_ago, status=outcome)
    CampaignRecipient.objects.filter(pk=reminder.pk).update(status=outcome)

    # when they are merged into the kept customer (which now has SMS consent: neither decided explicitly)
    contact_merge(keep=kept.contact, merge=merged.contact, actor=None)

    # then the campaign history moved with the bookings, and the kept customer's cycle is the merged one's
    reminder.refresh_from_db()
    assert (reminder.customer_id, reminder.status, reminder.cycle_started_at) == (kept.pk, outcome, merged.last_booking_at)
    assert Message.objects.get(pk=reminder.message_id).contact_id == kept.contact_id
    kept.refresh_from_db()
    assert kept.last_booking_at == merged.last_booking_at and kept.bookings.count() == 2
    assert kept.contact.is_sms_consented is True
    assert Event.objects.get(type="contact.merged").payload["moved"]["campaign_recipients"] == 1
    # and the next run does not remind the kept customer in the same cycle
    again = campaign_run(campaign)
    assert (again["sent"], again["failed"]) == (0, 0)
    assert Message.objects.filter(contact=kept.contact, direction="outbound").count() == 1


@pytest.mark.parametrize("merged_status", ["sent", "pending"])
def test_when_both_were_reminded_in_one_cycle_the_kept_customers_row_holds_it(campaign, merged_status):
    from engage.campaigns.runs import campaign_run_trigger
    from engage.ledger.services import job_enqueue
    from engage.models import CampaignRecipient, Job

    # given both customers with an intent of the same campaign in the same cycle, and the merged one
    # with an older, other-cycle reminder
    company = campaign.company
    run = campaign_run_trigger(campaign=campaign)
    cycle = timezone.now() - dt.timedelta(days=22)
    kept, merged = CustomerFactory(company=company), CustomerFactory(company=company)

    def intent(customer, status, cycle_started_at=cycle):
        job = job_enqueue(company=company, task_name="smartengage_send", payload={"run_id": run.pk},
                          idempotency_key=f"send:{customer.pk}:{status}:{cycle_started_at}")
        sent = message(customer.contact, body=f"reminder of #{customer.pk}")
        Message.objects.filter(pk=sent.pk).update(direction="outbound", status="queued" if status == "pending" else "sent",
                                                 job=job)
        return CampaignRecipient.objects.create(
            company=company, campaign=campaign, run=run, customer=customer, cycle_started_at=cycle_started_at,
            status=status, body=sent.body, message=sent, job=job,
        )

    kept_row = intent(kept, "sent")
    merged_row = intent(merged, merged_status)
    older_row = intent(merged, "sent", cycle - dt.timedelta(days=30))

    # when
    contact_merge(keep=kept.contact, merge=merged.contact, actor=None)

    # then every row is the kept customer's; the kept one's stays the cycle's intent
    rows = {row.pk: row for row in CampaignRecipient.objects.all()}
    assert {row.customer_id for row in rows.values()} == {kept.pk}
    assert (rows[kept_row.pk].status, rows[older_row.pk].status) == ("sent", "sent")
    collided = rows[merged_row.pk]
    assert (collided.status, collided.reason, collided.message_id) == ("skipped", "already_reminded", merged_row.message_id)
    assert f"was {merged_status}" in collided.error and collided.job_id is None
    moved = Event.objects.get(type="contact.merged").payload["moved"]
    assert (moved["campaign_recipients"], moved["campaign_recipients_already_reminded"]) == (2, 1)
    # a reminder still waiting to be sent is not sent: its job is cancelled, its message not queued any more
    merged_job = Job.objects.get(pk=merged_row.job_id)
    merged_message = Message.objects.get(pk=merged_row.message_id)
    if merged_status == "pending":
        assert (merged_job.status, merged_message.status) == ("cancelled", "failed")
    else:
        assert (merged_job.status, merged_message.status) == ("queued", "sent")
