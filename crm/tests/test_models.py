import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from crm.models import Contact, Lead, Pipeline, Stage
from crm.services import contact_create, lead_move_to_stage, phone_normalize, pipeline_get_or_create_default
from crm.tests.factories import ContactFactory, LeadFactory, PipelineFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("01712345678", "BD", "+8801712345678"),
        ("+880 1712-345678", "BD", "+8801712345678"),
        ("+91 98765 43210", "BD", "+919876543210"),
        ("9876543210", "IN", "+919876543210"),
    ],
)
def test_phone_normalize_gives_e164(raw, region, expected):
    assert phone_normalize(phone=raw, region=region) == expected


@pytest.mark.parametrize("raw", ["", "hello", "123", "+880 17"])
def test_phone_normalize_rejects_bad_numbers(raw):
    with pytest.raises(ValidationError) as error:
        phone_normalize(phone=raw, region="BD")
    assert "phone" in error.value.message_dict


def test_contact_create_normalises_and_rejects_duplicate_phone(company):
    contact = contact_create(company=company, name="Fatima", phone="01712345678", email="Fatima@Example.test")
    assert (contact.phone, contact.email, contact.locale, contact.timezone) == (
        "+8801712345678", "fatima@example.test", "bn", "Asia/Dhaka",
    )
    with pytest.raises(ValidationError) as error:
        contact_create(company=company, name="Again", phone="+880 1712 345678")
    assert "already exists" in error.value.message_dict["phone"][0]
    assert Contact.objects.filter(company=company).count() == 1


def test_same_phone_is_allowed_in_another_company(company, other_company):
    contact_create(company=company, phone="01712345678")
    contact_create(company=other_company, phone="01712345678")
    assert Contact.objects.filter(phone="+8801712345678").count() == 2


def test_contacts_without_phone_do_not_collide(company):
    ContactFactory(company=company, phone="")
    ContactFactory(company=company, phone="")
    assert Contact.objects.filter(company=company, phone="").count() == 2


def test_stage_order_is_unique_per_pipeline(company):
    pipeline = PipelineFactory(company=company)
    with pytest.raises(IntegrityError):
        Stage.objects.create(pipeline=pipeline, name="Another", order=1)


def test_default_pipeline_has_five_ordered_stages_and_is_made_once(company):
    pipeline = pipeline_get_or_create_default(company=company)
    assert pipeline_get_or_create_default(company=company) == pipeline
    assert list(pipeline.stages.values_list("name", "order", "kind")) == [
        ("New", 1, "open"), ("Contacted", 2, "open"), ("Qualified", 3, "open"), ("Won", 4, "won"), ("Lost", 5, "lost"),
    ]
    assert Pipeline.objects.filter(company=company).count() == 1


def test_lead_move_to_stage_records_event_and_status(company, staff_user):
    lead = LeadFactory(company=company)
    won = lead.pipeline.stages.get(name="Won")

    lead = lead_move_to_stage(lead=lead, stage=won, actor=staff_user)

    assert (lead.stage, lead.status) == (won, Lead.Status.WON)
    event = company.events.get(type="stage.changed")
    assert (event.target, event.payload["from"], event.payload["to"], event.actor) == (lead, "New", "Won", staff_user)


def test_lead_move_to_stage_of_another_pipeline_is_refused(company):
    lead = LeadFactory(company=company)
    foreign_stage = PipelineFactory(company=company).stages.get(name="Won")
    with pytest.raises(ValidationError):
        lead_move_to_stage(lead=lead, stage=foreign_stage)
    lead.refresh_from_db()
    assert lead.stage.name == "New"
    assert not company.events.exists()
