"""SmartEngage: the seed's ten-step reminder workflow, for one customer and in bulk.

For each customer: 1 consent, 2 frequency caps (checked first, then reserved atomically in the
transaction that writes the intent), 3 context (customer, service), 4 booking history, then the
prompt from the latest *approved* template versions (a draft never goes out), 5 generation (the
shared AI client: concurrent in bulk, AISession recorded, fallback on failure), 6-7 the signed
booking deep link put where the model left the placeholder and the safety filter on that final
text, in the client (the link counts towards the SMS length and must be there; on rejection the
approved fallback with the link, judged too; when that fails as well nothing is sent: skipped as
safety_rejected with both verdicts, a configuration problem to fix), 8 the send through a ledger
job and `message_send` on the channel, 9 the `engage.Message` with correlation id and template
version, 10 metrics.

In a campaign run each person also gets a `CampaignRecipient` row (see engage.models.campaigns).
A dry run does everything up to the send and records what it would have sent.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from crm.models import Channel, Company, Customer, Service, User
from engage.ai import (
    GenerationRequest,
    ai_config_for,
    template_render,
)
from engage.ai.client import (
    AI_GENERATION_OFF_REASON,
    GenerationBatch,
    GenerationResult,
    ai_fallbacks,
    ai_generate_start,
)
from engage.ai.safety import LINK_PLACEHOLDER
from engage.ai.templates import template_latest_approved, template_variables_check
from engage.handlers import default_priority
from engage.models import (
    AISession,
    CampaignRecipient,
    CampaignRun,
    Job,
    Message,
    PromptTemplate,
    PromptTemplateVersion,
)
from engage.policy import ROLE_CUSTOMER
from engage.services.consent import can_send, contact_zone, send_slots_reserve
from engage.services.jobs import job_dispatch_on_commit, job_execute, sql_value

logger = logging.getLogger(__name__)

AGENT_TYPE = "smartengage"
MESSAGE_TYPE = "reminder"
SEND_TASK = "smartengage_send"
SYSTEM_TEMPLATE_NAME = "reminder_system"
USER_TEMPLATE_NAME = "reminder"
HISTORY_LIMIT = 5
EMAIL_SUBJECT = {"bn": "আপনার সার্ভিসের সময় হয়েছে", "en": "Time for your service again"}

# The texts seeded for new companies by engage.services.templates.templates_seed_defaults (v2:
# migration 0024 moved the companies whose v1 texts were untouched to these; 0007 and 0015 hold the
# frozen v1 copies). Written for a Bengali reader: আপনি, the given name with no case ending glued
# to it, Bengali digits, the channel's length, the brand's sign-off, no invented claims.
SYSTEM_PROMPT_V2 = (
    "আপনি একটি হোম সার্ভিস প্রতিষ্ঠানের হয়ে গ্রাহকদের জন্য ছোট, আন্তরিক রিমাইন্ডার বার্তা লেখেন। "
    "প্রতিষ্ঠানের নাম: {{ company_name }}।\n"
    "নিয়মগুলো:\n"
    "- গ্রাহককে সবসময় \"আপনি\" বলে সম্বোধন করবেন। নাম দেওয়া থাকলে শুধু সেই নামটি লিখবেন, নামের সঙ্গে কোনো "
    "বিভক্তি জুড়বেন না; নাম না থাকলে \"প্রিয় গ্রাহক\" লিখবেন।\n"
    "- শুধু বাংলায় লিখবেন; সংখ্যা ও তারিখ বাংলা অঙ্কে লিখবেন।\n"
    "- শুধু নিচে দেওয়া তথ্য ব্যবহার করবেন। কোনো দাম, ছাড়, অফার, গ্যারান্টি বা প্রোমো কোড নিজে থেকে বানাবেন না।\n"
    "- কোনো ফোন নম্বর, ইমেইল বা ওয়েবসাইটের ঠিকানা লিখবেন না; বুকিং লিংক আমরা বসিয়ে দেব।\n"
    "- তাড়া দেবেন না, চাপ দেবেন না, ভয় দেখাবেন না; বিনীতভাবে মনে করিয়ে দেবেন।\n"
    "- নিজের সম্পর্কে বা এই নির্দেশনাগুলোর কথা কিছুই লিখবেন না; শুধু বার্তাটি লিখবেন।\n"
    "- বার্তার শেষে আলাদা লাইনে প্রতিষ্ঠানের নাম দিয়ে শেষ করবেন, যেমন: — {{ company_name }}"
)
USER_PROMPT_V2 = (
    "{% if customer_first_name %}গ্রাহকের নাম: {{ customer_first_name }}"
    "{% else %}গ্রাহকের নাম জানা নেই (\"প্রিয় গ্রাহক\" লিখবেন){% endif %}\n"
    "সার্ভিস: {{ service_name_bn }}\n"
    "{% if days_since_last_booking %}শেষ বুকিং: {{ days_since_last_booking }} দিন আগে\n{% endif %}"
    "{% if booking_history %}আগের বুকিং (নতুন থেকে পুরোনো):\n{{ booking_history }}\n{% endif %}"
    "{% if service_price %}সার্ভিসের দাম: {{ service_price }} (দাম লিখলে শুধু এটিই লিখবেন)\n{% endif %}"
    "{% if promo_code %}প্রোমো কোড: {{ promo_code }} (কোডটি হুবহু লিখবেন; এর বাইরে কোনো ছাড়ের কথা লিখবেন না)\n"
    "{% endif %}"
    "মাধ্যম: {{ channel_name_bn }}। লিংক বাদে পুরো বার্তাটি {{ max_characters }} অক্ষরের মধ্যে রাখবেন।\n"
    "বুকিং লিংক যেখানে বসবে, সেখানে হুবহু {{ deep_link }} লিখবেন।"
)
DEFAULT_TEMPLATES: tuple[tuple[str, str, str], ...] = (
    (SYSTEM_TEMPLATE_NAME, SYSTEM_PROMPT_V2, "SmartEngage reminder: the system prompt."),
    (USER_TEMPLATE_NAME, USER_PROMPT_V2, "SmartEngage reminder: the user prompt."),
)
CHANNEL_NAMES_BN = {
    Channel.SMS: "এসএমএস", Channel.EMAIL: "ইমেইল", Channel.WHATSAPP_CLOUD: "হোয়াটসঅ্যাপ",
    Channel.WHATSAPP_WEB: "হোয়াটসঅ্যাপ", Channel.CONSOLE: "বার্তা",
}
# Characters the model may write, without the link: SMS is what the company's segments hold in UCS-2
# (67 a part) less the short link and its line break; WhatsApp and email a short, readable message.
TEXT_LENGTH_BY_CHANNEL = {Channel.EMAIL: 600, Channel.WHATSAPP_CLOUD: 400, Channel.WHATSAPP_WEB: 400}
SHORT_LINK_LENGTH = 34


def reminder_max_characters(*, channel: str, sms_max_segments: int) -> int:
    """How long the model's text may be on `channel` (the link left out)."""
    if channel == Channel.SMS:
        return max(60, sms_max_segments * 67 - SHORT_LINK_LENGTH - 1) if sms_max_segments > 1 else 70 - SHORT_LINK_LENGTH
    return TEXT_LENGTH_BY_CHANNEL.get(channel, 400)


