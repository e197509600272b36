"""Campaign recipients' composite foreign key (PostgreSQL, migration 0022): (run, campaign, company) must be
one run's own, checked once a row at COMMIT; the ORM still cascades deletes of campaigns and companies."""

import pytest
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from crm.models import Company
from crm.tests.factories import CustomerFactory
from engage.campaigns.runner import campaign_run_execute
from engage.campaigns.runs import campaign_run_trigger
from engage.models import Campaign, CampaignRecipient, CampaignRun
from engage.policy.services import policy_get_or_create
from engage.prompts.services import templates_seed_defaults
from engage.tests.campaign_helpers import AI_TEXT, customer_due

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the composite foreign key is PostgreSQL's (SQLite keeps plain ones)"
)

COMPOSITE_FK = "campaignrecipient_run_campaign_company_fk"


def check_deferred_constraints() -> None:
    """What COMMIT would check, now: the test's transaction is rolled back, never committed."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


@pytest.fixture
def campaign(company):
    return Campaign.objects.create(company=company, name="Reminders")


@pytest.fixture
def run(campaign):
    return CampaignRun.objects.create(company=campaign.company, campaign=campaign, status=CampaignRun.Status.COMPLETED)


def recipient(run, **fields) -> CampaignRecipient:
    values = {"company": run.company, "campaign": run.campaign, "customer": CustomerFactory(company=run.company)}
    return CampaignRecipient.objects.create(
        run=run, cycle_started_at=timezone.now(), status=CampaignRecipient.Status.SKIPPED, **(values | fields)
    )


@pytest.mark.django_db
def test_a_recipient_of_its_runs_campaign_and_company_passes_the_check(run):
    row = recipient(run)
    check_deferred_constraints()
    assert CampaignRecipient.objects.get().pk == row.pk


@pytest.mark.django_db
@pytest.mark.parametrize("mismatch", ["company", "campaign", "both"])
def test_a_recipient_whose_campaign_or_company_is_not_its_runs_is_refused(run, other_company, mismatch):
    # given: another campaign of the same company, and another company's campaign
    same_company_campaign = Campaign.objects.create(company=run.company, name="Win-back")
    other_company_campaign = Campaign.objects.create(company=other_company, name="Reminders")
    fields = {
        "company": {"company": other_company},
        "campaign": {"campaign": same_company_campaign},
        "both": {"company": other_company, "campaign": other_company_campaign},
    }[mismatch]

    # when / then: the row is written (the check is deferred) and refused at the check
    with pytest.raises(IntegrityError, match=COMPOSITE_FK), transaction.atomic():
        recipient(run, **fields)
        check_deferred_constraints()
    assert not CampaignRecipient.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_raw_insert_of_another_companys_recipient_fails_at_commit(company, other_company):
    # given: a run of `company`, and the raw INSERT the skip recording uses, with the wrong company
    campaign = Campaign.objects.create(company=company, name="Reminders")
    run = CampaignRun.objects.create(company=company, campaign=campaign, status=CampaignRun.Status.COMPLETED)
    customer = CustomerFactory(company=company)

    # when / then: the INSERT itself succeeds (a deferred check), the COMMIT refuses it
    with pytest.raises(IntegrityError, match=COMPOSITE_FK):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO engage_campaignrecipient (company_id, campaign_id, run_id, customer_id, cycle_started_at,"
                " status, reason, body, error, correlation_id, created_at, updated_at)"
                " VALUES (%s, %s, %s, %s, now(), 'skipped', 'no_consent', '', '', gen_random_uuid(), now(), now())",
                [other_company.pk, campaign.pk, run.pk, customer.pk],
            )
            assert cursor.rowcount == 1
    assert not CampaignRecipient.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["campaign", "company"])
def test_a_run_with_recipients_cannot_move_to_another_campaign_or_company(run, other_company, field):
    row = recipient(run)
    other = Campaign.objects.create(company=run.company, name="Win-back") if field == "campaign" else other_company

    with pytest.raises(IntegrityError, match=COMPOSITE_FK), transaction.atomic():
        CampaignRun.objects.filter(pk=run.pk).update(**{field: other})
        check_deferred_constraints()

    run.refresh_from_db()
    assert (run.campaign_id, run.company_id) == (row.campaign_id, row.company_id)


@pytest.mark.django_db
@pytest.mark.parametrize("deleted", ["run", "campaign", "company"])
def test_deleting_a_run_campaign_or_company_still_deletes_its_recipients(run, other_company, deleted):
    # given: recipients of the run, and another company's run and recipient that must stay
    recipient(run), recipient(run)
    other_campaign = Campaign.objects.create(company=other_company, name="Reminders")
    other_run = CampaignRun.objects.create(company=other_company, campaign=other_campaign)
    kept = recipient(other_run)

    # when: the ORM cascades (company and campaign have no constraint of their own in the database)
    {"run": run, "campaign": run.campaign, "company": run.company}[deleted].delete()
    check_deferred_constraints()

    # then
    assert list(CampaignRecipient.objects.values_list("pk", flat=True)) == [kept.pk]
    assert list(CampaignRun.objects.values_list("pk", flat=True)) == [other_run.pk]
    assert Company.objects.filter(pk=run.company_id).exists() == (deleted != "company")


@pytest.mark.django_db
def test_every_recipient_a_run_writes_passes_the_check(company, fake_openai):
    # given: a campaign with two due customers and one without consent (its skipped row is a raw INSERT)
    templates_seed_defaults(company=company)
    policy_get_or_create(company=company).presets.filter(name="default").update(
        send_window_start_hour=0, send_window_end_hour=24
    )
    cache.clear()
    fake_openai.reply(AI_TEXT)
    campaign = Campaign.objects.create(company=company, name="Daily reminders", channel="console")
    for _ in range(2):
        customer_due(company)
    customer_due(company, is_sms_consented=False)

    # when: a dry run and a real run
    for is_dry_run in (True, False):
        campaign_run_execute(run_id=campaign_run_trigger(campaign=campaign, is_dry_run=is_dry_run).pk)
    check_deferred_constraints()

    # then: every kind of row was written, each with its run's campaign and company
    rows = list(CampaignRecipient.objects.select_related("run"))
    assert sorted(row.status for row in rows) == ["dry_run", "dry_run", "sent", "sent", "skipped", "skipped"]
    assert all((row.campaign_id, row.company_id) == (row.run.campaign_id, row.run.company_id) for row in rows)


@pytest.mark.django_db
def test_the_recipient_table_has_one_foreign_key_for_run_campaign_and_company():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, array(SELECT attname FROM unnest(conkey) WITH ORDINALITY AS k(attnum, n)"
            " JOIN pg_attribute ON attrelid = conrelid AND pg_attribute.attnum = k.attnum ORDER BY n)::text[],"
            " condeferrable AND condeferred FROM pg_constraint"
            " WHERE conrelid = 'engage_campaignrecipient'::regclass AND contype = 'f'"
        )
        foreign_keys = {tuple(columns): (name, is_deferred) for name, columns, is_deferred in cursor.fetchall()}
    assert set(foreign_keys) == {
        ("run_id", "campaign_id", "company_id"), ("customer_id",), ("message_id",), ("job_id",),
        ("template_version_id",),
    }
    assert foreign_keys["run_id", "campaign_id", "company_id"] == (COMPOSITE_FK, True)
    assert all(is_deferred for _, is_deferred in foreign_keys.values())
