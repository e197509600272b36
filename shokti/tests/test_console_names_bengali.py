"""The console's model names in the staff member's language: every field, model and choice label of our apps is
marked for translation (a field left to Django's derived name, "created at", is never translated), and a staff
member who chose Bengali sees Bengali column headings, form labels, help texts, filter titles, choices and the
console's messages (a service's English error is translated where the console shows it); English unchanged."""

from __future__ import annotations

import json

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import translation
from django.utils.functional import Promise

OUR_APPS = {"crm", "coaching", "engage", "reports", "channels_app"}


def our_models():
    return [model for model in apps.get_models() if model._meta.app_label in OUR_APPS]


def test_every_field_and_model_of_our_apps_has_a_translatable_name():
    unnamed, plain = [], []
    for model in our_models():
        for field in model._meta.concrete_fields:
            if field.auto_created:  # the auto id, the parent links
                continue
            name = f"{model._meta.label}.{field.name}"
            if field._verbose_name is None:
                unnamed.append(name)
            elif not isinstance(field._verbose_name, Promise):
                plain.append(name)
        for option in ("verbose_name", "verbose_name_plural"):
            if not isinstance(model._meta.original_attrs.get(option), Promise):
                plain.append(f"{model._meta.label} Meta.{option}")
    assert len(our_models()) > 50
    assert unnamed == [], "fields named by Django (their English is never translated): add verbose_name=_()"
    assert plain == [], "names that are plain strings, not gettext_lazy"


def test_no_help_text_of_our_models_is_a_plain_string():
    plain = [
        f"{model._meta.label}.{field.name}"
        for model in our_models()
        for field in [*model._meta.concrete_fields, *model._meta.many_to_many]
        if field.help_text and not isinstance(field.help_text, Promise)
    ]
    with_help = sum(1 for model in our_models() for field in model._meta.concrete_fields if field.help_text)
    assert with_help > 100
    assert plain == [], "help texts that are plain strings, not gettext_lazy"


def test_no_choice_label_of_our_models_is_a_plain_string():
    plain = [
        f"{model._meta.label}.{field.name}: {label!r}"
        for model in our_models()
        for field in model._meta.concrete_fields
        for _value, label in field.flatchoices
        if not isinstance(label, Promise)
    ]
    assert plain == []


@pytest.fixture
def bengali(client, staff_user):
    client.force_login(staff_user)
    client.post(reverse("set_language"), {"language": "bn", "next": "/admin/"})
    return client  # the root conftest puts the default language back after the test


