"""The console's home as the dashboard, the breakdowns, the CSV and /api/reports/: numbers, permissions, filters."""

import csv
import datetime as dt
import io
import random

import pytest
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from crm.models import Membership
from crm.tests.factories import StaffUserFactory
from reports import selectors
from reports.rollups.aggregate import local_today
from reports.rollups.models import EngagementDaily, RollupWatermark
from reports.rollups.services import rollups_refresh
from reports.tests.seed import seed_company

NOW = dt.datetime.now(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0)


def member(company, role, email, group):
    user = StaffUserFactory(email=email, groups=[group])
    Membership.objects.create(user=user, company=company, role=role)
    return user


@pytest.fixture
def alpha(company):
    seed_company(company=company, days=4, per_day=5, end=NOW - dt.timedelta(days=1))
    today = local_today(company)
    rollups_refresh(company=company, first=today - dt.timedelta(days=40), last=today)
    return company


@pytest.fixture
def beta(other_company):
    seed_company(company=other_company, days=2, per_day=2, end=NOW - dt.timedelta(days=1))
    today = local_today(other_company)
    rollups_refresh(company=other_company, first=today - dt.timedelta(days=40), last=today)
    return other_company


@pytest.fixture
def owner(alpha):
    return member(alpha, Membership.Role.OWNER, "owner@alpha.test", "Operations")


@pytest.fixture
def marketer(alpha):
    return member(alpha, Membership.Role.MARKETING, "mia@alpha.test", "Marketing")


def cards_on_home(client, user, **params):
    client.force_login(user)
    response = client.get(reverse("admin:index"), params)
    assert response.status_code == 200
    return response, [card["id"] for card in response.context["reports"]["cards"]]


def test_owner_and_operations_see_every_card_with_its_numbers(client, alpha, owner, staff_user):
    response, cards = cards_on_home(client, owner, period="30d")
    assert cards == ["engagement", "ai", "leads", "workers", "operations"]
    html = response.content.decode()
    for card in cards:
        assert f'id="card-{card}"' in html
    assert html.count("Data as of") >= 5
    assert 'id="tile-needs-human"' in html  # the home's waiting counts stay
    assert "vendor/chartjs/chart.umd.min.js" in html and "cdn" not in html.lower()
    sent = sum(EngagementDaily.objects.filter(company=alpha).values_list("sent", flat=True))
    engagement = response.context["reports"]["chart_data"]["engagement"]
    assert engagement["totals"]["sent"]["value"] == sent > 0
    assert [step["step"] for step in engagement["funnel"]] == ["sent", "delivered", "opened", "clicked", "booked"]
    assert cards_on_home(client, staff_user, period="30d")[1] == cards  # Operations


def test_marketing_sees_engagement_only_and_no_breakdown_of_workers(client, alpha, marketer):
    response, cards = cards_on_home(client, marketer, period="7d")
    assert cards == ["engagement"]
    assert 'id="card-workers"' not in response.content.decode()
    refused = client.get(reverse("reports-breakdown"), {"company": alpha.pk, "card": "workers", "dimension": "zone"})
    assert refused.status_code == 403 and refused.json()["detail"]


@pytest.mark.embedded
def test_nobody_sees_another_companys_numbers(client, alpha, beta, other_staff_user):
    # Bob (beta) asks for alpha on the home: he gets his own company, never alpha's numbers.
    response, _ = cards_on_home(client, other_staff_user, company=alpha.pk, period="30d")
    assert response.context["reports"]["company"] == beta
    beta_sent = sum(EngagementDaily.objects.filter(company=beta).values_list("sent", flat=True))
    assert response.context["reports"]["chart_data"]["engagement"]["totals"]["sent"]["value"] == beta_sent
    # ... and alpha's breakdown and CSV are refused
    for name in ("reports-breakdown", "reports-breakdown-csv"):
        refused = client.get(reverse(name), {"company": alpha.pk, "card": "engagement", "dimension": "channel"})
        assert refused.status_code == 403
    # an anonymous caller is sent to the login
    client.logout()
    assert client.get(reverse("reports-breakdown-csv"), {"company": alpha.pk}).status_code == 302


def test_a_staff_member_of_several_companies_picks_one(client, alpha, beta, owner):
    Membership.objects.create(user=owner, company=beta, role=Membership.Role.OWNER)
    response, _ = cards_on_home(client, owner, company=beta.pk, period="30d")
    assert response.context["reports"]["company"] == beta
    assert 'id="reports-company"' in response.content.decode()
    assert {company.pk for company in response.context["reports"]["companies"]} == {alpha.pk, beta.pk}


