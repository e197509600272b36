"""SmartEngage: the safety filter judges the text that is sent (the signed link in), on SMS, under every flag.

A Bengali SMS is UCS-2 (70 characters, 67 a part when concatenated); an SMS carries the short link
(`<SHORT_LINK_BASE_URL><code>`, 33 characters here) to the 250-310-character signed one. These tests
set `AIConfig.sms_max_segments` to the limit the fallback with the link fits and the draft with it
does not (`limit_between`), and use the long texts (LONG_DRAFT, LONG_FALLBACK: four segments with
the link) where a reminder is meant not to fit the default three.
"""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import cache

from crm.models import Channel
from engage.ai.client import AI_GENERATION_OFF_REASON, FALLBACK_REJECTED_REASON, SAFETY_FILTER_OFF_REASON
from engage.ai.config import ai_config_for
from engage.ai.safety import LINK_PLACEHOLDER, sms_segments
from engage.campaigns.deeplinks import SHORT_CODE_LENGTH, deeplink_verify, short_url
from engage.campaigns.runs import campaign_run_trigger
from engage.campaigns.smartengage.generation import DRY_RUN_NOT_CALLED
from engage.campaigns.smartengage.pipeline import smartengage_bulk_send, smartengage_reminder_send
from engage.models import AISession, Campaign, FallbackText, Job, Message, ShortLink
from engage.policy.services import policy_get_or_create
from engage.prompts.services import templates_seed_defaults
from engage.tests.campaign_helpers import customer_due
from engage.tests.helpers import run_job

FALLBACK = "সময় হয়েছে, এখনই বুক করুন:"  # the company's own reminder/bn fallback (see sms_company)
# 134 characters as the model writes it (two UCS-2 segments), 120 without the placeholder.
DRAFT = (
    "প্রিয় গ্রাহক, আপনার এসি সার্ভিসিংয়ের সময় হয়ে গেছে। অনেক দিন পেরিয়েছে, "
    "এখনই একটি সুবিধাজনক সময় বেছে নিন। বুক করুন: [BOOKING_LINK]"
)
# Four segments with the short link, over the default limit of three.
LONG_SENTENCE = "অনুগ্রহ করে মনে রাখবেন, আমাদের দক্ষ কর্মীরা আপনার বাড়িতে এসে কাজটি যত্ন সহকারে সম্পন্ন করবেন। "
LONG_DRAFT = LONG_SENTENCE + DRAFT
LONG_FALLBACK = LONG_SENTENCE * 2 + FALLBACK
DRAFT_WITHOUT_PLACEHOLDER = "প্রিয় গ্রাহক, আপনার এসি সার্ভিসিংয়ের সময় হয়ে গেছে। এখনই বুক করুন।"


@pytest.fixture
def sms_company(company, twilio_account):
    """The company with its reminder templates and a Twilio SMS account (the local fake Twilio)."""
    templates_seed_defaults(company=company)
    FallbackText.objects.create(company=company, message_type="reminder", locale="bn", body=FALLBACK)
    return company


def limit_between() -> int:
    """The SMS segment limit the fallback with a short link fits and DRAFT with one does not (every code is as long)."""
    link = short_url(code="x" * SHORT_CODE_LENGTH)
    limit = sms_segments(f"{FALLBACK}\n{link}")
    assert sms_segments(DRAFT.replace(LINK_PLACEHOLDER, link)) > limit
    return limit


def long_fallback(company) -> None:
    FallbackText.objects.filter(company=company, message_type="reminder", locale="bn").update(body=LONG_FALLBACK)
    cache.clear()


def token_of(link: str) -> str:
    """The signed token behind a short link (the row the send wrote)."""
    assert link.startswith(short_url(code="")), link
    target = ShortLink.objects.get(code=link.rsplit("/", 1)[1]).target_url
    return parse_qs(urlsplit(target).query)["token"][0]


def sms_max_segments(company, segments: int, **fields) -> None:
    config = ai_config_for(company=company)
    config.sms_max_segments = segments
    for name, value in fields.items():
        setattr(config, name, value)
    config.save()


def policy_flags(company, **flags) -> None:
    policy = policy_get_or_create(company=company)
    for name, value in flags.items():
        setattr(policy, name, value)
    policy.save()


def link_of(text: str) -> str:
    return next(word for word in text.split() if word.startswith("http"))


