"""Bump-ups after silence (`followup_bumpup`) and the conversation summary (`ai_summary`)."""

import datetime as dt

import pytest
from django.utils import timezone

from crm.models import Contact, Lead
from engage.conversations.replies import summary_schedule
from engage.models import AIConfig, AISession, Job, Message
from engage.tests.helpers import capture, jobs, run_job

pytestmark = pytest.mark.django_db

NUDGE = "আপনার কোনো প্রশ্ন আছে কি? আমরা সাহায্য করতে প্রস্তুত।"


def replied(company, fake_openai, text="দাম কত?"):
    """An inbound message, answered; returns the capture result and the first follow-up job."""
    inbound = capture(company, text)
    run_job(inbound.job_id)
    return inbound, jobs("followup_bumpup", payload__inbound_message_id=inbound.message_id)[0]


def followups_sent(lead_id):
    return list(Message.objects.filter(lead_id=lead_id, message_type="followup").order_by("id"))


def test_silence_brings_a_bump_up_and_the_next_one_on_the_cadence(fake_openai, company):
    AIConfig.objects.create(company=company, followup_cadence_hours=48, followup_max=3)
    fake_openai.reply("উত্তর")
    inbound, first = replied(company, fake_openai)
    fake_openai.reply(NUDGE)

    assert run_job(first) == "completed"

    [nudge] = followups_sent(inbound.lead_id)
    assert (nudge.body, nudge.status, nudge.channel, nudge.job_id) == (NUDGE, "sent", "console", first.pk)
    assert "has not answered" in fake_openai.last_request["messages"][0]["content"]
    assert AISession.objects.get(purpose="followup").message == nudge
    second = jobs("followup_bumpup", payload__number=2)[0]
    assert second.idempotency_key == f"followup_bumpup:{inbound.lead_id}:{inbound.message_id}:2"
    delay = second.next_run_at - timezone.now()
    assert dt.timedelta(hours=47, minutes=59) < delay <= dt.timedelta(hours=48)


def test_bump_ups_stop_at_the_maximum(fake_openai, company):
    AIConfig.objects.create(company=company, followup_max=2)
    inbound, first = replied(company, fake_openai)

    run_job(first)
    run_job(jobs("followup_bumpup", payload__number=2)[0])

    assert len(followups_sent(inbound.lead_id)) == 2
    assert jobs("followup_bumpup", payload__number=3) == []


def test_no_bump_up_when_the_lead_answered_meanwhile(fake_openai, company):
    inbound, first = replied(company, fake_openai)
    capture(company, "আমি ভেবে দেখছি")  # the person wrote again

    run_job(first)

    assert followups_sent(inbound.lead_id) == []
    assert Job.objects.get(pk=first.pk).result == {"stopped": "replied"}
    assert jobs("followup_bumpup", payload__number=2) == []


@pytest.mark.parametrize("change", ["won", "lost", "opt_out"])
def test_bump_ups_stop_at_conversion_or_opt_out(fake_openai, company, change):
    inbound, first = replied(company, fake_openai)
    if change == "opt_out":
        Contact.objects.filter(pk=inbound.contact_id).update(is_sms_consented=False)
    else:
        Lead.objects.filter(pk=inbound.lead_id).update(status=change)
    requests_before = len(fake_openai.requests)

    run_job(first)

    assert followups_sent(inbound.lead_id) == []
    assert len(fake_openai.requests) == requests_before
    assert Job.objects.get(pk=first.pk).result == {"stopped": "opted_out" if change == "opt_out" else f"lead_{change}"}


def test_an_opt_out_keyword_stops_the_bump_up(fake_openai, company):
    inbound, first = replied(company, fake_openai)
    capture(company, "STOP")

    run_job(first)

    assert followups_sent(inbound.lead_id) == []


def test_the_summary_is_regenerated_after_a_turn(fake_openai, company):
    fake_openai.reply("উত্তর")
    inbound, _ = replied(company, fake_openai)
    fake_openai.reply("Wants the digital marketing course; asked the price. Next: send the schedule.")
    [summary_job] = jobs("ai_summary")

    assert run_job(summary_job) == "completed"

    lead = Lead.objects.get(pk=inbound.lead_id)
    assert lead.summary == "Wants the digital marketing course; asked the price. Next: send the schedule."
    transcript = fake_openai.last_request["messages"][1]["content"]
    assert transcript == "Customer: দাম কত?\nUs: উত্তর"
    assert fake_openai.last_request["max_tokens"] == 200


def test_a_failed_summary_keeps_the_old_one(fake_openai, company):
    inbound, _ = replied(company, fake_openai)
    Lead.objects.filter(pk=inbound.lead_id).update(summary="Earlier summary.")
    fake_openai.fail(status=500, times=3)

    run_job(jobs("ai_summary")[0])

    assert Lead.objects.get(pk=inbound.lead_id).summary == "Earlier summary."


def test_summaries_are_debounced_per_lead_per_ten_minutes(fake_openai, company):
    inbound = capture(company, "দাম কত?")
    lead = Lead.objects.get(pk=inbound.lead_id)

    first, second = summary_schedule(lead=lead), summary_schedule(lead=lead)

    assert first.pk == second.pk
    assert first.next_run_at > timezone.now()
    assert first.next_run_at - timezone.now() <= dt.timedelta(minutes=10)


def test_a_bump_up_whose_text_and_fallback_both_fail_the_filter_stops_the_chain(fake_openai, company):
    from engage.models import BannedPhrase

    fake_openai.reply("উত্তর")
    inbound, first = replied(company, fake_openai)
    # the follow-up's draft and the approved follow-up fallback both contain the banned phrase
    BannedPhrase.objects.create(company=company, phrase="প্রস্তুত")
    fake_openai.reply(NUDGE)

    assert run_job(first) == "completed"

    assert followups_sent(inbound.lead_id) == []
    assert jobs("followup_bumpup", payload__number=2) == []
    session = AISession.objects.get(purpose="followup")
    assert session.outcome == "rejected" and "banned phrase" in session.error