def test_period_compares_with_the_period_before_and_the_cache_key_has_every_filter(alpha):
    week = selectors.card(company=alpha, card="engagement", period="7d")
    month = selectors.card(company=alpha, card="engagement", period="30d")
    today = selectors.card(company=alpha, card="engagement", period="today")
    assert week["first"] != month["first"] and today["first"] == today["last"]
    assert month["totals"]["sent"]["value"] >= week["totals"]["sent"]["value"]
    # the previous period of "today" is yesterday, where the seed put messages
    assert today["totals"]["sent"]["previous"] > 0
    # a refresh moves the watermark: the next read is a new key, not the stale cached card
    EngagementDaily.objects.filter(company=alpha).delete()
    assert selectors.card(company=alpha, card="engagement", period="7d") == week  # cached
    RollupWatermark.objects.filter(company=alpha).update(refreshed_at=dt.datetime.now(dt.UTC))
    assert selectors.card(company=alpha, card="engagement", period="7d")["totals"]["sent"]["value"] == 0


def test_series_are_downsampled_on_the_server(alpha):
    ninety = selectors.card(company=alpha, card="engagement", period="90d")
    assert len(ninety["series"]["labels"]) <= selectors.MAX_POINTS and ninety["series"]["bucket_days"] == 3
    assert sum(ninety["series"]["datasets"]["sent"]) == ninety["totals"]["sent"]["value"]
    labels, data = selectors.downsample(days=[dt.date(2026, 1, 1) + dt.timedelta(days=n) for n in range(5)],
                                        series={"x": [1, 2, 3, 4, 5]}, max_points=2)
    assert labels == ["2026-01-01", "2026-01-04"] and data == {"x": [6, 9]}


def test_operations_card_links_dead_letters_to_replay(client, alpha, owner):
    from engage.ledger.models import Job

    Job.objects.create(company=alpha, task_name="message_send", status=Job.Status.DEAD, idempotency_key="dead-1")
    response, _ = cards_on_home(client, owner)
    operations = response.context["reports"]["chart_data"]["operations"]
    assert operations["queue"]["dead_letters"] == 1
    assert "?status__exact=dead" in response.content.decode()


def test_burnout_slot_reads_the_open_alert_count(client, alpha, owner, monkeypatch):
    from reports.burnout.selectors import open_alert_count

    card = selectors.card(company=alpha, card="workers", period="7d")
    assert card["burnout_alerts_open"] == open_alert_count(alpha)
    response, _ = cards_on_home(client, owner)
    assert 'id="burnout-alerts-open"' in response.content.decode()
    # without the burnout module the slot shows nothing
    def missing(name):
        raise ImportError(name)

    monkeypatch.setattr(selectors.importlib, "import_module", missing)
    assert selectors._burnout_open(alpha) is None


@pytest.mark.parametrize("dimension", ["channel", "template_version", "campaign", "service_category", "cohort"])
def test_engagement_breakdown_splits_the_card_total(client, alpha, owner, dimension):
    client.force_login(owner)
    response = client.get(reverse("reports-breakdown"), {"company": alpha.pk, "card": "engagement",
                                                         "dimension": dimension, "period": "30d"})
    assert response.status_code == 200
    rows = response.context["data"]["rows"]
    card = selectors.card(company=alpha, card="engagement", period="30d")
    assert sum(row["sent"] for row in rows) == card["totals"]["sent"]["value"]
    assert 'id="breakdown-table"' in response.content.decode()


def test_worker_breakdown_coached_vs_not(client, alpha, owner):
    client.force_login(owner)
    response = client.get(reverse("reports-breakdown"), {"company": alpha.pk, "card": "workers",
                                                         "dimension": "coached", "period": "30d"})
    rows = {row["segment"]: row for row in response.context["data"]["rows"]}
    assert set(rows) == {"coached", "not coached"}
    card = selectors.card(company=alpha, card="workers", period="30d")
    assert card["totals"]["on_time_rate_coached"]["value"] == rows["coached"]["on_time_rate"]
    assert card["totals"]["on_time_rate_not_coached"]["value"] == rows["not coached"]["on_time_rate"]


def test_worker_breakdown_by_zone(client, alpha, owner):
    client.force_login(owner)
    response = client.get(reverse("reports-breakdown"), {"company": alpha.pk, "card": "workers",
                                                         "dimension": "zone", "period": "30d"})
    rows = response.context["data"]["rows"]
    assert {row["segment"] for row in rows} <= {"Dhanmondi", "Gulshan", "Mirpur"} and rows
    card = selectors.card(company=alpha, card="workers", period="30d")
    assert sum(row["on_time"] for row in rows) == card["totals"]["on_time"]["value"]


