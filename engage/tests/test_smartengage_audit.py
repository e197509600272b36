"""Issue 4's requirements the other test files left open: GET /book's wrong-type and promo links and the
follow feeding attribution, send-bulk's cap bypass permission, and a run-segment run that actually sends."""

import datetime as dt
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import Permission
from django.core import signing
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from crm.models import Event
from crm.tests.factories import CustomerFactory
from engage.campaigns.attribution import booking_attributed_message, user_event_record
from engage.campaigns.deeplinks import SALT, TYPE_PROMO, deeplink_promo_create, deeplink_token_create
from engage.models import CampaignRun, Message
from engage.policy.services import policy_get_or_create
from engage.prompts.services import templates_seed_defaults
from engage.tests.campaign_helpers import AI_TEXT, customer_due
from engage.tests.helpers import run_job
from shokti.metrics import user_events_total

BULK = "/admin/smartengage/send-bulk"
SEGMENT = "/internal/ai/smartengage/run-segment"


def jwt_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture
def seeded(company, fake_openai):
    templates_seed_defaults(company=company)
    fake_openai.reply(AI_TEXT)
    return company


# --- GET /book ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_book_with_a_token_of_a_type_we_never_issue_is_400_and_records_nothing(company):
    customer = CustomerFactory(company=company)
    # Signed with our salt (so not "tampered"), but for something that is not a booking link.
    strange = signing.dumps(
        {"co": company.pk, "c": customer.pk, "t": "password_reset", "e": int(timezone.now().timestamp()) + 3600},
        salt=SALT,
    )

    response = APIClient().get("/book", {"token": strange})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "link_wrong_type"
    assert not Event.objects.filter(type="deeplink_followed").exists()


@pytest.mark.django_db
def test_book_follows_a_promo_link_without_a_service_and_counts_it(company, settings):
    settings.DEEP_LINK_APP_URL = "https://app.example.test/booking"
    customer = CustomerFactory(company=company)
    url = deeplink_promo_create(customer=customer, promo_code="WEEKEND50")
    labels = {"event_type": "deeplink_followed", "agent_type": "none", "channel": "none", "source": "deeplink"}
    before = user_events_total.labels(**labels)._value.get()

    response = APIClient().get("/book", parse_qs(urlsplit(url).query))

    assert response.status_code == 302
    query = parse_qs(urlsplit(response["Location"]).query)
    assert (query["type"], query["promo_code"]) == ([TYPE_PROMO], ["WEEKEND50"])
    assert "service_id" not in query
    event = Event.objects.get(type="deeplink_followed")
    assert (event.contact, event.payload["promo_code"], event.payload["service_id"]) == (
        customer.contact, "WEEKEND50", None
    )
    assert user_events_total.labels(**labels)._value.get() == before + 1


@pytest.mark.django_db
def test_a_followed_link_is_the_click_a_later_booking_converts_for(company):
    customer = CustomerFactory(company=company)
    message = Message.objects.create(
        company=company, contact=customer.contact, direction=Message.Direction.OUTBOUND, channel="email",
        agent_type="smartengage", message_type="reminder", body="...", status=Message.Status.SENT,
        correlation_id=uuid.uuid4(),
    )
    token = deeplink_token_create(customer=customer, correlation_id=message.correlation_id)

    assert APIClient().get("/book", {"token": token}).status_code == 302
    booking = user_event_record(
        company=company, event_type="booking_created", contact=customer.contact,
        occurred_at=timezone.now() + dt.timedelta(minutes=5),
    )

    assert booking_attributed_message(booking_event=booking) == message


@pytest.mark.django_db
def test_book_answers_get_only(company):
    token = deeplink_token_create(customer=CustomerFactory(company=company))

    assert APIClient().post(f"/book?token={token}").status_code == 405
    assert not Event.objects.exists()


# --- send-bulk: bypassing the caps needs the dedicated permission ---------------------------------


@pytest.mark.django_db
def test_send_bulk_bypass_needs_the_permission(seeded, staff_user):
    customer = customer_due(seeded, is_email_consented=True)
    alice = jwt_for(staff_user)
    first = alice.post(BULK, {"customer_ids": [customer.pk]}, format="json").json()
    capped = alice.post(BULK, {"customer_ids": [customer.pk]}, format="json").json()
    assert (first["sent"], capped["sent"], capped["skipped"]) == (1, 0, 1)

    denied = alice.post(BULK, {"customer_ids": [customer.pk], "bypass_frequency_caps": True}, format="json")

    assert denied.status_code == 403 and denied.json()["error"]["code"] == "permission_denied"
    assert Message.objects.count() == 1
    staff_user.user_permissions.add(Permission.objects.get(codename="bypass_frequency_caps"))
    allowed = jwt_for(staff_user).post(
        BULK, {"customer_ids": [customer.pk], "bypass_frequency_caps": True}, format="json"
    )
    assert allowed.status_code == 200 and allowed.json()["sent"] == 1
    assert Message.objects.count() == 2


# --- run-segment: the queued run really runs -------------------------------------------------------


@pytest.mark.django_db
def test_run_segment_queues_a_run_whose_job_reminds_the_due_customers(seeded, key_client):
    policy_get_or_create(company=seeded).presets.filter(name="default").update(
        send_window_start_hour=0, send_window_end_hour=24
    )
    cache.clear()
    due = [customer_due(seeded) for _ in range(2)]
    customer_due(seeded, days=3)

    response = key_client.post(SEGMENT, {}, format="json")

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "started" and body["correlation_id"]
    run = CampaignRun.objects.get(correlation_id=body["correlation_id"])
    for _ in range(10):  # a time-sliced run re-queues its job until it is done
        run.refresh_from_db()
        if run.status not in ("queued", "running"):
            break
        run_job(run.job_id)
    assert (run.status, run.total_eligible, run.sent) == ("completed", 2, 2)
    assert set(Message.objects.values_list("contact_id", flat=True)) == {customer.contact_id for customer in due}
