"""The demo's engagement story, on the companies and people of `crm.demo` (`manage.py seed_demo` runs both).

Everything here goes through the real services, so the rows are the ones the product writes: a campaign
run is triggered and its ledger jobs executed in this process as a worker would, inbound messages are
captured and answered, people take conversations over, sequences enroll and advance. Each piece then
moves the rows it wrote to the moment of the story it belongs to (`_rows_shift`: every timestamp the
piece wrote, by one offset), so lists and charts have the shape of the last 30 days.

While seeding, the AI is offline (no API key: the approved fallback texts, as `make run` without a key),
SMS and WhatsApp go to the console (`CHANNELS_CONSOLE_FALLBACK`) and email to memory. Each piece is one
transaction and is skipped when its rows exist: a rerun writes nothing. Choices come from
`random.Random` seeded with the seed and a name, so the same day gives the same story.

- Home services: the default templates; a "win-back" preset; "Win-back: 4 weeks" with a real run two
  days ago at 10:00 in Dhaka and its funnel (delivered, opened, clicked through the short link and the
  signed deep link, booked within the attribution window); "SmartEngage daily" with a dry run only (a
  preview ignoring the send window when the seed runs outside it), so "Run now" still reaches today's
  due customers; "Eid offer" (EID25) paused.
- Home services' experiments on the daily campaign, both finished: "Reminder wording: short and personal vs
  current" (a real effect, customers of the new wording booked within 7 days far more often) and an A/A
  test (the same reminder in both arms: no difference found).
- Courses: lead conversations over the last 30 days (a question, the AI's reply, a day later one
  follow-up), one lead taken over by a person who answered, one waiting for a person, a manual reply
  that died for want of an SMS account (a dead job to replay), a sequence "New lead welcome" with
  leads in flight (step 1 sent, step 2 due).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import operator
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import reduce
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import models, transaction
from django.db.models import Max, Q
from django.test.utils import override_settings
from django.utils import timezone

from crm.demo import (
    ADMIN_EMAIL,
    COURSES_SLUG,
    HOME_SERVICES_SLUG,
    MARKETING_EMAIL,
    OPERATIONS_EMAIL,
    DemoResult,
)
from crm.feed.services import booking_create
from crm.models import Booking, Channel, Company, Contact, Customer, Event, Lead, Service, Stage, User
from crm.services import pipeline_get_or_create_default
from engage.ai.models import AIConfig, AISession, KnowledgeDoc
from engage.campaigns.attribution import NOTIFICATION_OPENED, deeplink_follow_record, user_event_record
from engage.campaigns.deeplinks import deeplink_verify, short_link_target
from engage.campaigns.models import Campaign, CampaignRecipient, CampaignRun, ShortLink
from engage.campaigns.runs import DEFAULT_CAMPAIGN_NAME, campaign_funnel, campaign_run_trigger
from engage.conversations.handoff import lead_manual_reply
from engage.conversations.inbound import inbound_message_capture
from engage.conversations.models import Enrollment, Sequence, SequenceStep
from engage.conversations.sequences import sequence_enroll, sequences_advance
from engage.experiments.models import Experiment, ExperimentAssignment, ExperimentVariant
from engage.experiments.selectors import experiment_results
from engage.experiments.services import (
    assignments_for,
    experiment_outcomes_refresh,
    experiment_start,
    experiment_stop,
)
from engage.ledger.models import Job
from engage.ledger.services import job_dispatch_held, job_execute
from engage.messaging.models import Message
from engage.messaging.services import message_status_update
from engage.policy.models import CampaignPreset
from engage.policy.services import policy_for, policy_get_or_create
from engage.prompts.defaults import SEQUENCE_WELCOME_TEMPLATE_NAME
from engage.prompts.models import PromptTemplate, PromptTemplateVersion
from engage.prompts.services import template_version_approve, template_version_create, templates_seed_defaults

# What each company's AI may quote (engage.ai.knowledge): the facts a lead or customer asks about.
KNOWLEDGE = {
    HOME_SERVICES_SLUG: (
        ("Service prices", ["price", "service", "দাম"],
         "Home Cleaning 1,500 BDT (3 hours), AC Servicing 1,200 BDT, Plumbing from 800 BDT, Electrical from"
         " 700 BDT, Pest Control 2,500 BDT, Sofa Cleaning 1,800 BDT. Prices include the visit; parts are extra."),
        ("Booking, moving and cancelling", ["booking", "cancel", "বুকিং"],
         "Book in the app or through the link in our messages. A booking can be moved or cancelled free of"
         " charge up to 3 hours before the visit. Our workers come between 9 am and 6 pm, Saturday to Thursday."),
    ),
    COURSES_SLUG: (
        ("কোর্স ফি ও কিস্তি", ["fee", "price", "installment", "ফি", "কিস্তি"],
         "IELTS Preparation: ১২,০০০ টাকা (৮ সপ্তাহ)। Spoken English: ৬,৫০০ টাকা (৬ সপ্তাহ)। Python for"
         " Beginners: ৯,০০০ টাকা (১০ সপ্তাহ)। Graphic Design ও Digital Marketing: ১০,০০০ টাকা করে (৮ সপ্তাহ)।"
         " সব কোর্সের ফি দুই কিস্তিতে দেওয়া যায়: ভর্তির সময় অর্ধেক, চতুর্থ সপ্তাহে বাকি অর্ধেক।"),
        ("Batches and class times", ["batch", "schedule", "online", "recording", "ব্যাচ"],
         "New batches start on the 1st and the 15th of every month. Every course has an evening batch (7-9 pm,"
         " Sunday to Thursday) and a weekend batch (Friday and Saturday, 10 am-1 pm). Classes are online and"
         " recorded; recordings stay available for 6 months. At most 25 students in a batch."),
        ("সার্টিফিকেট, ডেমো ক্লাস ও চাকরি সহায়তা", ["certificate", "demo", "job", "mock test", "সার্টিফিকেট"],
         "প্রতিটি কোর্স শেষে সার্টিফিকেট দেওয়া হয় (৮০% উপস্থিতি ও ফাইনাল প্রজেক্ট লাগবে)। ভর্তির আগে একটি ফ্রি"
         " ডেমো ক্লাস করা যায়। IELTS কোর্সে ৪টি ফুল মক টেস্ট আছে। Python, Graphic Design ও Digital Marketing"
         " কোর্স শেষে সিভি রিভিউ ও ইন্টারভিউ প্রস্তুতির সেশন আছে; চাকরির নিশ্চয়তা দেওয়া হয় না।"),
    ),
}

# The story runs a real campaign over the home company's customers: demo volumes only.
STORY_MAX_CUSTOMERS = 5_000
WORKER = "seed_demo"
ZONE = ZoneInfo("Asia/Dhaka")

WIN_BACK_PRESET = ("win-back", 28, 30, 100, 10, 17)  # name, cadence, window days, batch, send window
WIN_BACK_CAMPAIGN = "Win-back: 4 weeks"
DAILY_CAMPAIGN = DEFAULT_CAMPAIGN_NAME
EID_CAMPAIGN = "Eid offer"
EID_PROMO_CODE = "EID25"
WELCOME_SEQUENCE = "New lead welcome"
TEMPLATES_PUBLISHED_DAYS_AGO = 30

# A lead's question, in the words people write them.
QUESTIONS = (
    "IELTS কোর্সের ফি কত? অনলাইনে ক্লাস হয়?",
    "Spoken English-এর নতুন ব্যাচ কবে শুরু হবে?",
    "Is the Python course suitable for complete beginners? I have never coded before.",
    "গ্রাফিক ডিজাইন কোর্স শেষে কি সার্টিফিকেট দেওয়া হয়?",
    "Do you have weekend batches for Digital Marketing?",
    "কোর্স ফি কি কিস্তিতে দেওয়া যাবে?",
    "ক্লাসগুলো কি রেকর্ড করা থাকে? পরে দেখা যাবে?",
    "How many students are there in one batch?",
    "IELTS কোর্সে কি মক টেস্ট আছে?",
    "আমি চাকরি করি, সন্ধ্যার কোনো ব্যাচ আছে কি?",
    "Can I attend a demo class before I enroll?",
    "কোর্স শেষে চাকরি খুঁজতে সাহায্য করেন?",
)
HANDOFF_QUESTION = "Digital Marketing কোর্সে ভর্তি হতে চাই, কী কী লাগবে?"
HANDOFF_REQUEST = "আমি একজন মানুষের সাথে কথা বলতে চাই"
TAKEN_OVER_QUESTION = "IELTS-এ ৭ ব্যান্ড পেতে কত মাসের কোর্স লাগবে?"
TAKEN_OVER_REPLY = (
    "আসসালামু আলাইকুম! আমি রহিমা, শিক্ষা কোর্সেস থেকে। আপনার এখনকার লেভেল দেখে বলতে পারব; "
    "শনিবার বিকেলে একটা ফ্রি অ্যাসেসমেন্ট ক্লাসে আসতে পারবেন?"
)
DEAD_JOB_QUESTION = "Python কোর্সের পরের ব্যাচের তারিখ জানাবেন?"
DEAD_JOB_REPLY = "পরের ব্যাচ ১৫ তারিখ সন্ধ্যা ৭টায় শুরু। চাইলে আজই আপনার সিট রেখে দিতে পারি।"
WELCOME_STEP_1 = "শিক্ষা কোর্সেসে স্বাগতম! আপনার আগ্রহের কোর্স নিয়ে যেকোনো প্রশ্ন এখানে লিখে পাঠান।"
WELCOME_STEP_3 = "এই মাসের ব্যাচগুলোতে কয়েকটি সিট বাকি আছে। ভর্তি বা ফ্রি ডেমো ক্লাসের জন্য উত্তর দিন।"
WELCOME_ENROLLMENTS = 5
# Hours ago each welcome enrollment was made: all under two days, so their step 2 is still due.
WELCOME_HOURS_AGO = (4, 10, 18, 27, 38)

# Quiet while seeding: the console channel prints every message, a dead job logs its traceback.
QUIET_LOGGERS = ("shokti.console_channel", "channels_app.registry", "engage.ledger.services", "engage.ai.client")


@dataclass
class StoryResult:
    """What the story is, in a few lines for the command to print."""

    lines: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Clock:
    """The story's clock: the seed's day at the real time of day (today unless --now says otherwise)."""

    shift: dt.timedelta  # the seed's day minus today, whole days

    def now(self) -> dt.datetime:
        return timezone.now() + self.shift

    def local(self, *, days_ago: int, hour: int, minute: int = 0) -> dt.datetime:
        """`hour:minute` in Dhaka, `days_ago` days before the story's today."""
        day = self.now().astimezone(ZONE).date() - dt.timedelta(days=days_ago)
        return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=ZONE).astimezone(dt.UTC)