def reminder_prompt_context(
    *,
    company: Company,
    customer: Customer,
    service: Service | None,
    history: list,
    now: Any,
    promo_code: str,
    channel: str,
    sms_max_segments: int,
) -> dict[str, Any]:
    """The reminder template's variables for one customer: names, the service and its price, days and
    history in Bengali digits and dates, the channel and its length, the link placeholder."""
    from engage.ai.bengali import first_name, money_bn, number_bn
    from engage.segmentation import booking_history_text

    last = history[0] if history else None
    last_at = customer.last_booking_at or (last.finished_at if last else None)
    name = customer.contact.name or ""
    return {
        "company_name": company.name,
        "customer_name": name,
        "customer_first_name": first_name(name),
        "service_name": service.name if service else "",
        "service_name_bn": (service.name_bn or service.name) if service else "আমাদের সার্ভিস",
        "service_price": money_bn(service.base_price) if service and service.base_price else "",
        "days_since_last_booking": number_bn((now - last_at).days) if last_at else "",
        "booking_history": booking_history_text(
            bookings=history, now=now, zone=contact_zone(contact=customer.contact)
        ),
        "promo_code": promo_code,
        "channel_name_bn": CHANNEL_NAMES_BN.get(channel, "বার্তা"),
        "max_characters": number_bn(reminder_max_characters(channel=channel, sms_max_segments=sms_max_segments)),
        "deep_link": LINK_PLACEHOLDER,
    }


Reason = CampaignRecipient.Reason
SENT, FAILED, SKIPPED, DRY_RUN = "sent", "failed", "skipped", "dry_run"


@dataclass
class ReminderOutcome:
    """What happened to one customer."""

    customer_id: int
    status: str
    reason: str = ""
    correlation_id: str = ""
    message_id: int | None = None
    body: str = ""
    template_version_id: int | None = None
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "success": self.status in (SENT, DRY_RUN),
            "customer_id": self.customer_id,
            "status": self.status,
            "reason": self.reason,
            "correlation_id": self.correlation_id,
            "message_id": self.message_id,
            "template_version_id": self.template_version_id,
            "body": self.body,
            "error": self.error,
        }


@dataclass
class BulkResult:
    total_eligible: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    rendered: int = 0
    duration_seconds: float = 0.0
    outcomes: list[ReminderOutcome] = field(default_factory=list)

    def add(self, outcome: ReminderOutcome) -> None:
        self.outcomes.append(outcome)
        if outcome.status == SENT:
            self.sent += 1
        elif outcome.status == FAILED:
            self.failed += 1
        elif outcome.status == SKIPPED:
            self.skipped += 1
        elif outcome.status == DRY_RUN:
            self.rendered += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "total_eligible": self.total_eligible,
            "sent": self.sent,
            "failed": self.failed,
            "skipped": self.skipped,
            "rendered": self.rendered,
            "duration_seconds": round(self.duration_seconds, 3),
        }


@dataclass
class _Plan:
    customer: Customer
    correlation_id: uuid.UUID
    channel: str
    service: Service | None = None
    version: PromptTemplateVersion | None = None
    link: str = ""
    request: GenerationRequest | None = None
    cycle_started_at: Any = None
    reason: str = ""
    text: str = ""
    session: AISession | None = None
    note: str = ""
    # Neither the model's text nor the approved fallback (with the link) passed the safety filter.
    is_blocked: bool = False