def page(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


@pytest.mark.django_db
def test_the_contacts_list_and_a_campaigns_form_speak_bengali(bengali, company):
    from crm.tests.factories import ContactFactory
    from engage.tests.test_campaign_admin import campaign_of

    ContactFactory(company=company, name="Rahima", phone="+8801711000001")
    campaign = campaign_of(company)

    contacts = page(bengali, reverse("admin:crm_contact_changelist"))
    form = page(bengali, reverse("admin:engage_campaign_change", args=[campaign.pk]))

    # column headings from model fields, and a filter title derived from one
    assert "তৈরির সময়" in contacts and "এসএমএসে সম্মতি" in contacts and "ইমেইলে সম্মতি" in contacts
    assert "Created at" not in contacts and "Is sms consented" not in contacts
    # form labels, a choice label and the model's name
    assert "প্রোমো কোড" in form and "লিংকের মেয়াদ (ঘণ্টা)" in form and "স্মার্টএনগেজ রিমাইন্ডার" in form
    assert "Promo code" not in form and "Link ttl hours" not in form and ">SmartEngage reminders<" not in form

    bengali.post(reverse("set_language"), {"language": "en", "next": "/admin/"})
    contacts = page(bengali, reverse("admin:crm_contact_changelist"))
    form = page(bengali, reverse("admin:engage_campaign_change", args=[campaign.pk]))
    assert "Created at" in contacts and "Is sms consented" in contacts
    assert "Promo code" in form and "Link ttl hours" in form and "SmartEngage reminders" in form


@pytest.mark.django_db
def test_coachnova_pages_speak_bengali(bengali, company):
    from coaching.models import CoachingRecipient, CoachingRun, CoachingSettings
    from coaching.punctuality import local_today
    from coaching.tests.helpers import worker_of
    from crm.permissions import OPERATIONS, grant

    grant(OPERATIONS, "coaching", ["view_coachingsettings", "change_coachingsettings", "view_coachingrun",
                                   "view_coachingrecipient"])
    settings_row, _created = CoachingSettings.objects.get_or_create(company=company)
    worker = worker_of(company, name="Karim Mia")
    run = CoachingRun.objects.create(company=company, as_of=local_today(company), status="completed")
    CoachingRecipient.objects.create(run=run, company=company, worker=worker, status="skipped", reason="capped")

    form = page(bengali, reverse("admin:coaching_coachingsettings_change", args=[settings_row.pk]))
    recipients = page(bengali, reverse("admin:coaching_coachingrecipient_changelist"))
    run_page = page(bengali, reverse("admin:coaching_coachingrun_change", args=[run.pk]))

    assert "ছাড়ের মিনিট" in form and "কারা কোচিং পাবেন" in form and "নীরব সময় শুরুর ঘণ্টা" in form
    assert "Grace minutes" not in form and "Who is coached" not in form
    assert "সীমা পূর্ণ" in recipients and "উত্তরের কারণ" in recipients  # a choice label, a column heading
    assert ">Capped<" not in recipients and "Reply reason" not in recipients
    assert "এখনও মাপা যায় না" in run_page and "প্রভাব" in run_page and "ট্রিগার" in run_page
    assert "Not measurable yet" not in run_page


@pytest.mark.django_db
def test_a_burnout_alert_speaks_bengali(bengali, company):
    from reports.burnout.models import BurnoutAlert
    from reports.burnout.services import burnout_evaluate
    from reports.tests.helpers import overworked, worker_of

    overworked(worker_of(company, name="Karim Mia"), zone="Mirpur")
    burnout_evaluate(company=company)
    alert = BurnoutAlert.objects.get(company=company)

    alerts = page(bengali, reverse("admin:reports_burnoutalert_changelist"))
    alert_page = page(bengali, reverse("admin:reports_burnoutalert_change", args=[alert.pk]))

    assert "জোন ও সেবা অনুযায়ী অমীমাংসিত বার্নআউট সতর্কতা" in alerts and "সেবার বিভাগ" in alerts
    assert "Unresolved burnout alerts" not in alerts and "Service category" not in alerts
    assert "কী করা হয়েছে" in alert_page and "ব্যবস্থাটি লিখুন" in alert_page and "স্বাভাবিক হওয়ার সময়" in alert_page
    assert "Record the action" not in alert_page and "Cleared at" not in alert_page


@pytest.mark.django_db
def test_the_ai_settings_form_shows_its_help_texts_in_bengali(bengali, company):
    from engage.ai.models import AIConfig

    config = AIConfig.objects.create(company=company)
    form = page(bengali, reverse("admin:engage_aiconfig_change", args=[config.pk]))

    assert "আসা বার্তার উত্তর AI দিয়ে দিন।" in form and "মনে করিয়ে দেওয়ার আগে নীরবতার সময়।" in form
    assert "Answer inbound messages with AI replies." not in form and "Silence before a bump-up." not in form
    assert "শক্তি অপারেশন" in form and "Shokti operations" not in form  # the console's header

    bengali.post(reverse("set_language"), {"language": "en", "next": "/admin/"})
    form = page(bengali, reverse("admin:engage_aiconfig_change", args=[config.pk]))
    assert "Answer inbound messages with AI replies." in form


@pytest.mark.django_db
def test_starting_coachnova_while_a_run_is_active_says_so_in_bengali_and_the_api_stays_english(bengali, company):
    from coaching.models import CoachingRun, CoachingSettings
    from coaching.punctuality import local_today
    from coaching.runs import CoachingRunLocked, coaching_run_trigger
    from crm.permissions import OPERATIONS, grant

    grant(OPERATIONS, "coaching", ["view_coachingsettings", "change_coachingsettings"])
    settings_row, _created = CoachingSettings.objects.get_or_create(company=company)
    CoachingRun.objects.create(company=company, as_of=local_today(company), status="running")

    response = bengali.post(reverse("admin:coaching_coachingsettings_changelist"),
                            {"action": "run_now", "_selected_action": [settings_row.pk]}, follow=True)

    html = response.content.decode()
    assert "এই কোম্পানির একটি কোচনোভা রান আগে থেকেই সারিতে, চলছে বা থামানো আছে।" in html
    assert "already queued, running or paused" not in html
    assert CoachingRun.objects.filter(company=company).count() == 1
    # the service's own text (what the API replies with) stays English whatever language is active
    with translation.override("bn"), pytest.raises(CoachingRunLocked, match="already queued, running or paused"):
        coaching_run_trigger(company=company)


@pytest.mark.django_db
def test_a_burnout_step_refused_by_the_service_is_explained_in_bengali(bengali, company):
    from reports.burnout.models import BurnoutAlert
    from reports.burnout.services import burnout_evaluate
    from reports.tests.helpers import overworked, worker_of

    overworked(worker_of(company, name="Karim Mia"), zone="Mirpur")
    burnout_evaluate(company=company)
    alert = BurnoutAlert.objects.get(company=company)

    act = reverse("admin:reports_burnoutalert_step", args=[alert.pk, "act"])
    html = bengali.post(act, {"action": "fewer_jobs", "note": " "}, follow=True).content.decode()

    assert "কী করা হয়েছে তা লিখুন।" in html and "Say what was done." not in html
    alert.refresh_from_db()
    assert alert.status == BurnoutAlert.Status.OPEN


@pytest.mark.django_db
def test_an_experiment_action_refused_by_the_service_is_explained_in_bengali(bengali, company):
    from crm.permissions import OPERATIONS, grant
    from engage.experiments.services import experiment_start
    from engage.models import Campaign
    from engage.tests.test_experiments import experiment_for

    grant(OPERATIONS, "engage", ["view_experiment", "change_experiment"])
    campaign = Campaign.objects.create(company=company, name="Daily reminders", channel="console")
    experiment, _control, _variant = experiment_for(campaign, weights=(0, 0), start=False)

    html = bengali.post(reverse("admin:engage_experiment_changelist"),
                        {"action": "start", "_selected_action": [experiment.pk]}, follow=True).content.decode()

    assert "অন্তত একটি ভ্যারিয়েন্টের ওজন লাগে।" in html and "At least one variant needs a weight." not in html
    experiment.refresh_from_db()
    assert experiment.status == "draft"
    with translation.override("bn"), pytest.raises(ValidationError) as refused:
        experiment_start(experiment=experiment)
    assert refused.value.messages == ["At least one variant needs a weight."]  # what the API would say


@pytest.mark.django_db
def test_a_policy_form_whose_daily_cap_exceeds_the_weekly_cap_is_refused_in_bengali(bengali, company):
    from crm.permissions import OPERATIONS, grant
    from engage.policy.services import policy_get_or_create

    grant(OPERATIONS, "engage", ["view_engagementpolicy", "change_engagementpolicy"])
    policy = policy_get_or_create(company=company)
    form = {
        "company": company.pk, "default_preset": "default", "attribution_window_hours": 48,
        "customer_daily_limit": 5, "customer_weekly_limit": 3, "customer_min_hours_between": 12,
        "worker_daily_limit": 1, "worker_weekly_limit": 1, "worker_min_hours_between": 72,
        "presets-TOTAL_FORMS": 0, "presets-INITIAL_FORMS": 0, "presets-MIN_NUM_FORMS": 0, "presets-MAX_NUM_FORMS": 1000,
    }
    response = bengali.post(reverse("admin:engage_engagementpolicy_change", args=[policy.pk]), form)

    html = response.content.decode()
    assert response.status_code == 200  # the form again, with the error
    assert "দৈনিক সীমা সাপ্তাহিক সীমার বেশি হতে পারে না।" in html
    assert "The daily cap cannot exceed the weekly cap." not in html
    policy.refresh_from_db()
    assert policy.customer_daily_limit != 5


@pytest.mark.django_db
def test_the_experiment_results_and_plan_cells_speak_bengali(bengali, company):
    from crm.permissions import OPERATIONS, grant
    from engage.models import Campaign
    from engage.tests.test_experiments import experiment_for

    grant(OPERATIONS, "engage", ["view_experiment", "change_experiment"])
    campaign = Campaign.objects.create(company=company, name="Daily reminders", channel="console")
    experiment, _control, _variant = experiment_for(campaign)  # started: results, no outcomes yet

    html = page(bengali, reverse("admin:engage_experiment_change", args=[experiment.pk]))

    assert "ভ্যারিয়েন্ট" in html and "প্রতি ১০০-তে হার" in html and "কখনো নয় (ফলাফল রিফ্রেশ করুন)" in html
    assert "Rate per 100" not in html and "never (refresh the outcomes)" not in html and "Phase 1;" not in html
    assert "ওজন বদলান (নতুন পর্ব)" in html and "Change the weights" not in html
    assert "শনাক্তযোগ্য হবে" in html and "units a day" not in html and "Detectable after" not in html  # the plan


@pytest.mark.django_db
def test_an_experiment_variant_refused_by_its_model_is_explained_in_bengali_and_stays_english_for_the_api(company):
    from django.forms import modelform_factory

    from engage.admin.experiments import ExperimentVariantInline
    from engage.experiments.models import ExperimentVariant
    from engage.models import Campaign
    from engage.tests.test_experiments import experiment_for

    campaign = Campaign.objects.create(company=company, name="Daily reminders", channel="console")
    experiment, _control, _variant = experiment_for(campaign, start=False)
    form_class = modelform_factory(ExperimentVariant, form=ExperimentVariantInline.form, fields=["name", "kind", "weight", "template_version"])
    data = {"name": "C", "kind": "template_version", "weight": 10}

    with translation.override("bn"):
        form = form_class(data, instance=ExperimentVariant(experiment=experiment))
        assert not form.is_valid()
        assert form.errors["template_version"] == ["টেমপ্লেট-সংস্করণের ভ্যারিয়েন্টে তার সংস্করণের নাম দিতে হয়।"]
        with pytest.raises(ValidationError) as refused:
            ExperimentVariant(experiment=experiment, name="C", kind="template_version", weight=10).full_clean()
    assert refused.value.message_dict["template_version"] == ["A template-version variant names its version."]

    with translation.override("en"):
        form = form_class(data, instance=ExperimentVariant(experiment=experiment))
        assert form.errors["template_version"] == ["A template-version variant names its version."]


@pytest.mark.django_db
def test_the_studio_explains_an_unknown_variable_in_bengali(client, company):
    from engage.prompts.models import PromptTemplate
    from engage.prompts.services import templates_seed_defaults
    from engage.tests.test_studio import marketer_of, post_json, url

    templates_seed_defaults(company=company)
    reminder = PromptTemplate.objects.get(company=company, name="reminder")
    client.force_login(marketer_of(company, "mina@alpha.test"))
    client.post(reverse("set_language"), {"language": "bn", "next": "/admin/"})
    refused = post_json(client, url("studio_preview", reminder), {"body": "{{ salary }}"})

    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["message"].startswith("অজানা ভেরিয়েবল: salary।") and error["fields"]["body"] == [error["message"]]


@pytest.mark.django_db
def test_a_reply_the_service_refuses_is_explained_in_bengali_in_the_inbox(bengali, company, staff_user):
    from crm.tests.factories import LeadFactory
    from engage.conversations.handoff import lead_manual_reply

    lead = LeadFactory(company=company, channel="sms", contact__is_sms_consented=False)

    response = bengali.post(reverse("admin:crm_lead_act", args=[lead.pk, "reply"]), {"body": "আপনাকে কল করছি"})

    assert response.status_code == 400
    text = json.dumps(response.json(), ensure_ascii=False)
    assert "এই যোগাযোগটি sms থেকে অপ্ট-আউট করেছেন।" in text and "opted out" not in text
    with translation.override("bn"), pytest.raises(ValidationError) as refused:  # the service itself stays English
        lead_manual_reply(lead=lead, actor=staff_user, body="hello")
    assert refused.value.message_dict["body"] == ["The contact has opted out of sms."]