@pytest.mark.parametrize("params", [{"dimension": "zone"}, {"period": "1y"}, {"card": "ai"}, {"company": "x"}])
def test_bad_breakdown_filters_are_400_json(client, alpha, owner, params):
    client.force_login(owner)
    query = {"company": alpha.pk, "card": "engagement", "dimension": "channel", **params}
    response = client.get(reverse("reports-breakdown"), query)
    assert response.status_code == 400 and response.json()["errors"]


@pytest.mark.embedded
def test_csv_is_streamed_scoped_and_in_local_dates(client, alpha, beta, owner):
    client.force_login(owner)
    response = client.get(reverse("reports-breakdown-csv"), {"company": alpha.pk, "card": "engagement",
                                                             "dimension": "channel", "period": "30d"})
    assert response.status_code == 200 and response.streaming
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows and set(rows[0]) >= {"local_date", "segment", "sent", "booked", "revenue"}
    expected = {(row.local_date.isoformat(), row.channel or "none") for row in EngagementDaily.objects.filter(
        company=alpha, local_date__gte=local_today(alpha) - dt.timedelta(days=29))}
    assert {(row["local_date"], row["segment"]) for row in rows} == expected
    assert sum(int(row["sent"]) for row in rows) == selectors.card(company=alpha, card="engagement",
                                                                   period="30d")["totals"]["sent"]["value"]


def test_api_returns_the_same_numbers_for_staff_and_api_keys(alpha, beta, owner, key_client, marketer):
    staff = APIClient()
    staff.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(owner).access_token}")
    for client in (staff, key_client):
        response = client.get("/api/reports/cards/engagement/", {"period": "30d"})
        assert response.status_code == 200, response.content
        assert response.json()["totals"] == selectors.card(company=alpha, card="engagement", period="30d")["totals"]
        response = client.get("/api/reports/breakdown/", {"card": "workers", "dimension": "zone", "period": "30d"})
        assert response.status_code == 200 and response.json()["rows"]
    # another company's numbers: refused to staff and to the key
    assert staff.get("/api/reports/cards/ai/", {"company_id": beta.pk}).status_code == 403
    assert key_client.get("/api/reports/cards/ai/", {"company_id": beta.pk}).status_code == 403
    # Marketing: engagement only
    mia = APIClient()
    mia.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(marketer).access_token}")
    assert mia.get("/api/reports/cards/engagement/").status_code == 200
    assert mia.get("/api/reports/cards/workers/").status_code == 403
    assert APIClient().get("/api/reports/cards/engagement/").status_code == 401


@pytest.mark.parametrize("path,params", [
    ("/api/reports/cards/engagement/", {"period": "1y"}),
    ("/api/reports/cards/nonsense/", {}),
    ("/api/reports/breakdown/", {"card": "engagement", "dimension": "zone"}),
    ("/api/reports/breakdown/", {"card": "ai", "dimension": "channel"}),
    ("/api/reports/breakdown/", {"card": "engagement"}),
])
def test_api_bad_filters_are_400_json(key_client, alpha, path, params):
    response = key_client.get(path, params)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")