class StorySeedError(RuntimeError):
    """A piece of the story did not come out as the real services should make it."""


def engage_demo_seed(*, seed: int, result: DemoResult) -> StoryResult:
    """Seed whatever part of the story is missing on the demo companies (made by `crm.demo.demo_seed`, whose
    result gives the day: `result.base_time`)."""
    today = timezone.now().astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    clock = _Clock(shift=result.base_time - today)
    if clock.shift > dt.timedelta(0):
        raise StorySeedError("The story cannot happen after today: seed a later day with --no-story.")
    home = Company.objects.get(slug=HOME_SERVICES_SLUG)
    courses = Company.objects.get(slug=COURSES_SLUG)
    users = {user.email: user for user in User.objects.filter(email__in=[ADMIN_EMAIL, OPERATIONS_EMAIL, MARKETING_EMAIL])}
    with _seeding():
        for company in (home, courses):
            _templates_seed(company=company, clock=clock, result=result)
            _knowledge_seed(company=company, clock=clock, result=result)
        _home_story(company=home, admin=users[ADMIN_EMAIL], clock=clock, seed=seed, result=result)
        _experiments_story(company=home, clock=clock, seed=seed, result=result)
        _courses_story(
            company=courses, operations=users[OPERATIONS_EMAIL], marketing=users[MARKETING_EMAIL], clock=clock,
            seed=seed, result=result,
        )
    return StoryResult(lines=_story_lines(home=home, courses=courses))


