"""No unsafe text gets through on any path: reply, follow-up, sequence step, SmartEngage reminder, studio
preview; with a model (the local fake, real SDK) and offline. What is rejected, and why, is recorded."""

import pytest

from channels_app.adapters import console
from crm.models import Channel
from crm.tests.factories import LeadFactory
from engage.campaigns.smartengage.pipeline import smartengage_reminder_send
from engage.conversations.sequences import sequence_enroll, sequences_advance
from engage.models import AISession, KnowledgeDoc, Message, PromptTemplate, Sequence, SequenceStep
from engage.prompts.services import template_version_approve, template_version_create, templates_seed_defaults
from engage.studio.services import template_preview, template_sample_generate
from engage.tests.campaign_helpers import customer_due
from engage.tests.helpers import capture, jobs, run_job

pytestmark = pytest.mark.django_db

REPLY_FALLBACK = "ধন্যবাদ, আপনার বার্তা পেয়েছি। আমাদের একজন প্রতিনিধি শীঘ্রই আপনার সাথে যোগাযোগ করবেন।"


@pytest.fixture(autouse=True)
def our_link_hosts(settings):
    settings.DEEP_LINK_BASE_URL = "https://app.sheba.xyz/book"
    settings.SHORT_LINK_BASE_URL = "https://app.sheba.xyz/l/"


def codes(session: AISession) -> list[str]:
    return [reason["code"] for reason in session.safety.get("reasons", [])]


# --- replies ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "code"),
    [("আপনার বুকিং নিশ্চিত করতে বিকাশ পিন পাঠান।", "credential_request"),
     ("একটি এআই ভাষা মডেল হিসেবে আমি আসতে পারি না।", "ai_self_talk"),
     ("বিস্তারিত দেখুন bit.ly/3xYz9Qa লিংকে।", "link_shortener"),
     ("এই সপ্তাহে কোর্সটি মাত্র ৯৯৯ টাকা!", "unapproved_price"),
     ("প্রিয় করিম, আপনার কোর্স শুরু হচ্ছে।", "wrong_recipient")],
)
def test_a_reply_that_fails_a_check_is_replaced_by_the_fallback(fake_openai, company, answer, code):
    KnowledgeDoc.objects.create(company=company, title="কোর্সের দাম", body="ডিজিটাল মার্কেটিং কোর্সের দাম ৫০০০ টাকা।")
    fake_openai.reply(answer)
    inbound = capture(company, "কোর্সের দাম কত?", name="Rahim")

    assert run_job(inbound.job_id) == "completed"

    reply = Message.objects.get(lead_id=inbound.lead_id, direction="outbound")
    assert reply.body == REPLY_FALLBACK and console.outbox[-1].body == REPLY_FALLBACK
    session = AISession.objects.get(purpose="reply")
    assert session.outcome == "rejected" and code in codes(session)
    assert session.response_text == answer  # what the model said is kept


def test_a_reply_may_state_the_price_its_knowledge_gave(fake_openai, company):
    KnowledgeDoc.objects.create(company=company, title="কোর্সের দাম", body="ডিজিটাল মার্কেটিং কোর্সের দাম ৫০০০ টাকা।")
    fake_openai.reply("জি, ডিজিটাল মার্কেটিং কোর্সের দাম ৳৫,০০০।")
    inbound = capture(company, "কোর্সের দাম কত?")

    run_job(inbound.job_id)

    assert AISession.objects.get(purpose="reply").outcome == "ok"


def test_offline_the_reply_is_the_fallback_judged_by_the_same_filter(company, settings):
    settings.OPENAI_API_KEY = ""
    inbound = capture(company, "হ্যালো")

    run_job(inbound.job_id)

    session = AISession.objects.get(purpose="reply")
    assert (session.outcome, session.final_text) == ("fallback", REPLY_FALLBACK)
    assert Message.objects.get(lead_id=inbound.lead_id, direction="outbound").body == REPLY_FALLBACK


# --- follow-ups and sequences -------------------------------------------------------------------------


def test_a_pushy_follow_up_is_replaced_by_the_fallback(fake_openai, company):
    fake_openai.reply("উত্তর")
    inbound = capture(company, "দাম কত?")
    run_job(inbound.job_id)
    fake_openai.reply("শেষ সুযোগ! দেরি করবেন না, আজই জানান।")

    run_job(jobs("followup_bumpup")[0])

    nudge = Message.objects.get(lead_id=inbound.lead_id, message_type="followup")
    assert nudge.body == "আপনার কোনো প্রশ্ন থাকলে আমাদের জানান, আমরা সাহায্য করতে প্রস্তুত।"
    assert codes(AISession.objects.get(purpose="followup")) == ["tone_pressure"]


