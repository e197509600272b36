"""Prompt templates: sandboxed strict rendering, immutable versions, approval, the defaults a new company gets."""

import pytest
from django.core.exceptions import ValidationError
from django.db.models.signals import post_save
from django.urls import reverse

from crm.models import Company, User
from crm.tests.factories import LeadFactory
from engage.models import Message, PromptTemplate, PromptTemplateVersion
from engage.prompts.defaults import DEFAULT_TEMPLATES
from engage.prompts.rendering import TEMPLATE_VARIABLES, template_latest_approved, template_render
from engage.prompts.services import template_version_approve, template_version_create


def test_render_fills_declared_variables():
    body = "প্রিয় {{ customer_name }}, আপনার {{ service_name_bn }} এর সময় হয়েছে। {{ deep_link }}"
    text = template_render(
        body=body, agent_type="smartengage",
        context={"customer_name": "ফাতিমা", "service_name_bn": "হোম ক্লিনিং", "deep_link": "https://x.test/b"},
    )
    assert text == "প্রিয় ফাতিমা, আপনার হোম ক্লিনিং এর সময় হয়েছে। https://x.test/b"


def test_an_unknown_variable_is_named_in_the_error():
    with pytest.raises(ValidationError) as error:
        template_render(body="Hi {{ customer_name }} {{ salary }} {{ zz }}", agent_type="smartengage", context={})
    message = error.value.message_dict["body"][0]
    assert message.startswith("Unknown variable(s): salary, zz.")
    assert "customer_name" in message


def test_a_declared_variable_missing_from_the_context_is_an_error():
    with pytest.raises(ValidationError) as error:
        template_render(body="Hi {{ contact_name }}", agent_type="sales", context={})
    assert "contact_name" in error.value.message_dict["body"][0]


def test_the_sandbox_refuses_unsafe_attribute_access():
    with pytest.raises(ValidationError):
        template_render(body="{{ contact_name.__class__.__mro__ }}", agent_type="sales", context={"contact_name": "x"})


def test_a_syntax_error_is_a_validation_error():
    with pytest.raises(ValidationError) as error:
        template_render(body="Hi {{ contact_name ", agent_type="sales", context={"contact_name": "x"})
    assert "syntax error" in error.value.message_dict["body"][0]


def test_every_agent_type_documents_its_variables():
    assert set(TEMPLATE_VARIABLES) == {"sales", "smartengage", "coachnova"}
    assert all(description for variables in TEMPLATE_VARIABLES.values() for description in variables.values())


def without_defaults(*companies) -> None:
    """Remove the default templates a company gets when it is created (as a company from before that had none)."""
    names = [name for _, name, _, _ in DEFAULT_TEMPLATES]
    PromptTemplate.objects.filter(company__in=companies, name__in=names).delete()


@pytest.fixture
def template(company):
    return PromptTemplate.objects.create(company=company, agent_type="sales", locale="bn", name="welcome")


@pytest.mark.django_db
def test_versions_are_numbered_and_a_bad_body_creates_nothing(template, staff_user):
    first = template_version_create(template=template, body="Hello {{ contact_name }}", author=staff_user)
    second = template_version_create(template=template, body="Hi {{ contact_name }}", author=staff_user)
    assert (first.number, second.number, first.status) == (1, 2, "draft")

    with pytest.raises(ValidationError):
        template_version_create(template=template, body="Hi {{ unknown_thing }}", author=staff_user)
    assert template.versions.count() == 2


@pytest.mark.django_db
def test_approving_a_version_archives_the_previously_approved_one(template, staff_user):
    first = template_version_create(template=template, body="v1 {{ contact_name }}")
    second = template_version_create(template=template, body="v2 {{ contact_name }}")

    template_version_approve(version=first, actor=staff_user)
    template_version_approve(version=second, actor=staff_user)

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("archived", "approved")
    assert second.approved_by == staff_user and second.approved_at is not None