def _count_skip(reason: str) -> None:
    try:
        from shokti.metrics import campaign_recipients_skipped_total

        campaign_recipients_skipped_total.labels(reason=reason).inc()
    except Exception:  # pragma: no cover - metrics never break a send
        logger.exception("campaign_recipients_skipped_total not counted")


# --- Consent and caps (engage.services.consent) ------------------------------------------------------


def _consent_and_caps_reason(*, customer: Customer, channel: str, bypass_frequency_caps: bool) -> str:
    """"" when the customer may get a reminder on `channel` now, else the skip reason (nothing reserved)."""
    decision = can_send(
        contact=customer.contact, channel=channel, role=ROLE_CUSTOMER, bypass_caps=bypass_frequency_caps
    )
    return "" if decision.allowed else str(decision.reason)


# --- Templates and context -------------------------------------------------------------------------


def smartengage_templates(*, company: Company, locale: str) -> tuple[PromptTemplateVersion | None, PromptTemplateVersion]:
    """The approved (system, user) reminder template versions; ValidationError when no user template is approved."""
    user = template_latest_approved(company=company, agent_type=AGENT_TYPE, locale=locale, name=USER_TEMPLATE_NAME)
    if user is None and locale == "bn" and not PromptTemplate.objects.filter(
        company=company, agent_type=AGENT_TYPE, name=USER_TEMPLATE_NAME
    ).exists():
        # A company created after migration 0007 gets the v1 defaults on first use; one whose
        # marketers archived them does not (that is their decision).
        from engage.services.templates import templates_seed_defaults

        templates_seed_defaults(company=company)
        user = template_latest_approved(company=company, agent_type=AGENT_TYPE, locale=locale, name=USER_TEMPLATE_NAME)
    if user is None and locale != "bn":
        return smartengage_templates(company=company, locale="bn")
    if user is None:
        raise ValidationError(
            {"template": f"No approved SmartEngage reminder template ({USER_TEMPLATE_NAME}/{locale}) for this company."}
        )
    system = template_latest_approved(
        company=company, agent_type=AGENT_TYPE, locale=user.template.locale, name=SYSTEM_TEMPLATE_NAME
    )
    return system, user


def _link_for(*, plan: _Plan, promo_code: str, ttl_hours: int | None, is_deeplink_enabled: bool) -> str:
    from engage.deeplinks import deeplink_booking_create, deeplink_promo_create

    if not is_deeplink_enabled:
        return ""
    if plan.service is None and promo_code:
        return deeplink_promo_create(
            customer=plan.customer, promo_code=promo_code, ttl_hours=ttl_hours, correlation_id=plan.correlation_id
        )
    return deeplink_booking_create(
        customer=plan.customer, service=plan.service, promo_code=promo_code, ttl_hours=ttl_hours,
        correlation_id=plan.correlation_id,
    )


# A signed link is 250-310 characters: an SMS (70 Bengali characters a segment) or a WhatsApp text
# carries a short link to it instead (engage.models.links); email keeps the signed link.
SHORT_LINK_CHANNELS = frozenset({Channel.SMS, Channel.WHATSAPP_CLOUD, Channel.WHATSAPP_WEB})


def _links_shorten(*, company: Company, plans: list[_Plan], ttl_hours: int | None, save: bool) -> None:
    """Swap each plan's signed link for a short one (one INSERT for the batch; none saved in a dry run)."""
    from engage.deeplinks import short_links_create

    linked = [plan for plan in plans if plan.link]
    urls = short_links_create(
        company=company, links=[(plan.link, plan.correlation_id) for plan in linked], ttl_hours=ttl_hours, save=save
    )
    for plan, url in zip(linked, urls, strict=True):
        plan.link = url
        if plan.request is not None:
            plan.request.link = url


# --- The workflow ----------------------------------------------------------------------------------


