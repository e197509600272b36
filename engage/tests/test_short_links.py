"""Short links: SMS and WhatsApp reminders carry /l/<code>, which leads to the signed link and its /book."""

import datetime as dt
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from crm.models import Channel, Event
from engage.ai.config import ai_config_for
from engage.ai.safety import sms_segments
from engage.campaigns.deeplinks import (
    SHORT_CODE_LENGTH,
    deeplink_verify,
    short_links_create,
    short_links_purge,
    short_url,
)
from engage.campaigns.smartengage.pipeline import smartengage_bulk_send, smartengage_reminder_send
from engage.models import FallbackText, ShortLink
from engage.prompts.services import templates_seed_defaults
from engage.tests.campaign_helpers import customer_due

DRAFT = "প্রিয় গ্রাহক, আপনার এসি সার্ভিসিংয়ের সময় হয়ে গেছে। এখনই বুক করুন: [BOOKING_LINK]"


@pytest.fixture
def sms_company(company, twilio_account):
    templates_seed_defaults(company=company)
    return company


def code_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


@pytest.mark.django_db
def test_a_short_link_redirects_to_its_signed_link_until_it_expires(company, settings):
    settings.SHORT_LINK_BASE_URL = "https://go.example/l/"
    (url,) = short_links_create(company=company, links=[("https://app.example/book?token=abc", None)], ttl_hours=1)
    assert url.startswith("https://go.example/l/") and len(code_of(url)) == SHORT_CODE_LENGTH
    client = Client()
    response = client.get(f"/l/{code_of(url)}")
    assert (response.status_code, response["Location"]) == (302, "https://app.example/book?token=abc")
    # an unknown code is 404, an expired one 410, both with the JSON error shape
    unknown = client.get("/l/nosuchcode")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "link_malformed"
    ShortLink.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    expired = client.get(f"/l/{code_of(url)}")
    assert expired.status_code == 410 and expired.json()["error"]["code"] == "link_expired"


@pytest.mark.django_db
def test_codes_are_distinct_and_made_in_one_insert(company, django_assert_num_queries):
    links = [(f"https://app.example/book?token={index}", None) for index in range(50)]
    with django_assert_num_queries(3):  # SAVEPOINT, INSERT, RELEASE
        urls = short_links_create(company=company, links=links)
    assert len({code_of(url) for url in urls}) == 50
    assert [row.target_url for row in ShortLink.objects.order_by("id")] == [url for url, _ in links]


@pytest.mark.django_db
def test_purge_deletes_only_links_expired_long_ago(company):
    short_links_create(company=company, links=[("https://a.example/1", None), ("https://a.example/2", None)])
    old = ShortLink.objects.order_by("id").first()
    ShortLink.objects.filter(pk=old.pk).update(expires_at=timezone.now() - dt.timedelta(days=31))
    assert short_links_purge(older_than_days=30) == 1
    assert list(ShortLink.objects.values_list("target_url", flat=True)) == ["https://a.example/2"]


@pytest.mark.django_db
def test_a_bengali_sms_reminder_fits_the_default_segments_with_a_short_link_that_leads_to_the_booking(
    sms_company, fake_openai, fake_twilio, settings
):
    # given the default limit of three segments (a signed link alone would need four or five)
    settings.SHORT_LINK_BASE_URL = "https://go.example/l/"
    assert ai_config_for(company=sms_company).sms_max_segments == 3
    fake_openai.reply(DRAFT)
    customer = customer_due(sms_company)
    # when
    outcome = smartengage_reminder_send(company=sms_company, customer=customer, channel=Channel.SMS)
    # then the model's text went out with the short link in the placeholder's place
    assert (outcome.status, outcome.reason) == ("sent", "")
    (request,) = fake_twilio.requests
    body = request["Body"]
    short = body.split()[-1]
    assert body == DRAFT.replace("[BOOKING_LINK]", short) and short.startswith("https://go.example/l/")
    assert sms_segments(body) <= 3
    link = ShortLink.objects.get(code=code_of(short))
    assert (link.company_id, str(link.correlation_id)) == (sms_company.pk, outcome.correlation_id)
    # and following it leads through /book, which verifies the token and records the follow
    client = Client()
    hop = client.get(urlsplit(short).path)
    assert hop.status_code == 302 and hop["Location"] == link.target_url
    token = parse_qs(urlsplit(link.target_url).query)["token"][0]
    claims = deeplink_verify(token=token)
    assert (claims.customer_id, claims.correlation_id) == (customer.pk, outcome.correlation_id)
    assert link.expires_at == pytest.approx(claims.expires_at, abs=dt.timedelta(seconds=5))
    booked = client.get("/book", {"token": token})
    assert booked.status_code == 302
    assert Event.objects.filter(type="deeplink_followed", contact=customer.contact).count() == 1


@pytest.mark.django_db
def test_email_keeps_the_signed_link_and_a_dry_run_saves_no_short_links(sms_company, fake_openai, mailoutbox):
    fake_openai.reply(DRAFT)
    customer = customer_due(sms_company, email="a@example.com", is_email_consented=True)
    outcome = smartengage_reminder_send(company=sms_company, customer=customer, channel=Channel.EMAIL)
    assert outcome.status == "sent" and "token=" in outcome.body and not ShortLink.objects.exists()
    # a dry run on SMS shows a short link of the real length, and writes no row for it
    FallbackText.objects.create(company=sms_company, message_type="reminder", locale="bn", body="সময় হয়েছে:")
    other = customer_due(sms_company)
    result = smartengage_bulk_send(company=sms_company, customers=[other], channel=Channel.SMS, dry_run=True)
    (shown,) = result.outcomes
    assert shown.status == "dry_run" and shown.body.split()[-1].startswith(short_url(code=""))
    assert len(code_of(shown.body.split()[-1])) == SHORT_CODE_LENGTH and not ShortLink.objects.exists()


@pytest.mark.django_db
def test_operations_staff_see_their_companys_short_links_in_the_admin_read_only(
    client, staff_user, company, other_company
):
    (own,) = short_links_create(company=company, links=[("https://a.example/own", None)])
    (foreign,) = short_links_create(company=other_company, links=[("https://a.example/foreign", None)])
    client.force_login(staff_user)
    listing = client.get("/admin/engage/shortlink/")
    assert listing.status_code == 200
    page = listing.content.decode()
    assert code_of(own) in page and code_of(foreign) not in page
    link = ShortLink.objects.get(code=code_of(own))
    detail = client.get(f"/admin/engage/shortlink/{link.pk}/change/")
    assert detail.status_code == 200 and "https://a.example/own" in detail.content.decode()
    other = ShortLink.objects.get(code=code_of(foreign))
    assert client.get(f"/admin/engage/shortlink/{other.pk}/change/").status_code == 404
    assert client.get("/admin/engage/shortlink/add/").status_code == 403