def test_a_sequence_step_with_a_look_alike_link_sends_the_fallback(fake_openai, company):
    lead = LeadFactory(company=company, channel="console", contact__name="Rahim")
    template = PromptTemplate.objects.create(company=company, agent_type="sales", locale="bn", name="nudge")
    template_version_approve(version=template_version_create(template=template, body="Write to {{ contact_name }}."))
    sequence = Sequence.objects.create(company=company, name="AI nurture", pipeline=lead.pipeline)
    SequenceStep.objects.create(sequence=sequence, order=1, prompt_template=template)
    fake_openai.reply("রহিম, নতুন ব্যাচের তথ্য দেখুন https://app.sheba.xyz.batch-info.net/new এ।")
    sequence_enroll(sequence=sequence, lead=lead)
    sequences_advance()

    run_job(jobs("sequence_step")[0])

    (message,) = Message.objects.filter(lead=lead, message_type="sequence_step")
    assert message.body == "আমাদের সাথে থাকার জন্য ধন্যবাদ। কোনো প্রশ্ন থাকলে জানাবেন।"
    assert codes(AISession.objects.get(purpose="sequence_step")) == ["link_lookalike"]


# --- SmartEngage reminders ----------------------------------------------------------------------------


@pytest.fixture
def reminders(company, twilio_account):
    templates_seed_defaults(company=company)
    return company


def sent_sms(fake_twilio):
    return [request["Body"] for request in fake_twilio.requests]


@pytest.mark.parametrize(
    ("draft", "code"),
    [("প্রিয় করিম, আপনার সার্ভিসের সময় হয়েছে। বুক করুন: [BOOKING_LINK]", "wrong_recipient"),
     ("প্রিয় রুমানা, লগইন করে বুক করুন https://shebа.xyz [BOOKING_LINK]", "link_lookalike"),
     ("প্রিয় রুমানা, এবার ২০% ছাড়! বুক করুন: [BOOKING_LINK]", "unapproved_percentage"),
     ("প্রিয় {customer_name}, বুক করুন: [BOOKING_LINK]", "placeholder"),
     ("প্রিয় রুমানা, শেষ সুযোগ! বুক করুন: [BOOKING_LINK]", "tone_pressure")],
)
def test_a_reminder_draft_that_fails_a_check_goes_out_as_the_named_fallback_with_the_link(
    reminders, fake_openai, fake_twilio, draft, code
):
    customer = customer_due(reminders, name="রুমানা সরকার", locale="bn")
    service = customer.bookings.get().service
    fake_openai.reply(draft)

    outcome = smartengage_reminder_send(company=reminders, customer=customer, channel=Channel.SMS)

    assert (outcome.status, outcome.reason) == ("sent", "safety_rejected")
    (body,) = sent_sms(fake_twilio)
    # the fallback names the customer (first name, no case ending), the service and the brand
    assert body.startswith(f"প্রিয় রুমানা, আপনার {service.name_bn} আবার করিয়ে নেওয়ার সময় হয়ে এসেছে।")
    assert "https://app.sheba.xyz/l/" in body and body.endswith(f"— {reminders.name}")
    session = AISession.objects.get(correlation_id=outcome.correlation_id)
    assert code in codes(session)


def test_the_reminder_prompt_is_written_for_a_bengali_reader(reminders, fake_openai, fake_twilio):
    customer = customer_due(reminders, name="মোঃ রফিকুল ইসলাম", locale="bn", days=45)
    fake_openai.reply("প্রিয় রফিকুল, আপনার সার্ভিসের সময় হয়েছে। বুক করুন: [BOOKING_LINK]\n— Alpha Home Services")

    outcome = smartengage_reminder_send(company=reminders, customer=customer, channel=Channel.SMS)

    assert outcome.reason == ""  # the model's text went out
    system, user = (message["content"] for message in fake_openai.last_request["messages"])
    assert system.startswith("আপনি একটি হোম সার্ভিস প্রতিষ্ঠানের হয়ে") and "তুমি" not in system
    assert "গ্রাহকের নাম: রফিকুল\n" in user and "-কে" not in user and "গ্রাহক গ্রাহক" not in user
    booking = customer.bookings.get()
    assert "শেষ বুকিং: ৪৫ দিন আগে" in user and "সার্ভিসের দাম: ৳১,৫০০" in user
    assert "মাধ্যম: এসএমএস" in user and "১৬৬ অক্ষরের মধ্যে" in user
    assert f"{booking.finished_at:%Y-%m-%d}" not in user  # no ISO dates; Bengali dates instead
    assert not any(character.isdigit() and character.isascii() for character in user.replace("[BOOKING_LINK]", ""))