def _plans(
    *,
    company: Company,
    customers: Sequence[Customer],
    channel: str,
    service: Service | None,
    promo_code: str,
    ttl_hours: int | None,
    bypass_frequency_caps: bool,
    send_window: tuple[int, int] | None = None,
    is_segmented: bool = False,
) -> list[_Plan]:
    """Steps 1-4 and the prompt for each customer (skips get their reason and no prompt)."""
    from engage.policy import policy_for

    policy = policy_for(company=company)
    if not policy.is_smartengage_enabled:
        raise ValidationError({"smartengage": "SmartEngage is switched off in this company's engagement policy."})
    config = ai_config_for(company=company)
    from engage.ai.safety_context import SafetyContext
    from engage.segmentation import customer_booking_histories

    # The latest completed bookings of the whole batch in one query: the last one picks the service,
    # all of them are the prompt's booking history.
    histories = customer_booking_histories(customer_ids=[customer.pk for customer in customers])
    templates: dict[str, tuple[PromptTemplateVersion | None, PromptTemplateVersion]] = {}
    system_texts: dict[tuple, str] = {}
    now = timezone.now()
    plans = []
    for customer in customers:
        plan = _Plan(customer=customer, correlation_id=uuid.uuid4(), channel=channel)
        plan.cycle_started_at = customer.last_booking_at
        if not is_segmented:
            # A campaign's segment already selected consented customers under their caps; the
            # atomic reservation at send time decides in every case.
            plan.reason = _consent_and_caps_reason(
                customer=customer, channel=channel, bypass_frequency_caps=bypass_frequency_caps
            )
        if not plan.reason and send_window is not None:
            local_hour = now.astimezone(contact_zone(contact=customer.contact)).hour
            if not send_window[0] <= local_hour < send_window[1]:
                plan.reason = Reason.OUTSIDE_SEND_WINDOW
        plans.append(plan)
        if plan.reason:
            continue
        history = histories.get(customer.pk, [])
        last = history[0] if history else None
        plan.service = service or (last.service if last else None)
        locale = customer.contact.locale or "bn"
        if locale not in templates:
            templates[locale] = smartengage_templates(company=company, locale=locale)
        system, plan.version = templates[locale]
        context = reminder_prompt_context(
            company=company, customer=customer, service=plan.service, history=history, now=now,
            promo_code=promo_code, channel=channel, sms_max_segments=config.sms_max_segments,
        )
        messages = []
        system_key = (system.pk if system else None, locale)
        system_text = system_texts.get(system_key)
        if system_text is None:
            system_text = (
                template_render(body=system.body, agent_type=AGENT_TYPE, context=context)
                if system else config.system_prompt
            )
            company_only = system is None or template_variables_check(
                agent_type=AGENT_TYPE, body=system.body
            ) <= {"company_name"}
            if company_only:
                system_texts[system_key] = system_text
        if system_text:
            messages.append({"role": "system", "content": system_text})
        messages.append(
            {"role": "user", "content": template_render(body=plan.version.body, agent_type=AGENT_TYPE, context=context)}
        )
        plan.link = _link_for(
            plan=plan, promo_code=promo_code, ttl_hours=ttl_hours, is_deeplink_enabled=policy.is_deeplink_enabled
        )
        plan.request = GenerationRequest(
            company=company,
            agent_type=AGENT_TYPE,
            purpose=MESSAGE_TYPE,
            messages=messages,
            message_type=MESSAGE_TYPE,
            locale=plan.version.template.locale,
            channel=channel,
            contact=customer.contact,
            correlation_id=plan.correlation_id,
            link=plan.link,
            # The claims the text may make: the service's price and the campaign's code, nothing else.
            safety_context=SafetyContext(
                prices=(plan.service.base_price,) if plan.service and plan.service.base_price else (),
                promo_codes=(promo_code,) if promo_code else (),
            ),
            fallback_context={
                "service_name_bn": (plan.service.name_bn or plan.service.name) if plan.service else "",
                "service_name": plan.service.name if plan.service else "",
                "promo_code": promo_code,
            },
        )
    return plans


DRY_RUN_NOT_CALLED = "Dry run: the model was not called for this customer (beyond the sample); the approved fallback is shown."


def _generate_start(*, plans: list[_Plan], dry_run: bool = False) -> _Generation | None:
    """Steps 5-7, started: the model calls go out (bulk pool) and this returns at once; None when none are needed.

    A dry run calls the model for the first SMARTENGAGE_DRY_RUN_MODEL_SAMPLE customers of each
    batch only (a preview of what the model writes, AISessions recorded); every other customer gets
    the approved fallback with the link, judged by the same filter as a real send, and marked so: a
    dry run of the whole eligible set costs no model calls and is not held up by them.
    """
    to_generate = [plan for plan in plans if not plan.reason and plan.request is not None]
    if not to_generate:
        return None
    if dry_run:
        sample = max(0, int(getattr(settings, "SMARTENGAGE_DRY_RUN_MODEL_SAMPLE", 20)))
        beyond = to_generate[sample:]
        results = ai_fallbacks(requests=[plan.request for plan in beyond], reason=DRY_RUN_NOT_CALLED)
        for plan, result in zip(beyond, results, strict=True):
            _result_apply(plan=plan, result=result, is_model_asked=False)
            plan.note = plan.note or DRY_RUN_NOT_CALLED
        to_generate = to_generate[:sample]
        if not to_generate:
            return None
    return _Generation(plans=to_generate, batch=ai_generate_start(requests=[plan.request for plan in to_generate]))


@dataclass
class _Generation:
    plans: list[_Plan]
    batch: GenerationBatch


def _result_apply(*, plan: _Plan, result: GenerationResult, is_model_asked: bool = True) -> None:
    """The generation's final text (link in, judged) and the reason it is not the model's own."""
    plan.session, plan.text = result.session, result.text
    if result.outcome == AISession.Outcome.REJECTED:
        plan.reason = Reason.SAFETY_REJECTED
    elif result.outcome != AISession.Outcome.OK and is_model_asked and result.reason != AI_GENERATION_OFF_REASON:
        # The model failed or had no key. Switched off by the policy is no failure (the approved
        # fallback is what the company chose), nor is a dry run's customer beyond its model sample.
        plan.reason = Reason.AI_FAILED_FALLBACK
    if not result.is_sendable:
        plan.reason, plan.is_blocked, plan.note = Reason.SAFETY_REJECTED, True, result.reason


def _generate_finish(generation: _Generation | None) -> None:
    """Steps 5-7, finished: wait for the calls; the client put the link in, filtered and fell back."""
    if generation is None:
        return
    for plan, result in zip(generation.plans, generation.batch.results(), strict=True):
        _result_apply(plan=plan, result=result)


def _send_payload(*, plan: _Plan, run_id: int | None, subject: str) -> dict[str, Any]:
    return {
        "customer_id": plan.customer.pk,
        "contact_id": plan.customer.contact_id,
        "channel": plan.channel,
        "subject": subject,
        "correlation_id": str(plan.correlation_id),
        "template_version_id": plan.version.pk if plan.version else None,
        "ai_session_id": plan.session.pk if plan.session else None,
        "run_id": run_id,
    }