def sent_sms(fake_twilio) -> list[str]:
    """The bodies the provider received: what the customers were sent."""
    return [request["Body"] for request in fake_twilio.requests]


@pytest.mark.django_db
def test_a_bengali_sms_draft_that_fits_alone_but_not_with_the_link_goes_out_as_the_fallback_with_the_link(
    sms_company, fake_openai, fake_twilio
):
    # given a draft of two segments, and a limit its fallback with the link fits
    fake_openai.reply(DRAFT)
    customer = customer_due(sms_company)
    limit = limit_between()
    sms_max_segments(sms_company, limit)
    assert sms_segments(DRAFT) == 2
    # when
    outcome = smartengage_reminder_send(company=sms_company, customer=customer, channel=Channel.SMS)
    # then the fallback went out, with the customer's signed link, within the limit
    assert (outcome.status, outcome.reason) == ("sent", "safety_rejected")
    (body,) = sent_sms(fake_twilio)
    link = link_of(body)
    assert body == f"{FALLBACK}\n{link}"
    assert deeplink_verify(token=token_of(link)).customer_id == customer.pk
    assert sms_segments(body) <= limit
    # because the draft with that link is longer than the limit (the filter judged the final text)
    assert sms_segments(DRAFT.replace(LINK_PLACEHOLDER, link)) > limit
    message = Message.objects.get(pk=outcome.message_id)
    assert (message.body, message.status, message.channel) == (body, "sent", "sms")
    session = AISession.objects.get(correlation_id=message.correlation_id)
    assert (session.outcome, session.response_text, session.final_text) == ("rejected", DRAFT, body)
    assert session.error.startswith("Too long for SMS: ") and session.error.endswith(f"at most {limit} allowed.")
    assert session.message_id == message.pk


@pytest.mark.django_db
def test_when_even_the_fallback_with_the_link_is_too_long_nothing_is_sent_and_the_reason_says_so(
    sms_company, fake_openai, fake_twilio
):
    # given the default limit of three segments, and a draft and a fallback of four with the link
    assert ai_config_for(company=sms_company).sms_max_segments == 3
    long_fallback(sms_company)
    fake_openai.reply(LONG_DRAFT)
    customer = customer_due(sms_company)
    # when
    outcome = smartengage_reminder_send(company=sms_company, customer=customer, channel=Channel.SMS)
    # then nobody gets a text, none is truncated, and the reason names both verdicts (a configuration problem)
    assert (outcome.status, outcome.reason, outcome.message_id) == ("skipped", "safety_rejected", None)
    assert FALLBACK_REJECTED_REASON in outcome.error and outcome.error.count("Too long for SMS") == 2
    assert outcome.body == f"{LONG_FALLBACK}\n{link_of(outcome.body)}"
    assert sent_sms(fake_twilio) == [] and not Message.objects.exists() and not Job.objects.exists()
    session = AISession.objects.get(correlation_id=outcome.correlation_id)
    assert (session.outcome, session.error, session.message_id) == ("rejected", outcome.error, None)
    # and with the limit raised, the next send goes out
    sms_max_segments(sms_company, 4)
    assert smartengage_reminder_send(company=sms_company, customer=customer, channel=Channel.SMS).status == "sent"


@pytest.mark.django_db
def test_a_draft_that_drops_the_placeholder_still_gets_the_link(sms_company, fake_openai, fake_twilio):
    sms_max_segments(sms_company, 8)
    fake_openai.reply(DRAFT_WITHOUT_PLACEHOLDER)
    customer = customer_due(sms_company)
    outcome = smartengage_reminder_send(company=sms_company, customer=customer, channel=Channel.SMS)
    assert (outcome.status, outcome.reason) == ("sent", "")
    (body,) = sent_sms(fake_twilio)
    link = link_of(body)
    assert body == f"{DRAFT_WITHOUT_PLACEHOLDER}\n{link}"
    assert deeplink_verify(token=token_of(link)).customer_id == outcome.customer_id
    assert AISession.objects.get(correlation_id=outcome.correlation_id).final_text == body


