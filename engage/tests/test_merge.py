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


def test_when_both_are_customers_the_bookings_move_to_the_kept_profile(company):
    keep_customer = CustomerFactory(company=company)
    merge_customer = CustomerFactory(company=company)
    booking = BookingFactory(company=company, customer=merge_customer)

    contact_merge(keep=keep_customer.contact, merge=merge_customer.contact, actor=None)

    assert Booking.objects.get(pk=booking.pk).customer_id == keep_customer.pk
    assert not Customer.objects.filter(pk=merge_customer.pk).exists()


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