def _subject_for(plan: _Plan) -> str:
    locale = plan.request.locale if plan.request else "bn"
    return EMAIL_SUBJECT.get(locale, EMAIL_SUBJECT["en"]) if plan.channel == Channel.EMAIL else ""


@dataclass
class _Queued:
    index: int
    plan: _Plan
    outcome: ReminderOutcome
    job_id: int
    message: Message


def _intents_write(
    *, company: Company, to_send: list[tuple[int, _Plan]], run: CampaignRun | None, bypass_frequency_caps: bool
) -> tuple[list[tuple[int, ReminderOutcome]], list[_Queued]]:
    """Step 8, a batch in one transaction: reserve the slots, write the intents, jobs and queued messages.

    Statements per batch, not per person: lock the contacts and count their caps (2), the intents
    (INSERT ... ON CONFLICT DO NOTHING: the unique (campaign, cycle, customer) decides who is
    already reminded), the ledger jobs, the queued messages, and the links between them. Nothing
    reaches a provider before this commits.
    """
    skipped: list[tuple[int, ReminderOutcome]] = []
    skip_reasons: list[str] = []
    queued: list[_Queued] = []
    with transaction.atomic():
        decisions = send_slots_reserve(
            contacts=[plan.customer.contact for _, plan in to_send], channel=to_send[0][1].channel,
            role=ROLE_CUSTOMER, bypass_caps=bypass_frequency_caps,
        )
        now = timezone.now()
        skipped_rows: list[tuple[_Plan, str, str, str]] = []
        allowed: list[tuple[int, _Plan]] = []

        def skip(index: int, plan: _Plan, reason: str) -> None:
            skipped.append((index, ReminderOutcome(
                customer_id=plan.customer.pk, status=SKIPPED, reason=reason, correlation_id=str(plan.correlation_id),
                body=plan.text, template_version_id=plan.version.pk if plan.version else None,
            )))
            skip_reasons.append(reason)
            if run is not None:
                skipped_rows.append((plan, CampaignRecipient.Status.SKIPPED, reason, ""))

        for (index, plan), decision in zip(to_send, decisions, strict=True):
            if decision.allowed:
                allowed.append((index, plan))
            else:
                skip(index, plan, str(decision.reason))
        intent_ids: dict[int, int] = {}
        if run is not None and allowed:
            intent_ids = _recipient_intents_insert(run=run, plans=[plan for _, plan in allowed], now=now)
            for index, plan in allowed:
                if plan.customer.pk not in intent_ids:
                    skip(index, plan, Reason.ALREADY_REMINDED)
            allowed = [(index, plan) for index, plan in allowed if plan.customer.pk in intent_ids]
        if allowed:
            priority = default_priority(SEND_TASK)
            jobs = Job.objects.bulk_create([
                Job(
                    company=company, task_name=SEND_TASK, priority=priority, status=Job.Status.QUEUED,
                    payload=_send_payload(plan=plan, run_id=run.pk if run else None, subject=_subject_for(plan)),
                    idempotency_key=f"{SEND_TASK}:{plan.correlation_id}", next_run_at=now, dispatched_at=now,
                    created_at=now,
                )
                for _, plan in allowed
            ])
            # The queued messages are the reservations the caps count; message_send(job=...) sends these rows.
            messages = Message.objects.bulk_create([
                Message(
                    company=company, contact=plan.customer.contact, direction=Message.Direction.OUTBOUND,
                    channel=plan.channel, agent_type=AGENT_TYPE, message_type=MESSAGE_TYPE, subject=_subject_for(plan),
                    body=plan.text, status=Message.Status.QUEUED, correlation_id=plan.correlation_id, job=job,
                    template_version=plan.version,
                )
                for (_, plan), job in zip(allowed, jobs, strict=True)
            ])
            if intent_ids:
                _rows_link(
                    table=CampaignRecipient._meta.db_table, columns=("message_id", "job_id"),
                    rows=[(intent_ids[plan.customer.pk], message.pk, job.pk)
                          for (_, plan), job, message in zip(allowed, jobs, messages, strict=True)],
                )
            sessions = [(plan.session.pk, message.pk) for (_, plan), message in zip(allowed, messages, strict=True)
                        if plan.session is not None and plan.session.pk is not None]
            if sessions:
                _rows_link(table=AISession._meta.db_table, columns=("message_id",), rows=sessions)
            for job in jobs:
                job_dispatch_on_commit(job=job)
            for (index, plan), job, message in zip(allowed, jobs, messages, strict=True):
                queued.append(_Queued(index=index, plan=plan, job_id=job.pk, message=message, outcome=ReminderOutcome(
                    customer_id=plan.customer.pk, status=SENT, reason=plan.reason,
                    correlation_id=str(plan.correlation_id), body=plan.text,
                    template_version_id=plan.version.pk if plan.version else None,
                )))
        if skipped_rows:
            recipient_rows_insert(run=run, rows=skipped_rows, now=now)
    for reason in skip_reasons:
        _count_skip(reason)
    for item in queued:
        if item.plan.reason:
            _count_skip(item.plan.reason)
    return skipped, queued