@pytest.mark.django_db
def test_deep_links_off_sends_no_link_leaves_no_placeholder_and_requires_no_link(sms_company, fake_openai, fake_twilio):
    # given deep links off, and a fixed required link in the AI settings (it is for replies, not reminders)
    policy_flags(sms_company, is_deeplink_enabled=False)
    sms_max_segments(sms_company, 3, required_link="https://alpha.test/book")
    fake_openai.reply(DRAFT)
    # when
    outcome = smartengage_reminder_send(company=sms_company, customer=customer_due(sms_company), channel=Channel.SMS)
    # then the model's text goes out as written, without the placeholder and without any link
    assert (outcome.status, outcome.reason) == ("sent", "")
    (body,) = sent_sms(fake_twilio)
    assert body == DRAFT.replace(" [BOOKING_LINK]", "") and "http" not in body and LINK_PLACEHOLDER not in body
    assert sms_segments(body) == 2
    session = AISession.objects.get(correlation_id=outcome.correlation_id)
    assert (session.outcome, session.error, session.final_text) == ("ok", "", body)


@pytest.mark.django_db
def test_ai_generation_off_sends_the_fallback_with_the_link_without_calling_the_model(
    sms_company, fake_openai, fake_twilio
):
    policy_flags(sms_company, is_ai_generation_enabled=False)
    customer = customer_due(sms_company)
    limit = limit_between()
    sms_max_segments(sms_company, limit)
    fake_openai.reply(DRAFT)
    outcome = smartengage_reminder_send(company=sms_company, customer=customer, channel=Channel.SMS)
    assert fake_openai.requests == []
    # the company chose the fallback: that is no AI failure
    assert (outcome.status, outcome.reason) == ("sent", "")
    (body,) = sent_sms(fake_twilio)
    assert body == f"{FALLBACK}\n{link_of(body)}" and sms_segments(body) <= limit
    session = AISession.objects.get(correlation_id=outcome.correlation_id)
    assert (session.outcome, session.error, session.final_text) == ("fallback", AI_GENERATION_OFF_REASON, body)


@pytest.mark.django_db
def test_ai_generation_off_still_judges_the_fallback_with_the_link(sms_company, fake_openai, fake_twilio):
    policy_flags(sms_company, is_ai_generation_enabled=False)  # and the default three segments
    long_fallback(sms_company)
    outcome = smartengage_reminder_send(company=sms_company, customer=customer_due(sms_company), channel=Channel.SMS)
    assert fake_openai.requests == [] and sent_sms(fake_twilio) == []
    assert (outcome.status, outcome.reason) == ("skipped", "safety_rejected")
    assert outcome.error.startswith(f"{AI_GENERATION_OFF_REASON} | {FALLBACK_REJECTED_REASON}: Too long for SMS")


@pytest.mark.django_db
def test_safety_filter_off_sends_the_final_text_unchecked(sms_company, fake_openai, fake_twilio):
    # given the filter off: a banned phrase and a text far over the three segments are not judged
    policy_flags(sms_company, is_safety_filter_enabled=False)
    draft = f"{LONG_DRAFT} ১০০% guaranteed results"
    fake_openai.reply(draft)
    outcome = smartengage_reminder_send(company=sms_company, customer=customer_due(sms_company), channel=Channel.SMS)
    assert (outcome.status, outcome.reason) == ("sent", "")
    (body,) = sent_sms(fake_twilio)
    link = link_of(body)
    assert body == draft.replace(LINK_PLACEHOLDER, link) and sms_segments(body) > 3
    session = AISession.objects.get(correlation_id=outcome.correlation_id)
    assert (session.outcome, session.error) == ("ok", SAFETY_FILTER_OFF_REASON)


@pytest.mark.django_db
def test_with_the_filter_on_the_same_banned_draft_is_rejected(sms_company, fake_openai, fake_twilio):
    # the counterpart of the test above: the flag is what let it through
    sms_max_segments(sms_company, 8)
    fake_openai.reply(f"{DRAFT} ১০০% guaranteed results")
    outcome = smartengage_reminder_send(company=sms_company, customer=customer_due(sms_company), channel=Channel.SMS)
    assert (outcome.status, outcome.reason) == ("sent", "safety_rejected")
    assert sent_sms(fake_twilio)[0].startswith(f"{FALLBACK}\nhttp")
    assert "banned phrase" in AISession.objects.get(correlation_id=outcome.correlation_id).error