@pytest.mark.django_db
def test_a_version_body_is_immutable(template):
    version = template_version_create(template=template, body="v1 {{ contact_name }}")
    version.body = "changed"
    with pytest.raises(ValidationError):
        version.save()
    version.refresh_from_db()
    assert version.body == "v1 {{ contact_name }}"


@pytest.mark.django_db
def test_latest_approved_is_scoped_to_company_agent_and_locale(template, company, other_company):
    without_defaults(company, other_company)
    assert template_latest_approved(company=company, agent_type="sales", locale="bn") is None
    version = template_version_approve(version=template_version_create(template=template, body="{{ stage }}"))
    template_version_create(template=template, body="draft {{ stage }}")
    english = PromptTemplate.objects.create(company=company, agent_type="sales", locale="en", name="welcome")
    template_version_approve(version=template_version_create(template=english, body="en {{ stage }}"))

    assert template_latest_approved(company=company, agent_type="sales", locale="bn") == version
    assert template_latest_approved(company=other_company, agent_type="sales", locale="bn") is None
    assert template_latest_approved(company=company, agent_type="coachnova", locale="en") is None
    assert template_latest_approved(company=company, agent_type="sales", locale="bn", name="other") is None


@pytest.mark.django_db
def test_a_message_remembers_its_template_version(template, company):
    version = template_version_create(template=template, body="{{ stage }}")
    lead = LeadFactory(company=company)
    message = Message.objects.create(
        company=company, contact=lead.contact, lead=lead, direction="outbound", channel="console", body="x",
        template_version=version,
    )
    assert list(version.messages.all()) == [message]
    assert PromptTemplateVersion.objects.get(pk=version.pk).messages.count() == 1


# --- Admin ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_version_added_in_the_admin_is_checked_numbered_and_approvable(client, company, template):
    from django.urls import reverse

    from crm.models import Membership
    from crm.tests.factories import StaffUserFactory

    # Marketing writes and publishes templates (the template studio's migration 0011); Operations reads.
    staff_user = StaffUserFactory(email="mina@alpha.test", groups=["Marketing"])
    Membership.objects.create(user=staff_user, company=company, role=Membership.Role.MARKETING)
    client.force_login(staff_user)
    add = reverse("admin:engage_prompttemplateversion_add")

    refused = client.post(add, {"template": template.pk, "body": "Hi {{ salary }}"})
    assert refused.status_code == 200 and "Unknown variable(s): salary." in refused.content.decode()
    assert template.versions.count() == 0

    assert client.post(add, {"template": template.pk, "body": "Hi {{ contact_name }}"}).status_code == 302
    version = template.versions.get()
    assert (version.number, version.status, version.author) == (1, "draft", staff_user)

    client.post(reverse("admin:engage_prompttemplateversion_changelist"),
                {"action": "approve", "_selected_action": [version.pk]})
    version.refresh_from_db()
    assert (version.status, version.approved_by) == ("approved", staff_user)


@pytest.mark.django_db
def test_another_companys_staff_cannot_see_or_approve_our_versions(client, other_staff_user, template):
    from django.urls import reverse

    version = template_version_create(template=template, body="{{ stage }}")
    client.force_login(other_staff_user)

    assert client.get(reverse("admin:engage_prompttemplateversion_change", args=[version.pk])).status_code == 404
    client.post(reverse("admin:engage_prompttemplateversion_changelist"),
                {"action": "approve", "_selected_action": [version.pk]})
    version.refresh_from_db()
    assert version.status == "draft"