def _rows_link(*, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """UPDATE table SET columns FROM (VALUES (id, ...), ...): one statement for a batch's links."""
    table = connection.ops.quote_name(table)
    names = ", ".join(connection.ops.quote_name(column) for column in columns)
    assignments = ", ".join(f"{connection.ops.quote_name(column)} = v.{connection.ops.quote_name(column)}"
                            for column in columns)
    values = ", ".join(["(" + ", ".join(["%s::bigint"] * (len(columns) + 1)) + ")"] * len(rows))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {assignments} FROM (VALUES {values}) AS v(id, {names}) WHERE {table}.id = v.id",
            [value for row in rows for value in row],
        )


def _send_queued(*, item: _Queued) -> ReminderOutcome:
    """Step 9: run the send job here (the copy Celery gets on commit finds it done; if this process
    dies first, Celery or the relay sends it: the message is unique per job either way)."""
    outcome = item.outcome
    ran = job_execute(job_id=item.job_id, worker=f"smartengage:{item.plan.correlation_id}")
    outcome.message_id = item.message.pk
    if ran != "completed":
        # Failed (the ledger retries it), dead, or taken by a worker first: ask the message.
        item.message.refresh_from_db(fields=["status", "error"])
        if item.message.status in (Message.Status.QUEUED, Message.Status.FAILED):
            outcome.status = FAILED
            outcome.error = item.message.error or "The send did not complete; the job retries it."
    return outcome


_RECIPIENT_COLUMNS = (
    "company_id, campaign_id, run_id, customer_id, cycle_started_at, status, reason, body, message_id, job_id,"
    " template_version_id, correlation_id, error, created_at, updated_at"
)


# A recipient row to write: (plan, status, reason, error).
RecipientRow = tuple["_Plan", str, str, str]


def recipient_rows_insert(*, run: CampaignRun, rows: list[RecipientRow], now: Any) -> None:
    """Insert recipient rows (plan, status, reason, error) without model instances: COPY on PostgreSQL.

    A dry run writes one row per customer, so this is its biggest write. Measured per row of client
    CPU: a multi-row VALUES statement of a batch ~76 us (psycopg re-parses its thousands of
    placeholders every time: it caches only short statements), Django's bulk_create ~37 us,
    executemany of a short INSERT ~15 us (but one statement per row for the server), COPY ~11 us
    and one statement. Elsewhere: executemany.
    """
    table = connection.ops.quote_name(CampaignRecipient._meta.db_table)
    params = [_recipient_params(run=run, plan=plan, status=status, reason=reason, error=error, now=now)
              for plan, status, reason, error in rows]
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.executemany(
                f"INSERT INTO {table} ({_RECIPIENT_COLUMNS})"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, NULL, NULL, %s, %s, %s, %s, %s)",
                params,
            )
            return
        columns = _RECIPIENT_COLUMNS.replace(" message_id, job_id,", "")
        sql = f"COPY {table} ({columns}) FROM STDIN"
        # COPY goes past Django's cursor wrapper: log it as one query like the others (DEBUG, tests).
        logged = cursor.debug_sql(sql) if hasattr(cursor, "debug_sql") else contextlib.nullcontext()
        with logged, cursor.cursor.copy(sql) as copy:
            for row in params:
                copy.write_row(row)


def _recipient_params(*, run: CampaignRun, plan: _Plan, status: str, reason: str, error: str, now: Any) -> list[Any]:
    return [
        run.company_id, run.campaign_id, run.pk, plan.customer.pk, sql_value(plan.cycle_started_at or run.created_at),
        status, reason, plan.text, plan.version.pk if plan.version else None, sql_value(plan.correlation_id), error,
        sql_value(now), sql_value(now),
    ]


def _recipient_intents_insert(*, run: CampaignRun, plans: list[_Plan], now: Any) -> dict[int, int]:
    """Write the pending intent rows; {customer id: intent id} of those written (the others have one in this cycle).

    INSERT ... ON CONFLICT DO NOTHING: the unique (campaign, cycle, customer) decides, no savepoint.
    """
    table = connection.ops.quote_name(CampaignRecipient._meta.db_table)
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, NULL, NULL, %s, %s, %s, %s, %s)"] * len(plans))
    params: list[Any] = []
    for plan in plans:
        params += _recipient_params(
            run=run, plan=plan, status=CampaignRecipient.Status.PENDING, reason=plan.reason, error="", now=now
        )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({_RECIPIENT_COLUMNS}) VALUES {values} ON CONFLICT DO NOTHING RETURNING customer_id, id",
            params,
        )
        return dict(cursor.fetchall())


def smartengage_reminders_process(
    *,
    company: Company,
    customers: Sequence[Customer],
    channel: str = Channel.EMAIL,
    service: Service | None = None,
    promo_code: str = "",
    ttl_hours: int | None = None,
    bypass_frequency_caps: bool = False,
    dry_run: bool = False,
    run: CampaignRun | None = None,
    send_window: tuple[int, int] | None = None,
) -> list[ReminderOutcome]:
    """The workflow for a batch of customers of `company`: AI calls concurrent, the batch's intents in one transaction."""
    return _reminders_finish(_reminders_start(
        company=company, customers=customers, channel=channel, service=service, promo_code=promo_code,
        ttl_hours=ttl_hours, bypass_frequency_caps=bypass_frequency_caps, dry_run=dry_run, run=run,
        send_window=send_window,
    ))


@dataclass
class _Started:
    """A batch whose plans are made and whose model calls are in flight."""

    company: Company
    customers: Sequence[Customer]
    plans: list[_Plan]
    generation: _Generation | None
    dry_run: bool
    run: CampaignRun | None
    bypass_frequency_caps: bool


