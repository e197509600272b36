"""SmartEngage orchestrator: the ten steps, skip reasons, fallbacks, drafts never used, metrics."""

import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from crm.tests.factories import ServiceFactory
from engage.ai.bengali import date_bn
from engage.ai.safety import LINK_PLACEHOLDER
from engage.campaigns.deeplinks import deeplink_verify
from engage.campaigns.smartengage.pipeline import smartengage_bulk_send, smartengage_reminder_send
from engage.campaigns.smartengage.planning import smartengage_templates
from engage.models import AISession, Job, Message, PromptTemplate, PromptTemplateVersion
from engage.policy.consent import contact_zone
from engage.policy.services import policy_get_or_create
from engage.prompts.defaults import DEFAULT_TEMPLATES, USER_TEMPLATE_NAME
from engage.prompts.services import template_version_create, templates_seed_defaults
from engage.tests.campaign_helpers import AI_TEXT, customer_due
from shokti.metrics import ai_messages_sent_total, campaign_recipients_skipped_total

# The seeded reminder fallback (v2, migration 0024) names the customer, the service and the brand.
FALLBACK_START = "প্রিয় "


def counter(metric, **labels) -> float:
    return metric.labels(**labels)._value.get()


@pytest.fixture
def seeded(company):
    templates_seed_defaults(company=company)
    return company


@pytest.mark.django_db
def test_one_reminder_goes_through_all_ten_steps(seeded, fake_openai):
    # given
    fake_openai.reply(AI_TEXT)
    customer = customer_due(seeded, name="ফাতিমা")
    sent_before = counter(
        ai_messages_sent_total, agent_type="smartengage", channel="email", message_type="reminder", status="sent"
    )
    # when
    outcome = smartengage_reminder_send(company=seeded, customer=customer, promo_code="SAVE20", ttl_hours=24)
    # then
    assert (outcome.status, outcome.reason) == ("sent", "")
    message = Message.objects.get(pk=outcome.message_id)
    assert (message.status, message.channel, message.agent_type, message.message_type) == (
        "sent", "email", "smartengage", "reminder"
    )
    assert str(message.correlation_id) == outcome.correlation_id
    _, user_version = smartengage_templates(company=seeded, locale="bn")
    assert message.template_version == user_version
    assert message.job.task_name == "smartengage_send" and message.job.status == Job.Status.COMPLETED
    # the link replaced the placeholder, and it is signed for this customer, service and promo
    assert LINK_PLACEHOLDER not in message.body
    link = next(word for word in message.body.split() if word.startswith("http"))
    claims = deeplink_verify(token=parse_qs(urlsplit(link).query)["token"][0])
    assert (claims.customer_id, claims.promo_code, claims.correlation_id) == (
        customer.pk, "SAVE20", outcome.correlation_id
    )
    assert claims.service_id == customer.bookings.get().service_id
    # the prompt came from the approved template, with the customer's context
    prompt = fake_openai.last_request["messages"]
    assert prompt[0]["role"] == "system" and seeded.name in prompt[0]["content"]
    assert "ফাতিমা" in prompt[1]["content"] and "২২ দিন" in prompt[1]["content"]
    assert "SAVE20" in prompt[1]["content"] and LINK_PLACEHOLDER in prompt[1]["content"]
    booking = customer.bookings.get()  # the booking history, as the seeded template shows it: Bengali dates
    local = booking.finished_at.astimezone(contact_zone(contact=customer.contact))
    assert f"আগের বুকিং (নতুন থেকে পুরোনো):\n- {date_bn(local)}: " in prompt[1]["content"]
    assert "(২২ দিন আগে)" in prompt[1]["content"]
    session = AISession.objects.get(correlation_id=message.correlation_id)
    assert (session.outcome, session.message_id) == ("ok", message.pk)
    assert len(mail.outbox) == 1 and customer.contact.email in mail.outbox[0].to[0]
    assert (
        counter(ai_messages_sent_total, agent_type="smartengage", channel="email", message_type="reminder", status="sent")
        == sent_before + 1
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("contact", "reason"),
    [({"is_email_consented": False}, "no_consent"), ({"email": ""}, "no_address")],
)
def test_no_consent_or_no_address_skips_without_calling_the_model(seeded, fake_openai, contact, reason):
    customer = customer_due(seeded, **contact)
    skipped_before = counter(campaign_recipients_skipped_total, reason=reason)
    outcome = smartengage_reminder_send(company=seeded, customer=customer)
    assert (outcome.status, outcome.reason) == ("skipped", reason)
    assert fake_openai.requests == []
    assert not Message.objects.exists() and not Job.objects.exists()
    assert counter(campaign_recipients_skipped_total, reason=reason) == skipped_before + 1