@contextlib.contextmanager
def _seeding() -> Iterator[None]:
    """Offline AI, console delivery for SMS and WhatsApp, email to memory, quiet loggers; jobs run here, not
    handed to Celery (a worker would only find them done)."""
    quiet = [(logging.getLogger(name), logging.getLogger(name).level) for name in QUIET_LOGGERS]
    with job_dispatch_held(), override_settings(
        OPENAI_API_KEY="", CHANNELS_CONSOLE_FALLBACK=True, EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"
    ):
        for logger_, _ in quiet:
            logger_.setLevel(logging.CRITICAL)
        try:
            yield
        finally:
            for logger_, level in quiet:
                logger_.setLevel(level)


# --- moving what a piece wrote to its moment in the story -----------------------------------------

SHIFTED_MODELS: tuple[type[models.Model], ...] = (
    Message, Job, Event, AISession, CampaignRun, CampaignRecipient, ShortLink, Enrollment, Booking, Lead, Contact,
)


WRITTEN_AT_FIELDS = ("created_at", "updated_at", "occurred_at")


def _written_at_fields(model: type[models.Model]) -> list[str]:
    """The fields that say when a row was written: created, updated, occurred (not when it is due)."""
    return [f.name for f in model._meta.concrete_fields if f.name in WRITTEN_AT_FIELDS]


def _rows_shift(*, company: Company, since: dt.datetime, delta: dt.timedelta) -> None:
    """Move every timestamp the company's rows got at or after `since` by `delta` (rows written or touched
    since then; a time they were given for later, such as a follow-up's due time, moves with them).

    Row by row from Python: a piece writes a few dozen rows, and one UPDATE with a CASE per column
    cost more to compile than these cost to run.
    """
    for model in SHIFTED_MODELS:
        columns = [f.name for f in model._meta.concrete_fields if isinstance(f, models.DateTimeField)]
        written = reduce(operator.or_, (Q(**{f"{name}__gte": since}) for name in _written_at_fields(model)))
        for pk, *values in model.objects.filter(company=company).filter(written).values_list("pk", *columns):
            moved = {
                name: value + delta for name, value in zip(columns, values, strict=True)
                if value is not None and value >= since
            }
            model.objects.filter(pk=pk).update(**moved)


def _last_job_id() -> int:
    return Job.objects.aggregate(highest=Max("pk"))["highest"] or 0


def _jobs_run(*, company: Company, after_id: int, expected: tuple[str, ...] = ("completed",)) -> list[str]:
    """Execute the company's jobs queued after `after_id` that are due now, and those they queue, as a worker
    would; StorySeedError when one ends otherwise than `expected`."""
    outcomes = []
    for _ in range(50):
        due = list(
            Job.objects.filter(
                company=company, pk__gt=after_id, status=Job.Status.QUEUED, next_run_at__lte=timezone.now()
            ).order_by("-priority", "id").values_list("pk", flat=True)
        )
        if not due:
            break
        for job_id in due:
            outcome = job_execute(job_id=job_id, worker=WORKER)
            if outcome not in expected:
                job = Job.objects.get(pk=job_id)
                raise StorySeedError(f"demo job {job.task_name} #{job.pk} ended {outcome}: {job.last_error}")
            outcomes.append(outcome)
    return outcomes