def _reminders_start(
    *,
    company: Company,
    customers: Sequence[Customer],
    channel: str,
    service: Service | None,
    promo_code: str,
    ttl_hours: int | None,
    bypass_frequency_caps: bool,
    dry_run: bool,
    run: CampaignRun | None,
    send_window: tuple[int, int] | None,
) -> _Started:
    if channel not in Channel.values:
        raise ValidationError({"channel": f"Unknown channel {channel!r}."})
    plans = _plans(
        company=company, customers=customers, channel=channel, service=service, promo_code=promo_code,
        ttl_hours=ttl_hours, bypass_frequency_caps=bypass_frequency_caps, send_window=send_window,
        is_segmented=run is not None,
    )
    if channel in SHORT_LINK_CHANNELS:
        _links_shorten(company=company, plans=plans, ttl_hours=ttl_hours, save=not dry_run)
    return _Started(
        company=company, customers=customers, plans=plans,
        generation=_generate_start(plans=plans, dry_run=dry_run),
        dry_run=dry_run, run=run, bypass_frequency_caps=bypass_frequency_caps,
    )


def _reminders_finish(
    started: _Started, *, rows_sink: Callable[[list[RecipientRow]], None] | None = None
) -> list[ReminderOutcome]:
    """Steps 8-10 for a started batch. A run's skipped and dry-run recipients are written here, or handed
    to `rows_sink` (a dry run's runner writes them with the batch's other records)."""
    company, plans, dry_run, run = started.company, started.plans, started.dry_run, started.run
    bypass_frequency_caps = started.bypass_frequency_caps
    _generate_finish(started.generation)
    outcomes: list[ReminderOutcome | None] = []
    skipped_rows = []
    to_send: list[tuple[int, _Plan]] = []
    for plan in plans:
        # A blocked text (not even the approved fallback with the link passes the filter) is not sent,
        # in a dry run either: the outcome keeps the text and both verdicts; the next run tries again.
        is_skip = plan.is_blocked or plan.reason in CampaignRecipient.SKIP_REASONS
        if is_skip:
            _count_skip(plan.reason)
            outcome = ReminderOutcome(
                customer_id=plan.customer.pk, status=SKIPPED, reason=plan.reason, correlation_id=str(plan.correlation_id),
                body=plan.text if plan.is_blocked else "", error=plan.note if plan.is_blocked else "",
                template_version_id=plan.version.pk if plan.is_blocked and plan.version else None,
            )
            if run is not None:
                skipped_rows.append((plan, CampaignRecipient.Status.SKIPPED, plan.reason, outcome.error))
        elif dry_run:
            outcome = ReminderOutcome(
                customer_id=plan.customer.pk,
                status=DRY_RUN,
                reason=plan.reason,
                correlation_id=str(plan.correlation_id),
                body=plan.text,
                template_version_id=plan.version.pk if plan.version else None,
                error=plan.note,
            )
            if run is not None:
                skipped_rows.append((plan, CampaignRecipient.Status.DRY_RUN, plan.reason, plan.note))
        else:
            to_send.append((len(outcomes), plan))
            outcome = None
        outcomes.append(outcome)
    if skipped_rows and rows_sink is not None:
        rows_sink(skipped_rows)
    elif skipped_rows:
        recipient_rows_insert(run=run, rows=skipped_rows, now=timezone.now())
    for index, outcome in _send_all(company=company, to_send=to_send, run=run, bypass=bypass_frequency_caps):
        outcomes[index] = outcome
    return [outcome for outcome in outcomes if outcome is not None]


def _send_all(
    *, company: Company, to_send: list[tuple[int, _Plan]], run: CampaignRun | None, bypass: bool
) -> Iterable[tuple[int, ReminderOutcome]]:
    """Write the batch's intents in one transaction, then run the sends, SMARTENGAGE_SEND_CONCURRENCY at a time.

    Each sending thread keeps its own connection for its share of the batch. Inside an outer
    transaction (a test's, or a caller's) another connection could not see the uncommitted rows,
    so the sends then run one by one on this connection.
    """
    if not to_send:
        return
    skipped, queued = _intents_write(company=company, to_send=to_send, run=run, bypass_frequency_caps=bypass)
    yield from skipped
    workers = min(int(getattr(settings, "SMARTENGAGE_SEND_CONCURRENCY", 4)), len(queued))
    if workers <= 1 or connection.in_atomic_block:
        for item in queued:
            yield item.index, _send_queued(item=item)
        return

    def send_share(share: list[_Queued]) -> list[tuple[int, ReminderOutcome]]:
        try:
            return [(item.index, _send_queued(item=item)) for item in share]
        finally:
            connection.close()  # this thread's own connection, once for its whole share

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="smartengage-send") as pool:
        for results in pool.map(send_share, [queued[offset::workers] for offset in range(workers)]):
            yield from results


def customers_for_company(*, company: Company, customer_ids: Iterable[Any]) -> list[Customer]:
    """The customers of `company` with these ids; ValidationError naming the ids that are not the company's."""
    try:
        ids = sorted({int(value) for value in customer_ids})
    except (TypeError, ValueError):
        raise ValidationError({"customer_ids": "Customer ids are integers."}) from None
    customers = list(
        Customer.objects.filter(company=company, pk__in=ids).select_related("contact", "company").order_by("pk")
    )
    missing = sorted(set(ids) - {customer.pk for customer in customers})
    if missing:
        # The same answer for another company's customer and for none at all: nothing leaks.
        raise ValidationError({"customer_ids": f"Unknown customer id(s): {', '.join(map(str, missing))}."})
    return customers