@pytest.mark.django_db
def test_caps_skip_with_their_reason_and_staff_may_bypass_them(seeded, fake_openai):
    fake_openai.reply(AI_TEXT)
    customer = customer_due(seeded)
    first = smartengage_reminder_send(company=seeded, customer=customer)
    second = smartengage_reminder_send(company=seeded, customer=customer)
    assert (first.status, second.status, second.reason) == ("sent", "skipped", "daily_cap")
    policy = policy_get_or_create(company=seeded)
    policy.customer_daily_limit, policy.customer_weekly_limit, policy.customer_min_hours_between = 2, 1, 0
    policy.save()
    weekly = smartengage_reminder_send(company=seeded, customer=customer)
    assert (weekly.status, weekly.reason) == ("skipped", "weekly_cap")
    bypassed = smartengage_reminder_send(company=seeded, customer=customer, bypass_frequency_caps=True)
    assert bypassed.status == "sent"
    assert Message.objects.filter(contact=customer.contact, status="sent").count() == 2


@pytest.mark.django_db
def test_too_soon_is_its_own_reason(seeded, fake_openai):
    fake_openai.reply(AI_TEXT)
    policy = policy_get_or_create(company=seeded)
    policy.customer_daily_limit, policy.customer_weekly_limit, policy.customer_min_hours_between = 2, 2, 24
    policy.save()
    customer = customer_due(seeded)
    assert smartengage_reminder_send(company=seeded, customer=customer).status == "sent"
    outcome = smartengage_reminder_send(company=seeded, customer=customer)
    assert (outcome.status, outcome.reason) == ("skipped", "too_soon")


@pytest.mark.django_db
def test_ai_failure_sends_the_approved_fallback_and_says_why(seeded, fake_openai):
    fake_openai.fail(status=500, times=10)
    customer = customer_due(seeded)
    skipped_before = counter(campaign_recipients_skipped_total, reason="ai_failed_fallback")
    outcome = smartengage_reminder_send(company=seeded, customer=customer)
    assert (outcome.status, outcome.reason) == ("sent", "ai_failed_fallback")
    message = Message.objects.get(pk=outcome.message_id)
    assert message.body.startswith(FALLBACK_START) and "token=" in message.body
    assert AISession.objects.get(correlation_id=message.correlation_id).outcome == "error"
    assert counter(campaign_recipients_skipped_total, reason="ai_failed_fallback") == skipped_before + 1


@pytest.mark.django_db
def test_safety_rejection_sends_the_fallback_with_the_reason(seeded, fake_openai):
    fake_openai.reply("This is an English reply with 100% guaranteed results")
    outcome = smartengage_reminder_send(company=seeded, customer=customer_due(seeded))
    assert (outcome.status, outcome.reason) == ("sent", "safety_rejected")
    message = Message.objects.get(pk=outcome.message_id)
    assert message.body.startswith(FALLBACK_START)
    session = AISession.objects.get(correlation_id=message.correlation_id)
    assert session.outcome == "rejected" and "banned phrase" in session.error


@pytest.mark.django_db
def test_a_draft_version_never_goes_out(seeded, fake_openai, staff_user):
    fake_openai.reply(AI_TEXT)
    approved = PromptTemplateVersion.objects.get(template__company=seeded, template__name=USER_TEMPLATE_NAME)
    draft = template_version_create(
        template=approved.template, body="DRAFT PROMPT for {{ customer_name }} {{ deep_link }}", author=staff_user
    )
    outcome = smartengage_reminder_send(company=seeded, customer=customer_due(seeded))
    assert outcome.template_version_id == approved.pk != draft.pk
    assert "DRAFT PROMPT" not in fake_openai.last_request["messages"][1]["content"]


@pytest.mark.django_db
def test_a_company_without_templates_gets_the_defaults_on_first_use(company, fake_openai):
    PromptTemplate.objects.filter(company=company).delete()  # a company from before they were seeded on creation
    fake_openai.reply(AI_TEXT)
    outcome = smartengage_reminder_send(company=company, customer=customer_due(company))
    assert outcome.status == "sent"
    assert PromptTemplateVersion.objects.filter(template__company=company, status="approved").count() == len(
        DEFAULT_TEMPLATES
    )


@pytest.mark.django_db
def test_no_approved_template_is_a_validation_error_and_nothing_is_written(seeded, fake_openai):
    PromptTemplateVersion.objects.filter(template__company=seeded).update(status="archived")
    with pytest.raises(ValidationError) as error:
        smartengage_reminder_send(company=seeded, customer=customer_due(seeded))
    assert "template" in error.value.message_dict
    assert not Message.objects.exists() and not Job.objects.exists() and fake_openai.requests == []


@pytest.mark.django_db
def test_a_permanent_channel_failure_is_a_failed_outcome(seeded, fake_openai):
    fake_openai.reply(AI_TEXT)
    customer = customer_due(seeded)
    outcome = smartengage_reminder_send(company=seeded, customer=customer, channel="whatsapp_cloud")
    # No WhatsApp account is configured for the company: the adapter refuses for good.
    assert outcome.status == "failed" and outcome.error
    assert Message.objects.get(pk=outcome.message_id).status == "failed"


