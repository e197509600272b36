"""Raw rows for the rollup tests and the bench: messages, user events, attributed bookings, opt-outs, AI sessions,
leads and their stage changes, punctuality, spread over local days with some at the Dhaka day boundary."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from decimal import Decimal

from coaching.models import BookingPunctuality, CoachingRecipient, CoachingRun
from crm.models import Booking, Company, Contact, Customer, Event, Lead, Pipeline, Service, Stage, Worker
from engage.api import AISession, Campaign, CampaignRecipient, Message
from engage.campaigns.models import CampaignRun
from engage.prompts.models import PromptTemplateVersion

CHANNELS = ("sms", "whatsapp", "email")
ZONES = ("Dhanmondi", "Gulshan", "Mirpur")
CATEGORIES = ("cleaning", "beauty")


def seed_company(*, company: Company, days: int = 5, per_day: int = 6, end: dt.datetime | None = None,
                 rng: random.Random | None = None) -> dict:
    """Seed `days` UTC days (ending at `end`) of activity; returns what it made."""
    rng = rng or random.Random(company.pk)
    end = end or dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)
    services = [Service.objects.create(company=company, name=f"{category} {company.pk}", category=category,
                                       base_price=Decimal("1000")) for category in CATEGORIES]
    pipeline = Pipeline.objects.filter(company=company).first() or Pipeline.objects.create(company=company,
                                                                                           name="Sales")
    if not pipeline.stages.exists():
        for order, (name, kind) in enumerate(Pipeline.DEFAULT_STAGES, start=1):
            Stage.objects.create(pipeline=pipeline, name=name, order=order, kind=kind)
    stages = list(pipeline.stages.order_by("order"))
    won = next(stage for stage in stages if stage.kind == Stage.Kind.WON)
    lost = next(stage for stage in stages if stage.kind == Stage.Kind.LOST)
    versions = list(PromptTemplateVersion.objects.filter(template__company=company).values_list("pk", flat=True)[:2])
    campaign = Campaign.objects.create(company=company, name="Reminders", service=services[0])
    run = CampaignRun.objects.create(company=company, campaign=campaign)
    worker_contact = Contact.objects.create(company=company, name="Worker", phone=f"+88017{company.pk:04d}0000")
    worker = Worker.objects.create(company=company, contact=worker_contact)
    other_contact = Contact.objects.create(company=company, name="Worker 2", phone=f"+88016{company.pk:04d}0000")
    workers = [worker, Worker.objects.create(company=company, contact=other_contact)]
    # the first worker was coached halfway through the seeded days; the second never
    coaching_run = CoachingRun.objects.create(company=company, as_of=(end - dt.timedelta(days=days // 2)).date())
    CoachingRecipient.objects.create(run=coaching_run, company=company, worker=worker, status=CoachingRecipient.Status.COACHED,
                                     created_at=end - dt.timedelta(days=days // 2, hours=3))
    customers = []
    for index in range(8):
        contact = Contact.objects.create(company=company, name=f"Customer {index}",
                                         phone=f"+88018{company.pk:04d}{index:04d}")
        last = None if index % 4 == 0 else end - dt.timedelta(days=rng.choice((5, 45, 120, 400)))
        customers.append(Customer.objects.create(company=company, contact=contact, last_booking_at=last))
    made = {"messages": 0}
    for day in range(days):
        base = end - dt.timedelta(days=day)
        for index in range(per_day):
            # Some right at the Dhaka boundary (18:00 UTC = 00:00 Dhaka), the others anywhere in the day.
            at = base.replace(hour=18, minute=rng.choice((0, 30)) ) - dt.timedelta(minutes=rng.choice((0, 1, 31))) \
                if index % 3 == 0 else base.replace(hour=rng.randrange(24), minute=rng.randrange(60))
            customer = rng.choice(customers)
            channel = rng.choice(CHANNELS)
            correlation = uuid.uuid4()
            message = Message.objects.create(
                company=company, contact=customer.contact, direction=Message.Direction.OUTBOUND, channel=channel,
                agent_type=rng.choice(("smartengage", "sales", "coachnova")), message_type="reminder", body="Hi",
                status=Message.Status.SENT, created_at=at, sent_at=at,
                delivered_at=at + dt.timedelta(minutes=rng.choice((1, 40))) if rng.random() < 0.8 else None,
                failed_at=at + dt.timedelta(minutes=2) if rng.random() < 0.1 else None,
                correlation_id=correlation, template_version_id=rng.choice(versions) if versions and
                rng.random() < 0.6 else None,
            )
            made["messages"] += 1
            if rng.random() < 0.5:
                CampaignRecipient.objects.create(company=company, campaign=campaign, run=run, customer=customer,
                                                 message=message, status=CampaignRecipient.Status.SENT,
                                                 cycle_started_at=at + dt.timedelta(microseconds=made["messages"]))
            if rng.random() < 0.6:
                Event.objects.create(company=company, type="notification_opened", contact=customer.contact,
                                     correlation_id=correlation, occurred_at=at + dt.timedelta(minutes=20))
            if rng.random() < 0.4:
                clicked = at + dt.timedelta(minutes=35)
                Event.objects.create(company=company, type=rng.choice(("message_clicked", "deeplink_followed")),
                                     contact=customer.contact, correlation_id=correlation, occurred_at=clicked)
                if rng.random() < 0.6:
                    Event.objects.create(company=company, type="booking_created", contact=customer.contact,
                                         occurred_at=clicked + dt.timedelta(hours=rng.choice((1, 5))),
                                         payload={"amount": rng.choice((1200, 1550.5))})
            if rng.random() < 0.15:
                Event.objects.create(company=company, type="opt_out", contact=customer.contact,
                                     occurred_at=at + dt.timedelta(minutes=50), payload={"channel": channel})
            outcome = rng.choice(("ok", "ok", "ok", "error", "fallback", "rejected"))
            AISession.objects.create(
                company=company, agent_type=rng.choice(("sales", "smartengage")), purpose="reply", outcome=outcome,
                latency_ms=0 if outcome == "fallback" else rng.randrange(100, 3000), tokens_in=rng.randrange(500),
                tokens_out=rng.randrange(200), created_at=at,
                error={"error": "timeout: the model took too long", "fallback": "ai disabled"}.get(outcome, ""),
                safety={"reasons": [{"code": rng.choice(("banned_phrase", "link"))}]} if outcome == "rejected" else {},
            )
            lead = Lead.objects.create(company=company, contact=customer.contact, pipeline=pipeline,
                                       stage=stages[0], source=rng.choice(("ad", "website", "whatsapp")),
                                       channel=channel, created_at=at)
            # stage moves as crm's lead_move_to_stage records them (the lead as target, from_id/to_id): some to
            # the second stage after hours or days, some of those (and some new ones) on to won or lost
            moved_at = at
            if rng.random() < 0.5:
                moved_at = at + dt.timedelta(hours=rng.choice((2, 30, 80)))
                _move(lead, stages[1], moved_at, customer.contact)
            if rng.random() < 0.4:
                _move(lead, rng.choice((won, lost)), moved_at + dt.timedelta(hours=rng.choice((2, 50))),
                      customer.contact)
            booking = Booking.objects.create(
                company=company, customer=customer, worker=rng.choice(workers), service=rng.choice(services), scheduled_at=at,
                zone=rng.choice(ZONES), status=Booking.Status.COMPLETED)
            late = rng.randrange(0, 40)
            BookingPunctuality.objects.create(
                booking=booking, company=company, worker=booking.worker, scheduled_at=at,
                local_date=at.astimezone(dt.timezone(dt.timedelta(hours=6))).date(),
                outcome="on_time" if late < 15 else rng.choice(("late", "no_show")), minutes_late=late,
                is_excused=rng.random() < 0.1)
    return made


def _move(lead: Lead, stage: Stage, at: dt.datetime, contact: Contact) -> None:
    previous = lead.stage
    lead.stage = stage
    lead.status = {Stage.Kind.WON: Lead.Status.WON, Stage.Kind.LOST: Lead.Status.LOST}.get(stage.kind,
                                                                                          Lead.Status.OPEN)
    lead.save(update_fields=["stage", "status"])
    Event.objects.create(company=lead.company, type="stage.changed", contact=contact, target=lead, occurred_at=at,
                         payload={"lead_id": lead.pk, "status": lead.status, "from_id": previous.pk,
                                  "to_id": stage.pk})