def smartengage_reminder_send(
    *,
    company: Company,
    customer: Customer,
    service: Service | None = None,
    promo_code: str = "",
    ttl_hours: int | None = None,
    channel: str = Channel.EMAIL,
    bypass_frequency_caps: bool = False,
    actor: User | None = None,
) -> ReminderOutcome:
    """Send one reminder to one customer now (the admin's send-single)."""
    if customer.company_id != company.pk or (service is not None and service.company_id != company.pk):
        raise ValidationError({"customer_id": "Unknown customer."})
    (outcome,) = smartengage_reminders_process(
        company=company, customers=[customer], channel=channel, service=service, promo_code=promo_code,
        ttl_hours=ttl_hours, bypass_frequency_caps=bypass_frequency_caps,
    )
    return outcome


def smartengage_bulk_send(
    *,
    company: Company,
    customers: Sequence[Customer],
    channel: str = Channel.EMAIL,
    service: Service | None = None,
    promo_code: str = "",
    ttl_hours: int | None = None,
    batch_size: int = 100,
    bypass_frequency_caps: bool = False,
    dry_run: bool = False,
    run: CampaignRun | None = None,
    send_window: tuple[int, int] | None = None,
) -> BulkResult:
    """Remind many customers, `batch_size` at a time (the AI calls of a batch run concurrently)."""
    started = time.monotonic()
    result = BulkResult(total_eligible=len(customers))
    size = max(1, batch_size)
    for _, outcomes in smartengage_batches_send(
        company=company, batches=(customers[start : start + size] for start in range(0, len(customers), size)),
        channel=channel, service=service, promo_code=promo_code, ttl_hours=ttl_hours,
        bypass_frequency_caps=bypass_frequency_caps, dry_run=dry_run, run=run, send_window=send_window,
    ):
        for outcome in outcomes:
            result.add(outcome)
    result.duration_seconds = time.monotonic() - started
    return result


def smartengage_batches_send(
    *,
    company: Company,
    batches: Iterable[Sequence[Customer]],
    channel: str = Channel.EMAIL,
    service: Service | None = None,
    promo_code: str = "",
    ttl_hours: int | None = None,
    bypass_frequency_caps: bool = False,
    dry_run: bool = False,
    run: CampaignRun | None = None,
    send_window: tuple[int, int] | None = None,
    is_cancelled: Callable[[], bool] | None = None,
    rows_sink: Callable[[list[RecipientRow]], None] | None = None,
) -> Iterator[tuple[Sequence[Customer], list[ReminderOutcome]]]:
    """Process batch after batch, yielding each batch's outcomes; the next batch's model calls are in flight
    while this one's intents are written and its messages sent (the model's latency overlaps our work).

    `is_cancelled` is asked before each batch is started and before a started batch is sent: a
    cancelled run sends nothing more (a started batch is dropped, its model calls unrecorded).
    `rows_sink` gets each batch's skipped and dry-run recipient rows before the batch is yielded
    (see `_reminders_finish`).
    """
    options = {
        "company": company, "channel": channel, "service": service, "promo_code": promo_code,
        "ttl_hours": ttl_hours, "bypass_frequency_caps": bypass_frequency_caps, "dry_run": dry_run, "run": run,
        "send_window": send_window,
    }
    pending: _Started | None = None
    for customers in batches:
        if is_cancelled is not None and is_cancelled():
            break
        started = _reminders_start(customers=customers, **options)
        if pending is not None:
            yield pending.customers, _reminders_finish(pending, rows_sink=rows_sink)
        pending = started
    if pending is not None and not (is_cancelled is not None and is_cancelled()):
        yield pending.customers, _reminders_finish(pending, rows_sink=rows_sink)


def smartengage_job_send(*, job: Job) -> dict[str, Any]:
    """The `smartengage_send` job: send the reminder queued with the job; its recipient row follows the result.

    The hot path of a campaign: the message and its contact in one read, then `message_send_queued`
    records the provider's acceptance, the event, the recipient row and the job's completion in one
    statement right after this one provider call.
    """
    from channels_app.base import ChannelError
    from engage.handlers import JobPermanentError
    from engage.services.campaigns import campaign_run_counts_refresh
    from engage.services.messages import message_queued_for_job, message_send_queued

    queued = message_queued_for_job(job=job)
    if queued is None:
        raise JobPermanentError("No reminder was queued with this job.")
    run_id = job.payload.get("run_id")
    try:
        sent = message_send_queued(
            job=job, queued=queued, agent_type=AGENT_TYPE, message_type=MESSAGE_TYPE, recipient_run_id=run_id
        )
    except ChannelError:
        if run_id and CampaignRun.objects.filter(pk=run_id, status__in=CampaignRun.FINISHED_STATUSES).exists():
            campaign_run_counts_refresh(run_id=run_id)
        raise
    # A run still going counts at its end; a finished one (a retry, a late job) is recounted now.
    if run_id and any(status in CampaignRun.FINISHED_STATUSES for status in sent.run_statuses):
        campaign_run_counts_refresh(run_id=run_id)
    return {"message_id": sent.message_id, "status": sent.status}
