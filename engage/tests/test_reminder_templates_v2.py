"""Templates worth sending: the v2 reminder prompts and fallbacks, the migration that moves untouched
defaults to them, Bengali formatting helpers, and reminder emails with one greeting."""

import datetime as dt
import importlib
from decimal import Decimal

import pytest
from django.apps import apps
from django.core import mail

from channels_app.adapters.email import EmailAdapter
from channels_app.base import OutboundMessage
from engage.ai.bengali import date_bn, first_name, money_bn, number_bn
from engage.models import FallbackText, PromptTemplate, PromptTemplateVersion
from engage.prompts.defaults import DEFAULT_TEMPLATES, SYSTEM_PROMPT_V2, USER_PROMPT_V2
from engage.prompts.rendering import template_latest_approved, template_render, template_variables_check

MIGRATION = importlib.import_module("engage.migrations.0025_smartengage_reminder_v2")
HISTORY = importlib.import_module("engage.migrations.0015_smartengage_reminder_booking_history")
V1 = importlib.import_module("engage.migrations.0007_smartengage_default_templates")


@pytest.mark.parametrize(
    ("name", "given"),
    [("রুমানা সরকার", "রুমানা"), ("মোঃ রফিকুল ইসলাম", "রফিকুল"), ("Md. Karim Uddin", "Karim"),
     ("Dr. Nusrat Jahan", "Nusrat"), ("মোছাঃ ফাতেমা বেগম", "ফাতেমা"), ("", ""), ("  ", "")],
)
def test_the_given_name_leaves_titles_out(name, given):
    assert first_name(name) == given


def test_numbers_dates_and_money_in_bengali():
    assert number_bn(1500) == "১,৫০০" and number_bn(45) == "৪৫"
    assert date_bn(dt.date(2026, 11, 15)) == "১৫ নভেম্বর ২০২৬"
    assert money_bn(Decimal("1500.00")) == "৳১,৫০০" and money_bn(Decimal("99.50")) == "৳৯৯.৫০"
    assert money_bn(None) == ""


def context(**overrides):
    values = {"company_name": "Sheba Home", "customer_name": "রুমানা সরকার", "customer_first_name": "রুমানা",
              "service_name": "AC servicing", "service_name_bn": "এসি সার্ভিসিং", "service_price": "৳১,৫০০",
              "days_since_last_booking": "৪৫", "booking_history": "- ১৫ নভেম্বর ২০২৬: এসি সার্ভিসিং (৪৫ দিন আগে)",
              "promo_code": "", "channel_name_bn": "এসএমএস", "max_characters": "১৬৬", "deep_link": "[BOOKING_LINK]"}
    return {**values, **overrides}


def test_the_v2_prompts_use_apni_and_no_hyphenated_case_endings():
    for agent_type, name, body, _ in DEFAULT_TEMPLATES:
        template_variables_check(agent_type=agent_type, body=body)
        assert "তুমি" not in body and "লেখো" not in body, name
        assert "}}-" not in body, name  # no case ending glued to a variable
    system = template_render(body=SYSTEM_PROMPT_V2, agent_type="smartengage", context=context())
    assert "\"আপনি\" বলে সম্বোধন" in system and "— Sheba Home" in system
    named = template_render(body=USER_PROMPT_V2, agent_type="smartengage", context=context())
    assert named.startswith("গ্রাহকের নাম: রুমানা\n") and "সার্ভিসের দাম: ৳১,৫০০" in named
    nameless = template_render(body=USER_PROMPT_V2, agent_type="smartengage",
                               context=context(customer_name="", customer_first_name=""))
    assert nameless.startswith("গ্রাহকের নাম জানা নেই") and "গ্রাহক গ্রাহক" not in nameless