def _jobs_catch_up(*, company: Company, clock: _Clock, after_id: int) -> None:
    """Run the company's jobs (queued after `after_id`) that the story's clock says are due: a follow-up a day
    after a reply of last week. Each runs now and its rows move to when it was due."""
    for _ in range(200):
        job = (
            Job.objects.filter(
                company=company, pk__gt=after_id, status=Job.Status.QUEUED, next_run_at__lte=clock.now()
            ).order_by("next_run_at", "id").first()
        )
        if job is None:
            return
        since = timezone.now()
        floor = _last_job_id()
        outcome = job_execute(job_id=job.pk, worker=WORKER)
        if outcome != "completed":
            job.refresh_from_db()
            raise StorySeedError(f"demo job {job.task_name} #{job.pk} ended {outcome}: {job.last_error}")
        _jobs_run(company=company, after_id=floor)
        _rows_shift(company=company, since=since, delta=job.next_run_at - since)
    raise StorySeedError("demo jobs keep queueing due jobs")


# --- templates --------------------------------------------------------------------------------------


def _templates_seed(*, company: Company, clock: _Clock, result: DemoResult) -> None:
    """The default templates (every agent type the demo uses), published a month before the story's today."""
    with transaction.atomic():
        templates_seed_defaults(company=company)
        published_at = clock.local(days_ago=TEMPLATES_PUBLISHED_DAYS_AGO, hour=9)
        aged = PromptTemplateVersion.objects.filter(
            template__company=company, number=1, author__isnull=True, created_at__gt=published_at
        ).update(created_at=published_at, approved_at=published_at)
        result.count("templates published", aged)


def _knowledge_seed(*, company: Company, clock: _Clock, result: DemoResult) -> None:
    """What the company's AI may quote (with an API key, replies and reminders use it)."""
    written_at = clock.local(days_ago=TEMPLATES_PUBLISHED_DAYS_AGO, hour=10)
    for title, tags, body in KNOWLEDGE[company.slug]:
        _, created = KnowledgeDoc.objects.get_or_create(
            company=company, title=title, defaults={"body": body, "tags": tags, "created_at": written_at}
        )
        result.count("knowledge documents", int(created))


# --- home services: campaigns -------------------------------------------------------------------------


def _home_story(*, company: Company, admin: User, clock: _Clock, seed: int, result: DemoResult) -> None:
    name, cadence, window_days, batch, start, end = WIN_BACK_PRESET
    with transaction.atomic():
        policy = policy_get_or_create(company=company)
        _, created = CampaignPreset.objects.get_or_create(
            policy=policy, name=name,
            defaults={"cadence_days": cadence, "window_days": window_days, "batch_size": batch,
                      "send_window_start_hour": start, "send_window_end_hour": end},
        )
        result.count("campaign presets", int(created))
        campaigns = {}
        for campaign_name, fields in (
            (WIN_BACK_CAMPAIGN, {"preset": name}),
            (DAILY_CAMPAIGN, {"preset": policy.default_preset}),
            (EID_CAMPAIGN, {"preset": policy.default_preset, "promo_code": EID_PROMO_CODE, "is_paused": True}),
        ):
            campaigns[campaign_name], created = Campaign.objects.get_or_create(
                company=company, name=campaign_name,
                defaults={"channel": Channel.SMS, "created_at": clock.local(days_ago=45, hour=11), **fields},
            )
            result.count("campaigns", int(created))
    if not campaigns[WIN_BACK_CAMPAIGN].runs.exists():
        with transaction.atomic():
            _win_back_run(campaign=campaigns[WIN_BACK_CAMPAIGN], admin=admin, clock=clock, seed=seed, result=result)
    if not campaigns[DAILY_CAMPAIGN].runs.exists():
        with transaction.atomic():
            _daily_dry_run(campaign=campaigns[DAILY_CAMPAIGN], admin=admin, clock=clock, result=result)


