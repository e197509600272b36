"""What replying from the number the customer wrote to adds to every SMS/WhatsApp send.

    DATABASE_URL=postgres://... .venv/bin/python bench/run_all.py reply_number   # (or `make bench`)

`engage.messaging.services.channel_options(contact=...)` reads the number the contact last wrote to
(`engage.messaging.selectors.contact_reply_number`, one probe of the partial index
`message_contact_reply_number`). In one transaction, rolled back at the end: a company with
CONTACTS contacts, each with MESSAGES_EACH messages (half inbound, written to one of two numbers,
half outbound), then CALLS sends' options built with and without the contact, alternately; the
figure is the extra time per send (mean of the difference), and the plan is checked to be an index
probe (not a scan of the contact's messages). The selector is plain SQL with the index's predicate
written out: through the ORM (parameters for `direction` and `''`) a prepared statement's generic
plan could not prove the partial index and the probe cost 3.6 ms instead of 0.15 ms.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shokti.settings")
NAME = "reply_number"
CONTACTS = 500
MESSAGES_EACH = 40
CALLS = 2000
CEILING_MS = 0.5


class _Rollback(Exception):
    pass


def main() -> list[dict]:
    import django

    django.setup()
    from django.db import connection, transaction
    from django.utils import timezone

    from crm.models import Channel, Company, Contact
    from engage.messaging.models import Message
    from engage.messaging.services import channel_options

    figures: list[dict] = []
    try:
        with transaction.atomic():
            company = Company.objects.create(name="Bench reply number", slug=f"bench-reply-{time.time_ns()}")
            contacts = Contact.objects.bulk_create(
                Contact(company=company, name=f"c{i}", phone=f"+88017{i:08d}") for i in range(CONTACTS)
            )
            now = timezone.now()
            Message.objects.bulk_create(
                Message(
                    company=company, contact=contact, channel=Channel.SMS, body="x",
                    direction=Message.Direction.INBOUND if j % 2 else Message.Direction.OUTBOUND,
                    status=Message.Status.RECEIVED if j % 2 else Message.Status.SENT,
                    channel_number=("+15005550006", "+15005550007")[j % 4 // 2],
                    created_at=now - timezone.timedelta(minutes=j),
                )
                for contact in contacts for j in range(MESSAGES_EACH)
            )
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("ANALYZE engage_message")
            plain, with_contact = [], []
            for i in range(CALLS):
                contact = contacts[i % CONTACTS]
                started = time.perf_counter()
                channel_options(company=company.pk, channel=Channel.SMS, agent_type="sales", message_type="reply")
                middle = time.perf_counter()
                options = channel_options(
                    company=company.pk, channel=Channel.SMS, agent_type="sales", message_type="reply", contact=contact.pk
                )
                ended = time.perf_counter()
                assert options["reply_from"] in ("+15005550006", "+15005550007")
                plain.append(middle - started)
                with_contact.append(ended - middle)
            plan = ""
            if connection.vendor == "postgresql":
                from engage.messaging.selectors import _reply_number_sql

                with connection.cursor() as cursor:
                    cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + _reply_number_sql(), [contacts[0].pk, "sms"])
                    plan = "\n".join(row[0] for row in cursor.fetchall())
                assert "message_contact_reply_number" in plan, plan
            extra_ms = (statistics.mean(with_contact) - statistics.mean(plain)) * 1000
            p95_ms = sorted(with_contact)[int(CALLS * 0.95)] * 1000
            figures.append({
                "figure": "Extra time a send spends finding the number the contact wrote to",
                "note": f"{CALLS:,} sends, {CONTACTS} contacts with {MESSAGES_EACH} messages each on {connection.vendor};"
                        f" options with the probe p95 {p95_ms:.3f} ms"
                        + ("; one probe of message_contact_reply_number" if plan else "")
                        + "; load average {:.1f}/{:.1f}/{:.1f}".format(*os.getloadavg()),
                "value": extra_ms, "ceiling": CEILING_MS, "unit": "ms",
            })
            raise _Rollback
    except _Rollback:
        pass
    return figures


if __name__ == "__main__":
    from bench.run_all import main as run_all_main

    sys.exit(run_all_main([NAME]))