@pytest.mark.django_db
def test_the_migration_moves_only_untouched_defaults_and_reverses(company, other_company):
    def template(owner, name, body):
        created = PromptTemplate.objects.create(company=owner, agent_type="smartengage", locale="bn", name=name)
        PromptTemplateVersion.objects.create(template=created, number=1, body=body, status="approved")
        return created

    # Companies come with today's defaults: this test stands for companies seeded before v2.
    PromptTemplate.objects.filter(company__in=[company, other_company]).delete()
    seeded_system = template(company, "reminder_system", V1.SYSTEM_BODY)
    seeded_user = template(company, "reminder", HISTORY.WITH_HISTORY_BODY)
    edited_system = template(other_company, "reminder_system", "আপনি আমাদের সহকারী। {{ company_name }}")
    edited_user = template(other_company, "reminder", "প্রিয় {{ customer_name }}, {{ deep_link }}")
    FallbackText.objects.create(company=other_company, message_type="reminder", locale="bn", body="নিজস্ব লেখা")

    MIGRATION.forward(apps, None)

    for seeded, body in ((seeded_system, SYSTEM_PROMPT_V2), (seeded_user, USER_PROMPT_V2)):
        assert list(seeded.versions.order_by("number").values_list("number", "status")) == [(1, "archived"),
                                                                                           (2, "approved")]
        latest = template_latest_approved(company=company, agent_type="smartengage", locale="bn", name=seeded.name)
        assert latest.body == body
    # the migration's frozen copies are today's defaults
    assert (MIGRATION.SYSTEM_V2, MIGRATION.USER_V2) == (SYSTEM_PROMPT_V2, USER_PROMPT_V2)
    for edited in (edited_system, edited_user):
        assert list(edited.versions.values_list("number", "status")) == [(1, "approved")]
    global_fallback = FallbackText.objects.get(company=None, message_type="reminder", locale="bn")
    assert global_fallback.body == MIGRATION.FALLBACKS["bn"][1]
    assert FallbackText.objects.get(company=other_company).body == "নিজস্ব লেখা"

    MIGRATION.backward(apps, None)

    assert list(seeded_user.versions.values_list("number", "status")) == [(1, "approved")]
    assert FallbackText.objects.get(company=None, message_type="reminder", locale="bn").body == (
        MIGRATION.FALLBACKS["bn"][0])


@pytest.mark.django_db
def test_new_companies_get_the_v2_texts(company):
    from engage.prompts.services import templates_seed_defaults

    templates_seed_defaults(company=company)
    bodies = {version.template.name: version.body for version in PromptTemplateVersion.objects.filter(
        template__company=company).select_related("template")}
    assert {name: bodies[name] for name in ("reminder_system", "reminder")} == {
        "reminder_system": SYSTEM_PROMPT_V2, "reminder": USER_PROMPT_V2,
    }
    assert set(bodies) == {name for _, name, _, _ in DEFAULT_TEMPLATES}


def send(body, settings, company, name="রুমানা সরকার"):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    EmailAdapter({}).send(OutboundMessage(company_id=company.pk, channel="email", body=body, message_id=None,
                                          contact_id=None, to_email="rumana@example.test", to_name=name, subject="s"))
    sent = mail.outbox[-1]
    return sent.body, sent.alternatives[0][0]


@pytest.mark.django_db
def test_a_bengali_reminder_email_has_one_greeting_and_a_bengali_unsubscribe_line(settings, company):
    text, html = send("প্রিয় রুমানা, আপনার এসি সার্ভিসিংয়ের সময় হয়েছে।\n— Sheba Home", settings, company)
    assert text.startswith("প্রিয় রুমানা,") and "রুমানা সরকার," not in text and "রুমানা সরকার," not in html
    assert "আনসাবস্ক্রাইব করুন" in text and "Unsubscribe" not in text
    assert "এখানে আনসাবস্ক্রাইব করুন" in html and ">Unsubscribe<" not in html


@pytest.mark.django_db
def test_an_english_email_keeps_the_english_unsubscribe_line(settings, company):
    text, html = send("Dear Rumana, your AC service is due.", settings, company, name="Rumana Sarkar")
    assert text.startswith("Dear Rumana,") and "Unsubscribe:" in text and ">Unsubscribe<" in html


@pytest.mark.django_db
def test_a_fallback_renders_names_once_per_kind_and_filters_still_work(company):
    from crm.tests.factories import ContactFactory
    from engage.ai.safety import fallback_render

    body = "{% if customer_first_name %}প্রিয় {{ customer_first_name }}{% else %}প্রিয় গ্রাহক{% endif %}, {{ service_name_bn }}"
    for name, expected in (("রুমানা সরকার", "প্রিয় রুমানা, এসি"), ("মোঃ রফিকুল ইসলাম", "প্রিয় রফিকুল, এসি"),
                           ("", "প্রিয় গ্রাহক, এসি")):
        contact = ContactFactory(company=company, name=name)
        assert fallback_render(body=body, company=company, contact=contact,
                               context={"service_name_bn": "এসি"}) == expected
    shouted = fallback_render(body="Dear {{ customer_first_name|upper }}", company=company,
                              contact=ContactFactory(company=company, name="Rumana Sarkar"))
    assert shouted == "Dear RUMANA"
    assert fallback_render(body="{{ broken", company=company) == "{{ broken"