@pytest.mark.django_db
def test_the_history_migration_upgrades_only_an_untouched_seeded_reminder_and_reverses(company, other_company):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("engage.migrations.0015_smartengage_reminder_booking_history")

    def reminder(owner, body):
        template = PromptTemplate.objects.create(company=owner, agent_type="smartengage", locale="bn", name="reminder")
        PromptTemplateVersion.objects.create(template=template, number=1, body=body, status="approved")
        return template

    without_defaults(company, other_company)  # companies from before the reminder was seeded
    seeded = reminder(company, migration.V1_BODY)
    edited = reminder(other_company, "প্রিয় {{ customer_name }}, {{ deep_link }}")

    migration.add_history(apps, None)

    assert list(seeded.versions.order_by("number").values_list("number", "status")) == [
        (1, "archived"), (2, "approved")
    ]
    upgraded = template_latest_approved(company=company, agent_type="smartengage", locale="bn", name="reminder")
    assert "{{ booking_history }}" in upgraded.body and upgraded.body == migration.WITH_HISTORY_BODY
    assert list(edited.versions.values_list("number", "status")) == [(1, "approved")]

    migration.remove_history(apps, None)

    assert list(seeded.versions.values_list("number", "status")) == [(1, "approved")]


@pytest.mark.django_db
def test_the_seed_migration_gives_every_company_an_approved_bengali_smartengage_v1_once(company, other_company):
    import importlib

    from django.apps import apps

    from engage.prompts.rendering import template_variables_check

    migration = importlib.import_module("engage.migrations.0007_smartengage_default_templates")
    without_defaults(company, other_company)  # companies that existed when the migration ran
    # `other_company` already has its own reminder: the migration leaves it alone.
    own = PromptTemplate.objects.create(company=other_company, agent_type="smartengage", locale="bn", name="reminder")
    PromptTemplateVersion.objects.create(template=own, number=1, body="{{ deep_link }}", status="approved")

    migration.seed(apps, None)
    migration.seed(apps, None)  # a second run adds nothing

    for name in (migration.SYSTEM_NAME, migration.USER_NAME):
        version = template_latest_approved(company=company, agent_type="smartengage", locale="bn", name=name)
        assert (version.number, version.status, version.template.locale) == (1, "approved", "bn")
        assert version.approved_at is not None
        template_variables_check(agent_type="smartengage", body=version.body)  # only declared variables
        assert version.template.versions.count() == 1
    assert list(own.versions.values_list("number", "body")) == [(1, "{{ deep_link }}")]
    seeded = template_latest_approved(company=other_company, agent_type="smartengage", locale="bn", name="reminder_system")
    assert seeded is not None and seeded.number == 1


@pytest.mark.django_db
def test_a_company_created_later_starts_with_every_default_template(client):
    # given: a superuser adding a company in the admin
    admin_user = User.objects.create_superuser(email="root@shokti.test", password="pass-word-123")
    client.force_login(admin_user)

    # when
    response = client.post(reverse("admin:crm_company_add"), {
        "name": "Gamma Tutors", "slug": "gamma", "default_region": "BD", "timezone": "Asia/Dhaka", "is_active": "on",
        "webhook_url": "", "new_webhook_secret": "",
    })

    # then: every default, approved v1, ready for its campaigns and sequences
    assert response.status_code == 302
    gamma = Company.objects.get(slug="gamma")
    published = {
        (version.template.agent_type, version.template.name, version.body)
        for version in PromptTemplateVersion.objects.filter(template__company=gamma, number=1, status="approved")
        .select_related("template")
    }
    assert published == {(agent_type, name, body) for agent_type, name, body, _ in DEFAULT_TEMPLATES}
    assert {"smartengage", "sales"} <= {agent_type for agent_type, *_ in published}


@pytest.mark.django_db
def test_a_company_saved_again_or_loaded_raw_gets_nothing_more(company):
    company.name = "Alpha Home Services Ltd"
    company.save()
    assert PromptTemplateVersion.objects.filter(template__company=company).count() == len(DEFAULT_TEMPLATES)

    # a fixture load (raw save) writes the rows it holds, and nothing else
    loaded = Company(name="Loaded", slug="loaded")
    post_save.send(sender=Company, instance=loaded, created=True, raw=True)
    assert not PromptTemplate.objects.filter(company__slug="loaded").exists()