def test_api_is_in_the_schema(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "/api/reports/cards/{card}/" in schema and "/api/reports/breakdown/" in schema
    assert "reports_breakdown" in schema


@pytest.mark.django_db(transaction=True, databases=["default", "reports"])
def test_reads_go_through_the_reports_alias_on_its_own_connection(client):
    # given committed rollups and a real second connection behind the `reports` alias
    from django.db import connections

    from crm.tests.factories import CompanyFactory

    company = CompanyFactory(slug="replica")
    # a fixed random source: the default one follows the company's id, which depends on the tests run before
    seed_company(company=company, days=1, per_day=6, end=NOW - dt.timedelta(days=1), rng=random.Random(0))
    rollups_refresh(company=company, first=local_today(company) - dt.timedelta(days=3), last=local_today(company))
    assert connections["reports"] is not connections["default"]
    # when the card is read, then its queries ran on the reports connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connections["reports"]) as reads:
        card = selectors.card(company=company, card="engagement", period="7d")
    assert card["totals"]["sent"]["value"] > 0
    assert any("reports_engagementdaily" in query["sql"] for query in reads.captured_queries)


def test_the_leads_card_shows_time_in_stage_on_the_home_and_in_the_api(client, alpha, owner, key_client):
    card = selectors.card(company=alpha, card="leads", period="30d")
    rows = card["time_in_stage"]
    assert rows and all(row["median_days"] <= row["p90_days"] for row in rows)
    assert rows[0]["stage_name"] == "New"  # pipeline order
    response, _ = cards_on_home(client, owner, period="30d")
    html = response.content.decode()
    assert 'id="leads-time-in-stage"' in html and 'data-stage="New"' in html
    api = key_client.get("/api/reports/cards/leads/", {"period": "30d"})
    assert api.status_code == 200 and api.json()["time_in_stage"] == rows


def test_today_adds_the_rows_since_the_last_tick_once(alpha, monkeypatch):
    # given today's cards read right after a tick
    from crm.models import Event, Lead
    from crm.tests.factories import ContactFactory
    from engage.api import AISession, Message

    before = {card: selectors.card(company=alpha, card=card, period="today") for card in ("engagement", "ai", "leads")}
    watermark = RollupWatermark.objects.get(company=alpha).refreshed_at
    # when, after the tick, a reminder is sent and delivered, a model replies, a lead comes in and someone opts out
    contact = ContactFactory(company=alpha)
    now = dt.datetime.now(dt.UTC)
    Message.objects.create(company=alpha, contact=contact, direction="outbound", channel="sms",
                           agent_type="smartengage", body="x", status="delivered", sent_at=now, delivered_at=now,
                           created_at=now)
    AISession.objects.create(company=alpha, agent_type="sales", purpose="reply", outcome="ok", tokens_in=7,
                             tokens_out=3)
    lead = Lead.objects.create(company=alpha, contact=contact, pipeline=alpha.pipelines.first(),
                               stage=alpha.pipelines.first().stages.first(), source="ad")
    Event.objects.create(company=alpha, type="opt_out", contact=contact, payload={"channel": "sms"})
    later = selectors.time.time() + selectors.LIVE_SECONDS  # the live part's cache slot has passed
    monkeypatch.setattr(selectors.time, "time", lambda: later)

    def value(card, metric):
        return selectors.card(company=alpha, card=card, period="today")["totals"][metric]["value"]

    # then today's cards show them without a refresh, "data as of" now
    expected = {("engagement", "sent"): 1, ("engagement", "delivered"): 1, ("engagement", "opt_outs"): 1,
                ("ai", "replies"): 1, ("ai", "sessions"): 1, ("ai", "tokens"): 10, ("leads", "new"): 1}
    for (card, metric), extra in expected.items():
        assert value(card, metric) == before[card]["totals"][metric]["value"] + extra, (card, metric)
    engagement = selectors.card(company=alpha, card="engagement", period="today")
    assert dt.datetime.fromisoformat(engagement["data_as_of"]) > watermark
    assert engagement["funnel"][0]["value"] == value("engagement", "sent")
    assert engagement["series"]["datasets"]["sent"][-1] == value("engagement", "sent")
    assert lead.created_at > watermark
    # and after the next tick they are in the rollup and counted once
    rollups_refresh(company=alpha, first=local_today(alpha), last=local_today(alpha))
    rolled = EngagementDaily.objects.filter(company=alpha, local_date=local_today(alpha))
    assert sum(rolled.values_list("sent", flat=True)) == before["engagement"]["totals"]["sent"]["value"] + 1
    for (card, metric), extra in expected.items():
        assert value(card, metric) == before[card]["totals"][metric]["value"] + extra, (card, metric)
    # other periods stay the rollup's, as of the tick
    assert selectors.card(company=alpha, card="engagement", period="7d")["data_as_of"] == RollupWatermark.objects.get(
        company=alpha).refreshed_at.isoformat()


def test_template_versions_are_named_in_the_card_the_breakdown_its_chart_and_the_csv(client, alpha, owner):
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    from engage.prompts.models import PromptTemplateVersion

    used = set(EngagementDaily.objects.filter(company=alpha, template_version_id__gt=0).values_list(
        "template_version_id", flat=True))
    assert len(used) >= 2  # the seed uses two versions
    names = {version.pk: f"{version.template.name} v{version.number}"
             for version in PromptTemplateVersion.objects.filter(pk__in=used)}
    card = selectors.card(company=alpha, card="engagement", period="30d")
    assert {row["name"] for row in card["by_template_version"]} == set(names.values())
    client.force_login(owner)
    query = {"company": alpha.pk, "card": "engagement", "dimension": "template_version", "period": "30d"}
    with CaptureQueriesContext(connections["reports"]) as reads:
        response = client.get(reverse("reports-breakdown"), query)
    segments = {row["segment"] for row in response.context["data"]["rows"]}
    assert segments == {*names.values(), "none"}
    html = response.content.decode()
    assert all(name in html for name in names.values())  # the table and the chart's data (json_script)
    assert sum("prompttemplateversion" in q["sql"] for q in reads.captured_queries) == 1  # one query for the names
    rows = list(csv.DictReader(io.StringIO(b"".join(client.get(reverse("reports-breakdown-csv"), query)
                                                     .streaming_content).decode())))
    assert {row["segment"] for row in rows} == {*names.values(), "none"}
    home, _ = cards_on_home(client, owner, period="30d")
    assert all(name in home.content.decode() for name in names.values())