def _win_back_run(*, campaign: Campaign, admin: User, clock: _Clock, seed: int, result: DemoResult) -> None:
    """A real run (sent whatever the hour the seed runs), moved to two days ago at 10:00 in Dhaka, and its funnel."""
    company = campaign.company
    since, floor = timezone.now(), _last_job_id()
    run = campaign_run_trigger(
        campaign=campaign, actor=admin, overrides={"send_window_start_hour": 0, "send_window_end_hour": 24}
    )
    _jobs_run(company=company, after_id=floor)
    run.refresh_from_db()
    if run.status != CampaignRun.Status.COMPLETED or not run.sent:
        raise StorySeedError(f"the win-back run ended {run.status} with {run.sent} sent: {run.error}")
    # The run as the preset had it: its own send window (the seed set it aside to send at any hour).
    preset = policy_for(company=company).preset(campaign.preset)
    CampaignRun.objects.filter(pk=run.pk).update(preset={
        **run.preset, "send_window_start_hour": preset.send_window_start_hour,
        "send_window_end_hour": preset.send_window_end_hour,
    })
    recipients = list(
        CampaignRecipient.objects.filter(run=run, status=CampaignRecipient.Status.SENT)
        .select_related("message", "customer__contact").order_by("customer__contact__phone")
    )
    depths = _funnel_depths(count=len(recipients), seed=seed)
    walks = [_funnel_walk(recipient=recipient, depth=depth) for recipient, depth in zip(recipients, depths, strict=True)]
    _rows_shift(company=company, since=since, delta=clock.local(days_ago=2, hour=10) - since)
    for recipient, walk in zip(recipients, walks, strict=True):
        _funnel_times(recipient=recipient, walk=walk, clock=clock, seed=seed)
    result.count("campaign runs")
    result.count("campaign messages", len(recipients))


# How far a recipient went: 0 sent, 1 delivered, 2 opened, 3 clicked, 4 booked.
DELIVERED, OPENED, CLICKED, BOOKED = 1, 2, 3, 4


