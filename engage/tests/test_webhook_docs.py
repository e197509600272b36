"""docs/jobs.md's "Outbound webhooks" holds: its event types, payload shape and headers are what a
receiver gets, and its verification snippet (run as written) accepts real deliveries and rejects forgeries."""

import json
import re
import time
from pathlib import Path

import pytest
from django.conf import settings

from crm.feed.services import row_write
from crm.models import Lead
from crm.services import lead_move_to_stage
from crm.tests.factories import ServiceFactory
from engage.conversations.inbound import inbound_message_capture
from engage.ledger.services import job_execute
from engage.models import Job
from engage.webhooks import WEBHOOK_EVENT_TYPES

pytestmark = pytest.mark.django_db

SECRET = "whsec_docs_secret_0123456789"
DOC = Path(settings.BASE_DIR) / "docs" / "jobs.md"
SECTION = DOC.read_text().split("## Outbound webhooks", 1)[1].split("\n## ", 1)[0]

# The `data` keys the section's table documents, besides event_id, contact_id and occurred_at.
DOCUMENTED_DATA = {
    "lead.created": {"lead_id", "channel", "source"},
    "stage.changed": {"lead_id", "from", "to", "from_id", "to_id", "status"},
    "message.received": {"message_id", "lead_id", "channel"},
    "opt_out": {"channel", "consent", "reason", "text"},
    "opt_in": {"channel", "consent", "reason", "text"},
    "booking.completed": {"booking_id", "external_id", "customer_id", "worker_id", "service_id", "finished_at",
                          "rating", "price"},
    "customer.updated": {"customer_id", "external_id", "created", "fields", "is_active"},
    # delivered in reports/tests/test_burnout_alerts.py
    "worker.burnout_alert": {"alert_id", "worker_id", "worker_name", "level", "is_escalation", "summary", "signals",
                             "metrics", "zone", "service_category"},
}


def documented_verify():
    """The section's Python snippet, executed as a receiver would paste it."""
    snippet = re.search(r"```python\n(.*?)```", SECTION, re.S).group(1)
    namespace: dict = {}
    exec(compile(snippet, str(DOC), "exec"), namespace)
    return namespace["shokti_webhook_verify"]


@pytest.fixture
def receiver(webhook_receiver):
    return webhook_receiver(secret=SECRET)


def test_the_documented_event_types_are_the_delivered_ones():
    documented = set(re.findall(r"^\| `([a-z_.]+)` \|", SECTION, re.M)) - {"type"}  # the header row
    assert documented == set(WEBHOOK_EVENT_TYPES) == set(DOCUMENTED_DATA)


def test_deliveries_have_the_documented_shape_and_the_documented_check_verifies_them(company, receiver):
    # given a company with a URL and a secret, and one event of each type
    company.webhook_url, company.webhook_secret = receiver.url, SECRET
    company.save()
    capture = {"company": company, "channel": "console", "phone": "+8801712345678", "contact_name": "Rahim"}
    first = inbound_message_capture(**capture, text="Interested in the course", source="website")
    inbound_message_capture(**capture, text="STOP")
    inbound_message_capture(**capture, text="START")  # opts back in
    lead = Lead.objects.get(pk=first.lead_id)
    lead_move_to_stage(lead=lead, stage=lead.pipeline.stages.get(name="Won"))
    # the bookings feed: a customer created, a booking scheduled then completed (docs/data-api.md)
    ServiceFactory(company=company, external_id="svc-1")
    assert row_write(company=company, kind="customers", data={"external_id": "c-1", "phone": "01712000001"}).id
    booking = {"customer_external_id": "c-1", "service_external_id": "svc-1", "scheduled_at": "2026-12-01T10:00:00"}
    row_write(company=company, kind="bookings", data={**booking, "external_id": "b-1"})
    row_write(company=company, kind="bookings", data={"external_id": "b-1", "status": "completed", "price": "900"})

    # when the ledger runs the deliveries
    for job in Job.objects.filter(task_name="webhook_reminder").order_by("id"):
        assert job_execute(job_id=job.pk, worker="test") == "completed"

    # then each has the documented shape, headers and times in UTC
    verify = documented_verify()
    types = []
    for _, _, headers, body in receiver.received:
        event = json.loads(body)
        types.append(event["type"])
        assert set(event) == {"id", "type", "company_id", "data", "created_at"}
        assert event["company_id"] == company.pk and event["id"] == f"webhook:{event['data']['event_id']}"
        assert set(event["data"]) == DOCUMENTED_DATA[event["type"]] | {"event_id", "contact_id", "occurred_at"}
        assert event["data"]["occurred_at"].endswith("+00:00") and event["created_at"].endswith("+00:00")
        assert body == json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
        assert (headers["Content-Type"], headers["User-Agent"], headers["X-Shokti-Event-Id"]) == (
            "application/json", "Shokti-Webhook/1", event["id"]
        )
        # the documented check accepts it, and rejects a changed body, another secret and an old capture
        assert verify(secret=SECRET, headers=headers, body=body) is True
        assert verify(secret=SECRET, headers=headers, body=body.replace(b'"company_id"', b'"company_id" ')) is False
        assert verify(secret="whsec_someone_else_0123456789", headers=headers, body=body) is False
        assert verify(secret=SECRET, headers=headers, body=body, tolerance_seconds=-1) is False
        old = {**headers, "X-Shokti-Timestamp": str(int(time.time()) - 3600)}
        assert verify(secret=SECRET, headers=old, body=body) is False
    assert sorted(types) == sorted(["lead.created", "message.received", "stage.changed", "message.received", "opt_out",
                                    "message.received", "opt_in", "customer.updated", "booking.completed"])
    stage_changed = next(delivery.payload for delivery in receiver.received if delivery.payload["type"] == "stage.changed")
    assert (stage_changed["data"]["to"], stage_changed["data"]["status"]) == ("Won", "won")