@pytest.mark.django_db
def test_bulk_calls_the_model_concurrently_and_counts(seeded, fake_openai, settings):
    # given three due customers, one without consent; the model notes how many calls it serves at once
    settings.AI_MAX_CONCURRENCY = 8
    in_flight = {"now": 0, "most": 0}
    lock = threading.Lock()

    def slow_answer(request):
        with lock:
            in_flight["now"] += 1
            in_flight["most"] = max(in_flight["most"], in_flight["now"])
        time.sleep(0.3)
        with lock:
            in_flight["now"] -= 1
        return AI_TEXT

    fake_openai.respond_with(slow_answer)
    customers = [customer_due(seeded) for _ in range(3)] + [customer_due(seeded, is_email_consented=False)]
    # when
    result = smartengage_bulk_send(company=seeded, customers=customers, batch_size=10)
    # then the three calls were in flight together, and the counts add up
    assert in_flight["most"] == 3
    assert result.as_dict() | {"duration_seconds": 0} == {
        "total_eligible": 4, "sent": 3, "failed": 0, "skipped": 1, "rendered": 0, "queued": 0, "duration_seconds": 0
    }
    assert len(fake_openai.requests) == 3
    assert Message.objects.filter(status="sent").count() == 3


@pytest.mark.django_db
def test_dry_run_renders_and_sends_nothing(seeded, fake_openai):
    fake_openai.reply(AI_TEXT)
    result = smartengage_bulk_send(company=seeded, customers=[customer_due(seeded)], dry_run=True)
    assert (result.rendered, result.sent) == (1, 0)
    assert "token=" in result.outcomes[0].body
    assert not Message.objects.exists() and not Job.objects.exists() and mail.outbox == []


@pytest.mark.django_db
def test_switched_off_ai_generation_sends_the_fallback_without_a_call(seeded, fake_openai):
    policy = policy_get_or_create(company=seeded)
    policy.is_ai_generation_enabled = False
    policy.save()
    outcome = smartengage_reminder_send(company=seeded, customer=customer_due(seeded))
    assert (outcome.status, outcome.reason) == ("sent", "") and fake_openai.requests == []
    message = Message.objects.get(pk=outcome.message_id)
    assert message.body.startswith(FALLBACK_START) and "token=" in message.body
    session = AISession.objects.get(correlation_id=message.correlation_id)
    assert (session.outcome, session.final_text, session.message_id) == ("fallback", message.body, message.pk)


@pytest.mark.django_db
def test_another_companys_service_is_refused(seeded, other_company, fake_openai):
    with pytest.raises(ValidationError):
        smartengage_reminder_send(
            company=seeded, customer=customer_due(seeded), service=ServiceFactory(company=other_company)
        )
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_seeding_default_templates_is_idempotent(company):
    PromptTemplate.objects.filter(company=company).delete()  # a company from before they were seeded on creation
    first = templates_seed_defaults(company=company)
    second = templates_seed_defaults(company=company)
    assert len(first) == len(DEFAULT_TEMPLATES) and second == []
    assert {version.status for version in first} == {"approved"}


@pytest.mark.django_db
def test_a_new_company_gets_every_default_approved_in_four_statements(django_assert_num_queries):
    from crm.models import Company

    with django_assert_num_queries(1 + 2 + 4):  # the company's INSERT, the savepoint and its release, the seed
        company = Company.objects.create(name="Gamma", slug="gamma")

    versions = PromptTemplateVersion.objects.filter(template__company=company).select_related("template")
    assert sorted((v.template.agent_type, v.template.name, v.body, v.number, v.status) for v in versions) == sorted(
        (agent_type, name, body, 1, "approved") for agent_type, name, body, _ in DEFAULT_TEMPLATES
    )
    assert all(version.approved_at is not None for version in versions)


@pytest.mark.django_db
def test_seeding_keeps_a_template_whose_versions_a_marketer_archived_and_fills_the_one_missing(company):
    from engage.prompts.services import template_version_approve

    user_template = PromptTemplate.objects.get(company=company, name=USER_TEMPLATE_NAME)
    template_version_approve(version=template_version_create(template=user_template, body="{{ customer_name }}"))
    PromptTemplateVersion.objects.filter(template=user_template).update(status="archived")
    missing = PromptTemplate.objects.filter(company=company).exclude(pk=user_template.pk).first()
    missing.delete()

    created = templates_seed_defaults(company=company)

    assert [(version.template.name, version.number) for version in created] == [(missing.name, 1)]
    assert set(user_template.versions.values_list("status", flat=True)) == {"archived"}


@pytest.mark.django_db(transaction=True)
def test_two_seeders_at_once_give_each_template_one_version(company):
    from django.db import connections

    PromptTemplateVersion.objects.filter(template__company=company).delete()
    start, created, errors = threading.Barrier(2), [], []

    def seed() -> None:
        try:
            start.wait(10)
            created.append(len(templates_seed_defaults(company=company)))
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=seed) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == [] and sorted(created) == [0, len(DEFAULT_TEMPLATES)]
    assert PromptTemplateVersion.objects.filter(template__company=company).count() == len(DEFAULT_TEMPLATES)