def _funnel_depths(*, count: int, seed: int) -> list[int]:
    """How far each of `count` recipients goes: most delivered, about half opened, a third clicked, a few
    booked; every step narrower than the one before and none empty (from five recipients on)."""
    delivered = count - max(1, count // 10)
    opened = min(delivered - 1, max(1, round(count * 0.5)))
    clicked = min(opened - 1, max(1, round(count / 3)))
    booked = min(clicked - 1, max(1, round(count / 8)))
    depths = [BOOKED] * booked + [CLICKED] * (clicked - booked) + [OPENED] * (opened - clicked)
    depths += [DELIVERED] * (delivered - opened)
    depths += [0] * (count - len(depths))
    random.Random(f"{seed}:win-back").shuffle(depths)
    return depths


def _funnel_walk(*, recipient: CampaignRecipient, depth: int) -> dict:
    """What the customer did, through the real services: the provider's delivery report, the app's open,
    the short link followed to the signed deep link, a booking in the CRM."""
    message, customer = recipient.message, recipient.customer
    walk: dict = {"depth": depth}
    if depth >= DELIVERED:
        message_status_update(
            company_id=message.company_id, channel=message.channel, provider_message_id=message.provider_message_id,
            status=Message.Status.DELIVERED,
        )
    if depth >= OPENED:
        walk["opened"] = user_event_record(
            company=message.company, event_type=NOTIFICATION_OPENED, correlation_id=message.correlation_id,
            contact=customer.contact, source="app",
        )
    if depth >= CLICKED:
        code = re.search(r"/l/([A-Za-z0-9]+)", message.body).group(1)
        token = parse_qs(urlsplit(short_link_target(code=code)).query)["token"][0]
        claims = deeplink_verify(token=token)
        walk["clicked"] = deeplink_follow_record(claims=claims)
        walk["service_id"] = claims.service_id
    if depth >= BOOKED:
        service = customer.typical_services.filter(pk=walk["service_id"]).first() or customer.typical_services.first()
        walk["booking"] = booking_create(
            company=message.company, customer=customer, service=service,
            scheduled_at=timezone.now() + dt.timedelta(days=3), source="app",
        )
    return walk


def _funnel_times(*, recipient: CampaignRecipient, walk: dict, clock: _Clock, seed: int) -> None:
    """Each step at its own moment after the send: delivered in minutes, opened within hours, the link
    followed soon after, the booking within the attribution window; the visit booked for the days ahead."""
    message = Message.objects.get(pk=recipient.message_id)
    rng = random.Random(f"{seed}:win-back:{recipient.customer.contact.phone}")
    depth = walk["depth"]
    if depth >= DELIVERED:
        delivered_at = message.sent_at + dt.timedelta(seconds=rng.randint(5, 300))
        Message.objects.filter(pk=message.pk).update(delivered_at=delivered_at)
        Event.objects.filter(
            company_id=message.company_id, type="message.delivered", target_id=str(message.pk)
        ).update(occurred_at=delivered_at)
    if depth >= OPENED:
        opened_at = message.sent_at + dt.timedelta(minutes=rng.randint(10, 8 * 60))
        Event.objects.filter(pk=walk["opened"].pk).update(occurred_at=opened_at)
    if depth >= CLICKED:
        clicked_at = opened_at + dt.timedelta(minutes=rng.randint(1, 90))
        Event.objects.filter(pk=walk["clicked"].pk).update(occurred_at=clicked_at)
    if depth >= BOOKED:
        booked_at = clicked_at + dt.timedelta(minutes=rng.randint(5, 20 * 60))
        booking = walk["booking"]
        visit = clock.local(days_ago=-rng.randint(2, 6), hour=rng.choice((10, 11, 15, 16)))
        Booking.objects.filter(pk=booking.pk).update(created_at=booked_at, scheduled_at=visit)
        Event.objects.filter(
            company_id=booking.company_id, type="booking_created", target_id=str(booking.pk)
        ).update(occurred_at=booked_at, payload={**_booking_payload(booking), "scheduled_at": visit.isoformat()})


def _booking_payload(booking: Booking) -> dict:
    return Event.objects.filter(
        company_id=booking.company_id, type="booking_created", target_id=str(booking.pk)
    ).values_list("payload", flat=True).first() or {}


def _daily_dry_run(*, campaign: Campaign, admin: User, clock: _Clock, result: DemoResult) -> None:
    """A dry run today (a preview ignoring the send window when the seed runs outside it): nothing sent,
    so "Run now" still reaches today's due customers."""
    company = campaign.company
    preset = policy_for(company=company).preset(campaign.preset)
    local_hour = clock.now().astimezone(ZONE).hour
    is_outside = not preset.send_window_start_hour <= local_hour < preset.send_window_end_hour
    since, floor = timezone.now(), _last_job_id()
    run = campaign_run_trigger(campaign=campaign, actor=admin, is_dry_run=True, ignores_send_window=is_outside)
    _jobs_run(company=company, after_id=floor)
    run.refresh_from_db()
    if run.status != CampaignRun.Status.COMPLETED:
        raise StorySeedError(f"the daily dry run ended {run.status}: {run.error}")
    if clock.shift:
        _rows_shift(company=company, since=since, delta=clock.shift)
    result.count("campaign runs")


# --- courses: conversations, hand-offs, a dead job, a sequence ----------------------------------------


def _courses_story(
    *, company: Company, operations: User, marketing: User, clock: _Clock, seed: int, result: DemoResult
) -> None:
    with transaction.atomic():
        # One bump-up a day after silence: offline, every bump-up is the same approved text.
        _, created = AIConfig.objects.get_or_create(
            company=company, defaults={"model": settings.OPENAI_MODEL, "followup_max": 1}
        )
        result.count("AI configurations", int(created))
        sequence = _welcome_sequence(company=company, clock=clock, result=result)
    leads = list(
        Lead.objects.filter(company=company, status=Lead.Status.OPEN, pipeline=sequence.pipeline)
        .select_related("contact", "stage").order_by("stage__order", "contact__phone")
    )
    first_stage = [lead for lead in leads if lead.stage_id == sequence.trigger_stage_id]
    newest_first = sorted(first_stage, key=lambda lead: (-lead.created_at.timestamp(), lead.contact.phone))
    waiting = newest_first[:1]
    welcome = [lead for lead in newest_first[1:] if _is_reachable(lead)][:WELCOME_ENROLLMENTS]
    talking = [lead for lead in leads if lead.stage_id != sequence.trigger_stage_id]
    rng = random.Random(f"{seed}:conversations")
    # Chosen by position (stage, then phone), never by what the story changes: a rerun picks the same leads.
    dead_job_lead, taken_over_lead, others = talking[0], talking[1], talking[2:]
    for lead in waiting:
        asked_at = clock.now() - dt.timedelta(hours=3)
        _conversation(lead=lead, clock=clock, result=result, turns=[
            _Turn(at=asked_at, text=HANDOFF_QUESTION),
            _Turn(at=asked_at + dt.timedelta(minutes=20), text=HANDOFF_REQUEST),
        ])
    asked_at = clock.now() - dt.timedelta(days=2, hours=5)
    _conversation(lead=taken_over_lead, clock=clock, result=result, turns=[
        _Turn(at=asked_at, text=TAKEN_OVER_QUESTION),
        _Turn(at=asked_at + dt.timedelta(hours=1, minutes=20), text=TAKEN_OVER_REPLY, by=operations),
    ])
    asked_at = clock.now() - dt.timedelta(days=1, hours=2)
    _conversation(lead=dead_job_lead, clock=clock, result=result, channel=Channel.SMS, turns=[
        _Turn(at=asked_at, text=DEAD_JOB_QUESTION),
        _Turn(at=asked_at + dt.timedelta(minutes=35), text=DEAD_JOB_REPLY, by=operations, is_delivered=False),
    ])
    for index, lead in enumerate(others[:len(QUESTIONS)]):
        at = _conversation_time(lead=lead, clock=clock, rng=rng)
        _conversation(lead=lead, turns=[_Turn(at=at, text=QUESTIONS[index])], clock=clock, result=result)
    if not Enrollment.objects.filter(sequence=sequence).exists():
        for lead, hours_ago in zip(welcome, WELCOME_HOURS_AGO, strict=False):
            _welcome_enroll(sequence=sequence, lead=lead, marketer=marketing,
                            at=clock.now() - dt.timedelta(hours=hours_ago), result=result)


def _conversation_time(*, lead: Lead, clock: _Clock, rng: random.Random) -> dt.datetime:
    """When the lead wrote: spread over the last 30 days, after the lead came in, at a waking hour in Dhaka."""
    at = clock.local(days_ago=rng.randint(2, 29), hour=rng.randint(9, 21), minute=rng.randint(0, 59))
    if at <= lead.created_at:
        at = lead.created_at + dt.timedelta(minutes=rng.randint(5, 90))
    return min(at, clock.now() - dt.timedelta(hours=1))


@dataclass(frozen=True)
class _Turn:
    """A turn of a demo conversation: what the lead writes, or (`by` a person) what the person answers,
    taking the conversation over; a person's reply with `is_delivered` False goes out the way production
    sends it, without the console fallback: with no SMS account it dies, a dead job to replay."""

    at: dt.datetime
    text: str
    by: User | None = None
    is_delivered: bool = True


def _conversation(
    *, lead: Lead, turns: list[_Turn], clock: _Clock, result: DemoResult, channel: str | None = None
) -> None:
    """The lead writes (captured as the webhook would) and the AI answers, or a person does; each turn moved
    to its moment, then the jobs the story's clock says are due since (a follow-up, a summary) run.
    Skipped when the lead already has messages."""
    if Message.objects.filter(lead=lead).exists():
        return
    contact = lead.contact
    with transaction.atomic():
        floor = _last_job_id()
        for turn in turns:
            since, turn_floor = timezone.now(), _last_job_id()
            if turn.by is None:
                capture = inbound_message_capture(
                    company=lead.company, channel=channel or lead.channel, text=turn.text, phone=contact.phone,
                    contact_name=contact.name, source=lead.source,
                )
                if capture.lead_id != lead.pk:
                    raise StorySeedError(f"the demo lead {lead.pk}'s message went to lead {capture.lead_id}")
                _jobs_run(company=lead.company, after_id=turn_floor)
            else:
                lead_manual_reply(lead=lead, actor=turn.by, body=turn.text)
                if turn.is_delivered:
                    _jobs_run(company=lead.company, after_id=turn_floor)
                else:
                    with override_settings(CHANNELS_CONSOLE_FALLBACK=False):
                        _jobs_run(company=lead.company, after_id=turn_floor, expected=("dead",))
                    result.count("dead jobs")
            _rows_shift(company=lead.company, since=since, delta=turn.at - since)
        _jobs_catch_up(company=lead.company, clock=clock, after_id=floor)
    result.count("conversation turns", len(turns))


def _welcome_sequence(*, company: Company, clock: _Clock, result: DemoResult) -> Sequence:
    """"New lead welcome": a fixed greeting at once, the sales template two days later, a nudge five days after."""
    pipeline = pipeline_get_or_create_default(company=company)
    first_stage = pipeline.stages.filter(kind=Stage.Kind.OPEN).order_by("order").first()
    sequence, created = Sequence.objects.get_or_create(
        company=company, name=WELCOME_SEQUENCE,
        defaults={"pipeline": pipeline, "trigger": Sequence.Trigger.STAGE_ENTERED, "trigger_stage": first_stage,
                  "created_at": clock.local(days_ago=40, hour=12)},
    )
    if created:
        template = PromptTemplate.objects.get(company=company, agent_type="sales", locale="bn",
                                              name=SEQUENCE_WELCOME_TEMPLATE_NAME)
        SequenceStep.objects.bulk_create([
            SequenceStep(sequence=sequence, order=1, delay_minutes=0, fixed_text=WELCOME_STEP_1),
            SequenceStep(sequence=sequence, order=2, delay_minutes=2 * 24 * 60, prompt_template=template),
            SequenceStep(sequence=sequence, order=3, delay_minutes=5 * 24 * 60, fixed_text=WELCOME_STEP_3),
        ])
        result.count("sequences")
    return sequence


def _is_reachable(lead: Lead) -> bool:
    """Whether the lead's own channel may carry a sequence step to them (consent and an address)."""
    contact = lead.contact
    return contact.is_consented(lead.channel) and bool(contact.email if lead.channel == Channel.EMAIL else contact.phone)


def _welcome_enroll(*, sequence: Sequence, lead: Lead, marketer: User, at: dt.datetime, result: DemoResult) -> None:
    """Enroll the lead (by the marketer), send step 1 as the beat and a worker would; moved to `at`."""
    with transaction.atomic():
        since, floor = timezone.now(), _last_job_id()
        sequence_enroll(sequence=sequence, lead=lead, actor=marketer, source="admin")
        sequences_advance()
        _jobs_run(company=lead.company, after_id=floor)
        _rows_shift(company=lead.company, since=since, delta=at - since)
    result.count("sequence enrollments")


# --- experiments ---------------------------------------------------------------------------------------------

WORDING_EXPERIMENT = "Reminder wording: short and personal vs current"
AA_EXPERIMENT = "A/A check: the same reminder twice"
# The wording test's booking rates within 7 days (control, new wording): a big effect, so 120 demo customers show it.
WORDING_RATES = (0.12, 0.55)
NEW_WORDING = (
    "\n\nলিখুন ছোট করে, একটি বাক্যে, গ্রাহকের নাম ধরে; শেষে একটি প্রশ্ন: আবার কবে আসব?"
)


def _experiments_story(*, company: Company, clock: _Clock, seed: int, result: DemoResult) -> None:
    """Two finished experiments on the daily campaign's customers, exposed 24 to 10 days ago: the new reminder
    wording against the current one (a real effect: its customers booked within 7 days far more often), and an
    A/A test (the same reminder in both arms: no effect). Assignments through the real service (salts from the
    seed: the same day gives the same arms), bookings through the bookings feed, then the outcome refresh."""
    if Experiment.objects.filter(company=company, name__in=[WORDING_EXPERIMENT, AA_EXPERIMENT]).exists():
        return
    campaign = Campaign.objects.get(company=company, name=DAILY_CAMPAIGN)
    customers = list(Customer.objects.filter(company=company).order_by("pk"))
    rng = random.Random(f"{seed}:experiments")
    with transaction.atomic():
        template = PromptTemplate.objects.get(company=company, agent_type="smartengage", name="reminder", locale="bn")
        current = template.versions.filter(status=PromptTemplateVersion.Status.APPROVED).order_by("-number").first()
        new = template_version_create(template=template, body=current.body + NEW_WORDING)
        template_version_approve(version=new)
        template_version_approve(version=current)  # the current wording stays the live one: the test is over
        wording = Experiment.objects.create(
            company=company, name=WORDING_EXPERIMENT, campaign=campaign, tuning_units=len(customers) or 1,
            hypothesis="A short, personal reminder that ends with a question brings more bookings.",
            guardrails=["opt_out"],
        )
        ExperimentVariant.objects.create(experiment=wording, name="A (current)", kind="control", template_version=current)
        ExperimentVariant.objects.create(
            experiment=wording, name="B (short and personal)", kind="template_version", template_version=new
        )
        same = Experiment.objects.create(
            company=company, name=AA_EXPERIMENT, campaign=campaign, tuning_units=len(customers) or 1,
            hypothesis="Both arms get the same reminder: the platform must find no difference.",
        )
        ExperimentVariant.objects.create(experiment=same, name="A", kind="control", template_version=current)
        ExperimentVariant.objects.create(experiment=same, name="A again", kind="template_version", template_version=current)
        for experiment, days_ago in ((wording, 24), (same, 17)):
            experiment_start(experiment=experiment)
            experiment.phases.update(salt=f"demo-{seed}-{days_ago}")
            experiment.refresh_from_db()
            assigned = assignments_for(experiment=experiment, unit_ids=[customer.pk for customer in customers])
            control_id = experiment.variants.get(kind="control").pk
            services = list(Service.objects.filter(company=company).order_by("pk")[:3])
            for index, customer in enumerate(customers):
                assignment = assigned.get(customer.pk)
                if assignment is None or assignment == "holdout":
                    continue
                exposed = clock.local(days_ago=days_ago - index % 7, hour=15)
                ExperimentAssignment.objects.filter(pk=assignment.pk).update(exposed_at=exposed)
                rate = WORDING_RATES[assignment.variant_id != control_id] if experiment is wording else 0.3
                if services and rng.random() < rate:
                    booked = exposed + dt.timedelta(days=rng.randint(1, 5), hours=rng.randint(0, 6))
                    booking = booking_create(
                        company=company, customer=customer, service=services[index % len(services)],
                        scheduled_at=booked + dt.timedelta(days=2),
                    )
                    Booking.objects.filter(pk=booking.pk).update(created_at=booked)
                    result.count("experiment bookings", 1)
            experiment.phases.update(started_at=clock.local(days_ago=days_ago, hour=14))
            Experiment.objects.filter(pk=experiment.pk).update(started_at=clock.local(days_ago=days_ago, hour=14))
            experiment_stop(experiment=experiment)
            Experiment.objects.filter(pk=experiment.pk).update(stopped_at=clock.local(days_ago=days_ago - 14, hour=14))
            experiment.refresh_from_db()
            experiment_outcomes_refresh(experiment=experiment)
            result.count("experiments", 1)


# --- the summary the command prints -----------------------------------------------------------------------


def _story_lines(*, home: Company, courses: Company) -> list[str]:
    lines = []
    win_back = Campaign.objects.filter(company=home, name=WIN_BACK_CAMPAIGN).first()
    if win_back is not None:
        funnel = campaign_funnel(campaign=win_back)
        lines.append(
            f"{home.name}: campaign \"{win_back.name}\": " + " > ".join(f"{count} {step}" for step, count in funnel.items())
        )
    for experiment in Experiment.objects.filter(company=home, name__in=[WORDING_EXPERIMENT, AA_EXPERIMENT]):
        lines.append(f"{home.name}: experiment \"{experiment.name}\": {experiment_results(experiment=experiment)['verdict']}")
    waiting = Lead.objects.filter(company=courses, handoff_requested_at__isnull=False).count()
    dead = Job.objects.filter(company=courses, status=Job.Status.DEAD).count()
    talking = Lead.objects.filter(company=courses, messages__direction=Message.Direction.INBOUND).distinct().count()
    enrolled = Enrollment.objects.filter(company=courses, status=Enrollment.Status.ACTIVE).count()
    lines.append(
        f"{courses.name}: {talking} lead conversations, {waiting} waiting for a person, {dead} dead job(s) to"
        f" replay, {enrolled} leads in a sequence"
    )
    return lines
