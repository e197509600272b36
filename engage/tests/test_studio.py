"""The template studio: preview, variable checks, versions, publish and rollback, permissions."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from crm.models import Event, Membership
from crm.tests.factories import (
    BookingFactory,
    CustomerFactory,
    LeadFactory,
    StaffUserFactory,
    WorkerFactory,
)
from engage.ai.bengali import date_bn, number_bn
from engage.campaigns.deeplinks import SHORT_CODE_LENGTH, short_url
from engage.campaigns.runner import campaign_run_execute
from engage.campaigns.runs import campaign_run_trigger
from engage.models import Campaign, Message, PromptTemplate
from engage.policy.consent import contact_zone
from engage.policy.services import policy_get_or_create
from engage.prompts.services import template_version_create, templates_seed_defaults
from engage.studio.services import (
    EVENT_PUBLISHED,
    EVENT_ROLLED_BACK,
    SAMPLE_SIGNED_LINK,
    template_body_lint,
    template_draft_save,
    template_preview,
    template_publish,
    template_rollback,
    template_sample_generate,
    template_versions_diff,
)

NEW_WORDING = "প্রিয় {{ customer_name }}, আপনার {{ service_name_bn }} আবার করার সময় হয়েছে। {{ deep_link }}"


def marketer_of(company, email: str):
    user = StaffUserFactory(email=email, groups=["Marketing"])
    Membership.objects.create(user=user, company=company, role=Membership.Role.MARKETING)
    return user


@pytest.fixture
def marketer(company):
    """Mina: marketing staff of `company`."""
    return marketer_of(company, "mina@alpha.test")


@pytest.fixture
def other_marketer(other_company):
    """Omar: marketing staff of `other_company`."""
    return marketer_of(other_company, "omar@beta.test")


@pytest.fixture
def reminder(company) -> PromptTemplate:
    """The seeded SmartEngage reminder template: v1 approved."""
    templates_seed_defaults(company=company)
    return PromptTemplate.objects.get(company=company, name="reminder")


@pytest.fixture
def customer(company):
    customer = CustomerFactory(company=company, contact__name="ফাতিমা")
    booking = BookingFactory(company=company, customer=customer,
                             scheduled_at=timezone.now() - dt.timedelta(days=22, hours=2))
    customer.last_booking_at = booking.finished_at
    customer.save(update_fields=["last_booking_at"])
    return customer


def url(name: str, template: PromptTemplate) -> str:
    return reverse(f"admin:engage_prompttemplate_{name}", args=[template.pk])


def post_json(client, address: str, data) -> object:
    return client.post(address, json.dumps(data), content_type="application/json")


def version_numbers(template) -> list[tuple[int, str]]:
    return list(template.versions.order_by("number").values_list("number", "status"))


# --- Checks and preview (services) ----------------------------------------------------------------


def test_lint_names_unknown_variables_and_syntax_errors_with_their_line():
    assert template_body_lint(agent_type="smartengage", body="Hi {{ customer_name }} {{ salary }}") == {
        "error": "", "line": None, "variables": ["customer_name"], "unknown": ["salary"],
    }
    broken = template_body_lint(agent_type="smartengage", body="line one\nline two\n{{ customer_name }\n")
    assert broken == {"error": "Template syntax error on line 3: unexpected '}'", "line": 3,
                      "variables": [], "unknown": []}


@pytest.mark.django_db
def test_preview_renders_for_a_real_customer_with_verdicts_and_lengths(reminder, customer):
    sample = "প্রিয় ফাতিমা, আপনার সার্ভিস আবার করার সময় হয়েছে। [BOOKING_LINK]"
    result = template_preview(template=reminder, body=NEW_WORDING, subject_id=customer.pk, sample_output=sample)

    service = customer.bookings.get().service
    assert result["rendered"] == (
        f"প্রিয় ফাতিমা, আপনার {service.name_bn or service.name} আবার করার সময় হয়েছে। [BOOKING_LINK]"
    )
    assert result["subject"] == {"kind": "customer", "id": customer.pk, "label": f"ফাতিমা ({customer.contact.phone})"}
    channels = {row["channel"]: row for row in result["channels"]}
    assert set(channels) == {"sms", "whatsapp_cloud", "email"}
    # each channel judges the sample with its link in: the signed link in email, the 33-character short link on SMS
    without_link = len(sample) - len("[BOOKING_LINK]")
    assert channels["email"]["length"] == without_link + len(SAMPLE_SIGNED_LINK) and channels["email"]["is_safe"]
    assert channels["sms"]["length"] == without_link + len(short_url(code="x" * SHORT_CODE_LENGTH)) == 85
    assert channels["sms"]["segments"] == 2 and channels["sms"]["limit"] == "3 SMS segments"
    assert channels["sms"]["is_within_limit"] and channels["sms"]["is_safe"] and channels["sms"]["reasons"] == []


@pytest.mark.django_db
def test_preview_shows_the_customers_booking_history(reminder, customer):
    result = template_preview(template=reminder, body="আগের বুকিং:\n{{ booking_history }}", subject_id=customer.pk)

    booking = customer.bookings.get()
    service = booking.service.name_bn or booking.service.name
    days = (timezone.now() - booking.finished_at).days
    local = booking.finished_at.astimezone(contact_zone(contact=customer.contact))
    assert result["rendered"] == f"আগের বুকিং:\n- {date_bn(local)}: {service} ({number_bn(days)} দিন আগে)"


@pytest.mark.django_db
def test_preview_for_a_lead_and_for_a_worker_uses_their_own_figures(company):
    # given a sales template and a lead with an inbound message
    sales = PromptTemplate.objects.create(company=company, agent_type="sales", locale="bn", name="reply")
    lead = LeadFactory(company=company, contact__name="Rahim", summary="Wants a quote")
    Message.objects.create(company=company, contact=lead.contact, lead=lead, direction="inbound",
                           channel="console", body="How much is it?")
    body = "{{ contact_name }} at {{ stage }} on {{ channel }} said: {{ last_message }} ({{ summary }})"
    assert template_preview(template=sales, body=body, subject_id=lead.pk)["rendered"] == (
        f"Rahim at {lead.stage.name} on {lead.channel} said: How much is it? (Wants a quote)")

    # given a coaching template and a worker late to one of two bookings this month
    coaching = PromptTemplate.objects.create(company=company, agent_type="coachnova", locale="bn", name="coach")
    worker = WorkerFactory(company=company, contact__name="Karim")
    now = timezone.now()
    BookingFactory(company=company, worker=worker, scheduled_at=now - dt.timedelta(days=3),
                   arrived_at=now - dt.timedelta(days=3) + dt.timedelta(minutes=30))
    BookingFactory(company=company, worker=worker, scheduled_at=now - dt.timedelta(days=2),
                   arrived_at=now - dt.timedelta(days=2))
    body = "{{ worker_name }}: {{ on_time_rate }}% on time, {{ late_count }} late by {{ average_delay_minutes }} min in {{ period_days }} days"
    assert template_preview(template=coaching, body=body, subject_id=worker.pk)["rendered"] == (
        "Karim: 50% on time, 1 late by 30 min in 30 days")
    with pytest.raises(ValidationError):  # no such worker
        template_preview(template=coaching, body=body, subject_id=worker.pk + 1000)


@pytest.mark.django_db
def test_preview_verdict_is_on_the_sample_output_when_given(reminder, customer):
    result = template_preview(template=reminder, body=NEW_WORDING, subject_id=customer.pk,
                              sample_output="Call me on +8801999888777 today")
    verdicts = {row["channel"]: (row["is_safe"], row["reason"]) for row in result["channels"]}
    assert result["checked_is_sample"] is True
    assert verdicts["email"][0] is False and verdicts["email"][1].startswith("Not mostly Bengali")


@pytest.mark.django_db
def test_preview_refuses_another_companys_customer_and_unknown_variables(reminder, other_company):
    stranger = CustomerFactory(company=other_company)
    with pytest.raises(ValidationError) as refused:
        template_preview(template=reminder, body=NEW_WORDING, subject_id=stranger.pk)
    assert refused.value.message_dict == {"subject_id": [f"No customer {stranger.pk} in this company."]}
    with pytest.raises(ValidationError) as unknown:
        template_preview(template=reminder, body="{{ salary }}")
    assert unknown.value.message_dict["body"][0].startswith("Unknown variable(s): salary.")


@pytest.mark.django_db
def test_sample_without_a_model_is_the_fallback_and_says_so(reminder, customer, settings):
    settings.OPENAI_API_KEY = ""
    result = template_sample_generate(template=reminder, body=NEW_WORDING, subject_id=customer.pk)
    assert result["is_model_configured"] is False and result["is_fallback"] is True
    assert result["reason"] == "no API key configured" and result["text"]


@pytest.mark.django_db
def test_sample_with_the_model_sends_the_rendered_prompt(reminder, customer, fake_openai):
    fake_openai.reply("প্রিয় ফাতিমা, আবার বুক করুন।")
    result = template_sample_generate(template=reminder, body=NEW_WORDING, subject_id=customer.pk)
    # the link goes at the end when the model left no placeholder: the sample shows where
    assert (result["text"], result["is_fallback"], result["is_model_configured"]) == (
        "প্রিয় ফাতিমা, আবার বুক করুন।\n[BOOKING_LINK]", False, True)
    assert fake_openai.last_request["messages"][-1]["content"].startswith("প্রিয় ফাতিমা, আপনার")


# --- Versions, publish, rollback (services) -------------------------------------------------------


@pytest.mark.django_db
def test_every_save_is_a_new_draft_and_an_unchanged_body_is_refused(reminder, marketer):
    v1_body = reminder.versions.get().body
    draft = template_draft_save(template=reminder, body=NEW_WORDING, author=marketer)
    assert (draft.number, draft.status, draft.author) == (2, "draft", marketer)
    with pytest.raises(ValidationError):
        template_draft_save(template=reminder, body=NEW_WORDING, author=marketer)
    assert version_numbers(reminder) == [(1, "approved"), (2, "draft")]
    assert reminder.versions.get(number=1).body == v1_body


@pytest.mark.django_db
def test_publish_approves_a_draft_archives_the_live_one_and_records_the_event(reminder, marketer):
    draft = template_draft_save(template=reminder, body=NEW_WORDING, author=marketer)
    published = template_publish(version=draft, actor=marketer)
    assert (published.status, published.approved_by) == ("approved", marketer)
    assert version_numbers(reminder) == [(1, "archived"), (2, "approved")]
    event = Event.objects.get(type=EVENT_PUBLISHED)
    assert (event.company, event.actor, event.target) == (reminder.company, marketer, published)
    assert event.payload == {"template_id": reminder.pk, "template": "reminder", "agent_type": "smartengage",
                             "locale": "bn", "version": 2, "previous_version": 1}
    with pytest.raises(ValidationError):  # only a draft is published; the live one is not published twice
        template_publish(version=published, actor=marketer)


@pytest.mark.django_db
def test_rollback_reapproves_an_earlier_published_version_unchanged(reminder, marketer):
    v1 = reminder.versions.get()
    template_publish(version=template_draft_save(template=reminder, body=NEW_WORDING, author=marketer), actor=marketer)
    draft = template_draft_save(template=reminder, body=NEW_WORDING + " !", author=marketer)

    with pytest.raises(ValidationError):  # a draft was never published: publish it instead
        template_rollback(version=draft, actor=marketer)
    rolled = template_rollback(version=v1, actor=marketer)

    assert (rolled.pk, rolled.body, rolled.status) == (v1.pk, v1.body, "approved")
    assert version_numbers(reminder) == [(1, "approved"), (2, "archived"), (3, "draft")]
    event = Event.objects.get(type=EVENT_ROLLED_BACK)
    assert (event.payload["version"], event.payload["previous_version"], event.actor) == (1, 2, marketer)
    with pytest.raises(ValidationError):  # the live version is not a rollback target
        template_rollback(version=rolled, actor=marketer)


@pytest.mark.django_db
def test_diff_shows_both_versions_side_by_side(reminder, marketer):
    template_draft_save(template=reminder, body="নতুন লাইন {{ customer_name }}", author=marketer)
    table = template_versions_diff(template=reminder, from_number=1, to_number="2")
    assert table.strip().startswith('<table class="diff"')
    assert '<th colspan="2" class="diff_header">v1 (approved)</th>' in table
    assert '<th colspan="2" class="diff_header">v2 (draft)</th>' in table
    assert '<span class="diff_add">নতুন&nbsp;লাইন' in table
    with pytest.raises(ValidationError):
        template_versions_diff(template=reminder, from_number=1, to_number=9)


@pytest.fixture
def campaign(company):
    templates_seed_defaults(company=company)
    policy = policy_get_or_create(company=company)
    policy.presets.filter(name="default").update(send_window_start_hour=0, send_window_end_hour=24)
    cache.clear()
    yield Campaign.objects.create(company=company, name="Daily reminders", channel="console")
    cache.clear()


@pytest.mark.django_db
def test_a_draft_never_goes_out_and_the_published_version_does(campaign, customer, marketer, fake_openai):
    fake_openai.reply("প্রিয় গ্রাহক, আবার বুক করুন: [BOOKING_LINK]")
    reminder = PromptTemplate.objects.get(company=campaign.company, name="reminder")
    v1 = reminder.versions.get()
    draft = template_draft_save(template=reminder, body="খসড়া {{ customer_name }} {{ deep_link }}", author=marketer)

    run = campaign_run_trigger(campaign=campaign, is_dry_run=True)
    campaign_run_execute(run_id=run.pk)
    assert [row.template_version_id for row in run.recipients.all()] == [v1.pk]
    assert "খসড়া" not in fake_openai.last_request["messages"][-1]["content"]

    template_publish(version=draft, actor=marketer)
    second = campaign_run_trigger(campaign=campaign, is_dry_run=True)
    campaign_run_execute(run_id=second.pk)
    assert [row.template_version_id for row in second.recipients.all()] == [draft.pk]
    assert fake_openai.last_request["messages"][-1]["content"].startswith("খসড়া ফাতিমা")


# --- The admin views: three people and then some ------------------------------------------------


@pytest.mark.django_db
def test_marketer_opens_the_studio_and_sees_the_editor_and_publish_controls(client, marketer, reminder):
    template_version_create(template=reminder, body=NEW_WORDING, author=marketer)
    client.force_login(marketer)
    page = client.get(url("studio", reminder))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="studio-save"' in html and 'class="studio-publish" data-version="2"' in html
    assert "vendor/codemirror/codemirror.js" in html and "mode/jinja2/jinja2.js" in html
    assert "{{ deep_link }}" in html and "The signed booking link to include." in html
    assert 'id="live-version">v1<' in html and 'id="editing-version">v2<' in html
    change = client.get(reverse("admin:engage_prompttemplate_change", args=[reminder.pk])).content.decode()
    assert f'href="{url("studio", reminder)}" id="open-studio"' in change
    assert "Open the studio" in client.get(reverse("admin:engage_prompttemplate_changelist")).content.decode()


@pytest.mark.django_db
def test_marketer_previews_saves_publishes_and_rolls_back_over_json(client, marketer, reminder, customer):
    client.force_login(marketer)

    preview = post_json(client, url("studio_preview", reminder), {"body": NEW_WORDING, "subject_id": customer.pk})
    assert preview.status_code == 200 and preview.json()["rendered"].startswith("প্রিয় ফাতিমা")

    saved = post_json(client, url("studio_save", reminder), {"body": NEW_WORDING})
    assert (saved.status_code, saved.json()) == (201, {"version": 2, "status": "draft"})
    assert reminder.versions.get(number=2).author == marketer

    published = post_json(client, url("studio_publish", reminder), {"version": 2})
    assert (published.status_code, published.json()) == (200, {"version": 2, "status": "approved"})

    rolled = post_json(client, url("studio_rollback", reminder), {"version": 1})
    assert (rolled.status_code, rolled.json()) == (200, {"version": 1, "status": "approved"})
    assert list(Event.objects.order_by("id").values_list("type", flat=True)) == [EVENT_PUBLISHED, EVENT_ROLLED_BACK]

    diff = client.get(url("studio_diff", reminder), {"from": 1, "to": 2})
    assert diff.status_code == 200 and "v2 (archived)" in diff.json()["html"]

    subjects = client.get(url("studio_subjects", reminder), {"q": "ফাতি"})
    assert subjects.json() == {"kind": "customer", "results": [{"id": customer.pk, "label": f"ফাতিমা ({customer.contact.phone})"}]}


@pytest.mark.django_db
def test_bad_input_is_a_400_with_the_error_shape_and_nothing_written(client, marketer, reminder):
    client.force_login(marketer)
    broken = post_json(client, url("studio_save", reminder), {"body": "ok\n{% if customer_name %}\n"})
    assert broken.status_code == 400
    error = broken.json()["error"]
    assert error["code"] == "invalid" and error["line"] == 2
    assert error["fields"]["body"][0].startswith("Template syntax error on line 2: Unexpected end of template.")

    unknown = post_json(client, url("studio_preview", reminder), {"body": "{{ salary }}"})
    assert unknown.status_code == 400 and unknown.json()["error"]["message"].startswith("Unknown variable(s): salary.")

    not_json = client.post(url("studio_save", reminder), "{nope", content_type="application/json")
    assert not_json.status_code == 400 and not_json.json()["error"]["code"] == "invalid"
    assert post_json(client, url("studio_save", reminder), {"body": 5}).status_code == 400
    assert post_json(client, url("studio_publish", reminder), {"version": "x"}).status_code == 400
    assert post_json(client, url("studio_publish", reminder), {"version": 1}).status_code == 400  # already live
    assert post_json(client, url("studio_sample", reminder), {"body": NEW_WORDING, "channel": "fax"}).status_code == 400
    assert client.get(url("studio_diff", reminder), {"from": 1, "to": "zz"}).status_code == 400
    assert client.get(url("studio_save", reminder)).status_code == 405
    assert version_numbers(reminder) == [(1, "approved")] and not Event.objects.exists()


@pytest.mark.django_db
def test_operations_sees_the_template_read_only_and_every_post_is_403(client, staff_user, reminder):
    client.force_login(staff_user)
    page = client.get(url("studio", reminder))
    html = page.content.decode()
    assert page.status_code == 200 and 'id="read-only-note"' in html
    assert 'id="studio-save"' not in html and "studio-publish" not in html and "studio-rollback" not in html
    assert client.get(url("studio_diff", reminder), {"from": 1, "to": 1}).status_code == 200

    for name, data in [("studio_save", {"body": NEW_WORDING}), ("studio_preview", {"body": NEW_WORDING}),
                       ("studio_sample", {"body": NEW_WORDING}), ("studio_publish", {"version": 1}),
                       ("studio_rollback", {"version": 1})]:
        response = post_json(client, url(name, reminder), data)
        assert (name, response.status_code, response.json()["error"]["code"]) == (name, 403, "permission_denied")
    # nor through the version admin
    add = client.post(reverse("admin:engage_prompttemplateversion_add"), {"template": reminder.pk, "body": "x"})
    assert add.status_code == 403
    assert version_numbers(reminder) == [(1, "approved")] and not Event.objects.exists()


@pytest.mark.django_db
def test_another_companys_marketer_gets_404_everywhere(client, other_marketer, reminder):
    client.force_login(other_marketer)
    assert client.get(url("studio", reminder)).status_code == 404
    for name, data in [("studio_save", {"body": NEW_WORDING}), ("studio_preview", {"body": NEW_WORDING}),
                       ("studio_publish", {"version": 1}), ("studio_rollback", {"version": 1})]:
        assert post_json(client, url(name, reminder), data).status_code == 404
    assert client.get(url("studio_subjects", reminder)).status_code == 404
    assert client.get(url("studio_diff", reminder), {"from": 1, "to": 1}).status_code == 404
    assert version_numbers(reminder) == [(1, "approved")] and not Event.objects.exists()


@pytest.mark.django_db
def test_anonymous_is_sent_to_the_login_and_nothing_is_written(client, reminder):
    for name in ("studio", "studio_save", "studio_publish"):
        response = post_json(client, url(name, reminder), {"body": NEW_WORDING, "version": 1})
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert version_numbers(reminder) == [(1, "approved")]


@pytest.mark.django_db
def test_the_csrf_token_is_required(marketer, reminder):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(marketer)
    assert post_json(client, url("studio_save", reminder), {"body": NEW_WORDING}).status_code == 403
    assert version_numbers(reminder) == [(1, "approved")]


@pytest.mark.django_db
def test_marketing_and_operations_permissions_come_from_the_migration(marketer, staff_user):
    assert marketer.has_perm("engage.publish_prompttemplate") and marketer.has_perm("engage.add_prompttemplateversion")
    assert not marketer.has_perm("engage.delete_prompttemplateversion")
    assert staff_user.has_perm("engage.view_prompttemplate")
    assert not staff_user.has_perm("engage.publish_prompttemplate")
    assert not staff_user.has_perm("engage.add_prompttemplateversion")


@pytest.mark.django_db
def test_marketing_creates_a_template_and_operations_cannot(client, marketer, staff_user, company):
    # given a marketer and an Operations user (alice) of the same company
    add_url = reverse("admin:engage_prompttemplate_add")
    client.force_login(marketer)

    # when the marketer creates a template (with the add page's inline management form)
    page = client.get(add_url)
    management = {
        f"{formset.formset.prefix}-{name}": value
        for formset in page.context["inline_admin_formsets"]
        for name, value in {"TOTAL_FORMS": 0, "INITIAL_FORMS": 0}.items()
    }
    response = client.post(add_url, {
        "company": company.pk, "agent_type": "coachnova", "locale": "bn", "name": "coaching_gentle",
        "description": "Gentle punctuality coaching", **management,
    })

    # then it exists, for their company
    assert response.status_code == 302
    assert PromptTemplate.objects.filter(company=company, name="coaching_gentle", agent_type="coachnova").exists()
    client.force_login(staff_user)
    assert client.get(add_url).status_code == 403


@pytest.mark.django_db
def test_the_diff_has_no_stray_navigation_letters(reminder, marketer):
    template_draft_save(template=reminder, body="নতুন লাইন {{ customer_name }}", author=marketer)

    table = template_versions_diff(template=reminder, from_number=1, to_number=2)

    assert ">f</a>" not in table and ">t</a>" not in table and ">n</a>" not in table
    assert '<span class="diff_add">' in table


@pytest.mark.django_db
def test_the_studio_opens_on_the_live_version_after_a_rollback_and_confirms_a_save(client, reminder, marketer):
    client.force_login(marketer)
    v2 = template_draft_save(template=reminder, body=NEW_WORDING, author=marketer)
    page = client.get(url("studio", reminder)).content.decode()
    assert '<strong id="editing-version">v2</strong> (draft)' in page  # a newer draft is what one edits
    saved = client.get(url("studio", reminder), {"version": 2, "saved": 1}).content.decode()
    assert 'id="studio-saved"' in saved and "Saved as draft v2" in saved

    template_publish(version=v2, actor=marketer)
    template_rollback(version=reminder.versions.get(number=1), actor=marketer)

    page = client.get(url("studio", reminder)).content.decode()
    assert '<strong id="editing-version">v1</strong> (approved)' in page


@pytest.mark.django_db
def test_the_studio_speaks_bengali_to_a_marketer_who_chose_it(client, reminder, marketer):
    client.force_login(marketer)
    client.post(reverse("set_language"), {"language": "bn", "next": url("studio", reminder)})

    page = client.get(url("studio", reminder), {"version": 1, "saved": 1}).content.decode()
    catalog = client.get(reverse("admin:jsi18n")).content.decode()
    refused = post_json(client, url("studio_save", reminder), {"body": ""})

    # the page's own words, the saved note, and the JavaScript catalog the studio's script reads
    assert '<html lang="bn"' in page
    assert "নতুন খসড়া হিসেবে সংরক্ষণ করুন" in page and "Save as new draft" not in page
    assert "খসড়া v1 হিসেবে সংরক্ষিত" in page and "সংস্করণ তুলনা করুন" not in page  # one version: no diff
    assert f'src="{reverse("admin:jsi18n")}"' in page
    assert json.dumps("আগে অজানা ভেরিয়েবলগুলো ঠিক করুন।") in catalog  # studio.js: "Fix the unknown variables first."
    # an error the studio shows comes back in Bengali too
    assert refused.status_code == 400 and "টেমপ্লেটটি ফাঁকা।" in json.dumps(refused.json(), ensure_ascii=False)

    client.post(reverse("set_language"), {"language": "en", "next": "/admin/"})
    assert "Save as new draft" in client.get(url("studio", reminder)).content.decode()