def test_offline_a_reminder_is_the_fallback_without_a_name_when_none_is_known(reminders, fake_twilio, settings):
    settings.OPENAI_API_KEY = ""
    customer = customer_due(reminders, name="", locale="bn")

    outcome = smartengage_reminder_send(company=reminders, customer=customer, channel=Channel.SMS)

    (body,) = sent_sms(fake_twilio)
    assert outcome.status == "sent" and body.startswith("প্রিয় গ্রাহক, আপনার ")
    assert "গ্রাহক গ্রাহক" not in body


def test_a_reminder_whose_model_text_the_moderation_endpoint_flags_goes_out_as_the_fallback(
    reminders, fake_openai, fake_twilio
):
    customer = customer_due(reminders, name="রুমানা সরকার", locale="bn")
    fake_openai.reply("প্রিয় রুমানা, আপনার সার্ভিসের সময় হয়েছে। বুক করুন: [BOOKING_LINK]")
    fake_openai.flag("harassment")

    outcome = smartengage_reminder_send(company=reminders, customer=customer, channel=Channel.SMS)

    assert outcome.reason == "safety_rejected"
    # the endpoint saw the model's words, not our link
    assert "[BOOKING_LINK]" not in fake_openai.moderation_requests[0]["input"]
    assert "https://" not in fake_openai.moderation_requests[0]["input"]


# --- the studio ---------------------------------------------------------------------------------------


@pytest.fixture
def reminder_template(reminders):
    return PromptTemplate.objects.get(company=reminders, name="reminder")


def test_the_studio_judges_no_prompt_only_a_sample(reminder_template):
    customer = customer_due(reminder_template.company, name="রুমানা সরকার", locale="bn")
    body = reminder_template.versions.get(status="approved").body

    result = template_preview(template=reminder_template, body=body, subject_id=customer.pk)

    assert result["checked_text"] == "" and result["note"].startswith("Type a sample message")
    assert all(row["is_safe"] is None and row["reasons"] == [] for row in result["channels"])


def test_the_studio_lists_every_violation_of_a_sample_with_advice(reminder_template):
    customer = customer_due(reminder_template.company, name="রুমানা সরকার", locale="bn")
    sample = "প্রিয় করিম, শেষ সুযোগ! ২০% ছাড় পেতে বিকাশ পিন পাঠান: bit.ly/x [BOOKING_LINK]"

    result = template_preview(template=reminder_template, body="{{ customer_name }}", subject_id=customer.pk,
                              sample_output=sample)

    sms = next(row for row in result["channels"] if row["channel"] == "sms")
    assert sms["is_safe"] is False
    assert [reason["code"] for reason in sms["reasons"]] == [
        "credential_request", "wrong_recipient", "link_shortener", "unapproved_percentage", "unapproved_discount",
        "tone_pressure"]
    assert all(reason["message"] and reason["advice"] for reason in sms["reasons"])


def test_a_studio_sample_keeps_the_link_placeholder_for_the_preview(reminder_template, fake_openai):
    customer = customer_due(reminder_template.company, name="রুমানা সরকার", locale="bn")
    fake_openai.reply("প্রিয় রুমানা, আপনার সার্ভিসের সময় হয়েছে: [BOOKING_LINK]")
    body = reminder_template.versions.get(status="approved").body

    sample = template_sample_generate(template=reminder_template, body=body, subject_id=customer.pk)

    assert sample["text"] == "প্রিয় রুমানা, আপনার সার্ভিসের সময় হয়েছে: [BOOKING_LINK]" and sample["reasons"] == []
    preview = template_preview(template=reminder_template, body=body, subject_id=customer.pk,
                               sample_output=sample["text"])
    assert all(row["is_safe"] for row in preview["channels"]), preview["channels"]