@pytest.mark.django_db
def test_a_dry_run_shows_the_judged_final_texts_for_the_sample_and_beyond_it(
    sms_company, fake_openai, fake_twilio, settings
):
    # given a model sample of one customer out of two, and a limit the fallback with its link fits
    settings.SMARTENGAGE_DRY_RUN_MODEL_SAMPLE = 1
    fake_openai.reply(DRAFT)
    customers = [customer_due(sms_company) for _ in range(2)]
    limit = limit_between()
    sms_max_segments(sms_company, limit)
    # when
    result = smartengage_bulk_send(company=sms_company, customers=customers, channel=Channel.SMS, dry_run=True)
    # then the sampled draft was judged with its link (too long: the fallback), the other shows the fallback, marked
    assert len(fake_openai.requests) == 1 and (result.rendered, result.sent) == (2, 0)
    sampled, beyond = result.outcomes
    assert (sampled.status, sampled.reason, sampled.error) == ("dry_run", "safety_rejected", "")
    assert (beyond.status, beyond.reason, beyond.error) == ("dry_run", "", DRY_RUN_NOT_CALLED)
    for outcome in (sampled, beyond):
        assert outcome.body == f"{FALLBACK}\n{link_of(outcome.body)}" and sms_segments(outcome.body) <= limit
    assert sent_sms(fake_twilio) == [] and not Message.objects.exists()


@pytest.mark.django_db
def test_a_dry_run_shows_what_a_real_run_would_refuse(sms_company, fake_openai, fake_twilio, settings):
    # given the default three segments: neither the draft nor the fallback fits with the link
    settings.SMARTENGAGE_DRY_RUN_MODEL_SAMPLE = 1
    long_fallback(sms_company)
    fake_openai.reply(LONG_DRAFT)
    customers = [customer_due(sms_company) for _ in range(2)]
    result = smartengage_bulk_send(company=sms_company, customers=customers, channel=Channel.SMS, dry_run=True)
    assert (result.rendered, result.skipped, result.sent) == (0, 2, 0)
    sampled, beyond = result.outcomes
    assert (sampled.status, sampled.reason) == (beyond.status, beyond.reason) == ("skipped", "safety_rejected")
    assert sampled.error.startswith("Too long for SMS") and FALLBACK_REJECTED_REASON in sampled.error
    assert beyond.error.startswith(DRY_RUN_NOT_CALLED) and FALLBACK_REJECTED_REASON in beyond.error
    assert sent_sms(fake_twilio) == [] and not Message.objects.exists()


@pytest.mark.django_db
def test_a_campaign_run_keeps_the_refusal_on_the_recipient_and_the_next_run_reaches_them(
    sms_company, fake_openai, fake_twilio
):
    # given an SMS campaign at the default three segments, where neither text fits with the link
    long_fallback(sms_company)
    policy = policy_get_or_create(company=sms_company)
    policy.presets.filter(name="default").update(send_window_start_hour=0, send_window_end_hour=24)
    cache.clear()
    campaign = Campaign.objects.create(company=sms_company, name="SMS reminders", channel="sms")
    fake_openai.reply(LONG_DRAFT)
    customer = customer_due(sms_company)
    # when the run goes
    run = campaign_run_trigger(campaign=campaign)
    assert run_job(run.job) == "completed"
    # then nobody was sent anything, and the recipient row says why, with the text that was refused
    run.refresh_from_db()
    assert (run.status, run.sent, run.failed, run.skipped) == ("completed", 0, 0, 1)
    recipient = run.recipients.get(customer=customer)
    assert (recipient.status, recipient.reason, recipient.message_id) == ("skipped", "safety_rejected", None)
    assert FALLBACK_REJECTED_REASON in recipient.error and recipient.body.startswith(f"{LONG_FALLBACK}\nhttp")
    assert sent_sms(fake_twilio) == []
    # and when the next run's draft fits, it reminds them (a refusal is no intent for the cycle)
    fake_openai.reply(DRAFT)
    second = campaign_run_trigger(campaign=campaign)
    assert run_job(second.job) == "completed"
    second.refresh_from_db()
    assert (second.sent, second.skipped) == (1, 0)
    assert second.recipients.get(customer=customer).reason == ""
    (body,) = sent_sms(fake_twilio)
    assert body == DRAFT.replace(LINK_PLACEHOLDER, link_of(body)) and sms_segments(body) == 3
